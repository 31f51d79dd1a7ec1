/**
 * The rolling evaluator on the stream runtime (DESIGN §6.2, docs/gates.md).
 * It runs in the features task, after the features processor, so it sees each
 * instrument's features in event-time order within its partition:
 *
 * - each feature adds a bar (close, signal, spread) to the `gates-span` window
 *   store (GATES_SPAN_DAYS of stream time) and refreshes the instrument's latest
 *   repetition and hazard in `gates-state`;
 * - every EVAL_INTERVAL_SEC of stream time (a stream-time punctuation, stamped
 *   with the interval boundary) every instrument of the task is evaluated:
 *   its decision goes to gates.v1, and the task's decisions together go to the
 *   internal gates.partial.v1 topic, from which the blob stage builds the
 *   global gates blob once every source partition has reported.
 *
 * Everything depends on the records and stream time only, so a replay gives
 * the same decisions as the live run.
 *
 * Speed: each instrument's span is also kept in a SpanSeries (evaluate.ts),
 * a cache of what each bar contributes that no later bar can change (its
 * gap's missing bars, its entry, its growth factor), so an evaluation walks
 * typed arrays instead of re-simulating the span from the stored bars. The
 * cache is rebuilt from the window store whenever it is missing (a restored
 * task) or in doubt (a bar replaced or out of order), and it gives the same
 * figures, bit for bit, as measuring the stored bars (measureGate).
 */
import type { CostCalibration } from '../calibration/calibration.ts';
import type { Processor, ProcessorContext, StreamRecord } from '../runtime/processor.ts';
import { KeyValueStore, WindowStore } from '../runtime/stores.ts';
import type { Feature } from '../features/features.ts';
import type { GatesConfig } from './config.ts';
import { decideGate, initialGateState, measureGate, sessionAt, SpanSeries, type GateDecision, type GateMetrics, type GateState } from './evaluate.ts';
import type { SimBar } from './simulate.ts';

export const GATES_SPAN_STORE = 'gates-span';
export const GATES_STATE_STORE = 'gates-state';
const DAY_MS = 86_400_000;


export interface InstrumentGateState {
  gate: GateState | undefined;
  repetition: number | null;
  hazard: number | null;
  /** The latest bar's ewma_vol, for the allocator's inverse_vol / risk_parity sizing (absent in state from before it existed). */
  vol?: number | null;
}

/** The calibrated cost inputs the allocator's cost chain reads (calib.cost.v1's latest publication). */
export type PartialCalibration = Pick<CostCalibration, 'spread_bps_ewma' | 'volume_usd_ewma' | 'fill_rate_ewma' | 'turnover_usd_ewma' | 'k_eff' | 'cap_eff_bps'>;

/** The internal record the blob stage combines (schemas/avro/gates-partial.avsc). */
export interface GatesPartial {
  ts: number;
  partition: number;
  decisions: (Pick<GateDecision, 'instrument' | 'eligible' | 'buf' | 'repetition' | 'hazard' | 'calmar' | 'span_ok' | 'cooldown_until'> & {
    /** The instrument's latest ewma_vol at the evaluation; null before one. */
    vol?: number | null;
    /** Its latest published cost calibration; null before one (or without the execution processors). */
    calibration?: PartialCalibration | null;
  })[];
}

/** The fields the evaluator reads from a feature; the regime fields may be absent on old records. */
type GateFeature = Feature & { signal?: number | null; repetition?: number | null; hazard?: number | null };

export class GatesProcessor implements Processor<GateFeature> {
  private ctx!: ProcessorContext;
  private span!: WindowStore<SimBar>;
  private state!: KeyValueStore<InstrumentGateState>;
  /** Per instrument, the span store's bars as a SpanSeries; absent until the next evaluation rebuilds it. */
  private readonly series = new Map<string, SpanSeries>();

  private calibrations: KeyValueStore<{ published?: CostCalibration | null }> | undefined;

  /**
   * `calibrationStore`: the cost calibration's store (streams/execution), read at each evaluation
   * so the partial carries each instrument's latest published calibration to the allocator.
   */
  constructor(private readonly config: GatesConfig, private readonly children: { decisions: string; partial: string }, private readonly calibrationStore?: string) {}

  init(ctx: ProcessorContext): void {
    this.ctx = ctx;
    this.span = ctx.getStateStore(GATES_SPAN_STORE);
    this.state = ctx.getStateStore(GATES_STATE_STORE);
    if (this.calibrationStore) this.calibrations = ctx.getStateStore<KeyValueStore<{ published?: CostCalibration | null }>>(this.calibrationStore);
    ctx.schedule(this.config.evalIntervalSec * 1000, 'stream-time', (at) => this.evaluate(at));
  }

  process({ value: f }: StreamRecord<GateFeature>): void {
    // Stored in the simulator's own shape: an evaluation reads whole spans without converting them.
    const bar: SimBar = { ts: f.ts, close: f.close, signal: f.signal ?? 0, spread_bps: f.spread_bps ?? null };
    this.span.put(f.instrument, f.ts, bar);
    // A bar that does not come after the series' last one replaced or joined older bars: rebuild from the store.
    const series = this.series.get(f.instrument);
    if (series && !series.append(bar)) this.series.delete(f.instrument);
    const prev = this.state.get(f.instrument);
    this.state.put(f.instrument, { gate: prev?.gate, repetition: f.repetition ?? null, hazard: f.hazard ?? null, vol: f.ewma_vol ?? null });
  }

  private evaluate(at: number): void {
    this.span.evict(at);
    const decisions: GatesPartial['decisions'] = [];
    // The calendar's answer is the same for every instrument.
    const session = sessionAt(this.config.calendar, at);
    for (const [instrument, s] of this.state.all()) {
      // What evaluateGate does, with the span measured from the cached series.
      const measured = this.measure(instrument, at);
      const metrics: GateMetrics = { trades: measured.trades, calmar: measured.calmar, spanOk: measured.spanOk, sessionOpen: session.sessionOpen, minutesToClose: session.minutesToClose, repetition: s.repetition, hazard: s.hazard };
      const { decision, state } = decideGate(instrument, at, metrics, s.gate ?? initialGateState(), this.config);
      this.state.put(instrument, { ...s, gate: state });
      this.ctx.forward({ key: instrument, value: decision, timestamp: at }, this.children.decisions);
      const { instrument: i, eligible, buf, repetition, hazard, calmar, span_ok, cooldown_until } = decision;
      const c = this.calibrations?.get(instrument)?.published ?? null;
      const calibration = c && { spread_bps_ewma: c.spread_bps_ewma, volume_usd_ewma: c.volume_usd_ewma, fill_rate_ewma: c.fill_rate_ewma, turnover_usd_ewma: c.turnover_usd_ewma, k_eff: c.k_eff, cap_eff_bps: c.cap_eff_bps };
      decisions.push({ instrument: i, eligible, buf, repetition, hazard, calmar, span_ok, cooldown_until, vol: s.vol ?? null, calibration });
    }
    const partial: GatesPartial = { ts: at, partition: this.ctx.partition, decisions };
    this.ctx.forward({ key: String(this.ctx.partition), value: partial, timestamp: at }, this.children.partial);
  }

  /** Trades, Calmar and span integrity of the instrument's span (at − GATES_SPAN_DAYS, at]. */
  private measure(instrument: string, at: number): Pick<GateMetrics, 'trades' | 'calmar' | 'spanOk'> {
    const from = at - this.config.spanDays * DAY_MS;
    let series = this.series.get(instrument);
    if (!series || !series.covers(from)) series = this.rebuild(instrument);
    if (series) {
      const { spanOk, simulation } = series.measure(at, this.config);
      return { trades: simulation.trades, calmar: simulation.calmar, spanOk };
    }
    // Stored bars a series cannot hold (not keyed by their own time): measured as they are.
    const { metrics } = measureGate({ instrument, now: at, bars: this.span.fetchValues(instrument, from, at), repetition: null, hazard: null }, this.config);
    return { trades: metrics.trades, calmar: metrics.calmar, spanOk: metrics.spanOk };
  }

  /** The instrument's series from every bar in the span store; undefined when they are not in strictly increasing time. */
  private rebuild(instrument: string): SpanSeries | undefined {
    this.series.delete(instrument);
    const series = new SpanSeries(this.config.calendar);
    for (const [start, bar] of this.span.fetch(instrument, -Infinity, Infinity)) {
      if (bar.ts !== start || !series.append(bar)) return undefined;
    }
    this.series.set(instrument, series);
    return series;
  }
}
