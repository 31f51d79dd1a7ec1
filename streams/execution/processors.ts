/**
 * The executor-facing processors on the stream runtime (DESIGN §6.4–6.5,
 * docs/markout.md, docs/calibration.md). They run in the signal app's task,
 * next to the features, so ticks, candles, fills and orders of one
 * instrument reach them merged by timestamp (the runtime's PartitionInput):
 *
 * - MarkoutProcessor (ticks + fills): as-of join of each fill with the mids
 *   at t0 + h; a markout is published on markout.v1 once stream time passes
 *   t0 + h + MARKOUT_GRACE_MS, and added to the per-instrument aggregates
 *   behind the markout metrics. A fill whose horizon has no tick at or before
 *   t0 + h resolves as unresolved `no_tick` (counted, nothing invented).
 * - CalibrationProcessor (ticks, fills, orders, and the features of each
 *   bar): the cost-calibration EWMAs; every CALIB_EMIT_INTERVAL_SEC of stream
 *   time each instrument that changed publishes its calibration on the
 *   compacted calib.cost.v1.
 *
 * The calibration keeps one state object per instrument in a key-value store
 * (changelog backed); the pure steps replace it, the store logs it lazily.
 * The markout's state is too large for one value per instrument (the last
 * grace of ticks: 1.5 MiB at 10 000 ticks/s), so it lives in memory and is
 * logged in small pieces — a store entry per 100 ms tick segment and per fill
 * (markout.ts's MarkoutJournal) — and rebuilt from them at init, after the
 * runtime restored the stores.
 */
import type { Processor, ProcessorContext, StreamRecord } from '../runtime/processor.ts';
import type { KeyValueStore } from '../runtime/stores.ts';
import { InputError } from '../runtime/errors.ts';
import type { Fill, OrderEvent, Tick } from '../model/records.ts';
import type { Feature } from '../features/features.ts';
import { addFill, addTick, advance, initialMarkoutState, markoutStateOf, type MarkoutJournal, type MarkoutState, type PendingFill } from '../markout/markout.ts';
import type { TickSegment } from '../markout/asof.ts';
import { addMarkout, adverseFillRates, avgBps, emptyAggregate, markoutGate, type InstrumentAggregate } from '../markout/aggregate.ts';
import type { MarkoutConfig } from '../markout/config.ts';
import { applyBar, applyFill, applyOrderEvent, applyTick, costCalibration, initialInstrumentCalibration, type CostCalibration, type InstrumentCalibration, type Quote } from '../calibration/calibration.ts';
import type { CalibrationConfig } from '../calibration/config.ts';
import * as metrics from '../runtime/metrics.ts';

/** Tick segments, keyed `<instrument>@<segment start, 16 digits>`. */
export const MARKOUT_TICKS_STORE = 'markout-ticks';
/** Remembered fills (pending or within the dedupe window), keyed `<instrument>@<cid>`. */
export const MARKOUT_FILLS_STORE = 'markout-fills';
export const MARKOUT_AGG_STORE = 'markout-aggregates';
export const CALIBRATION_STORE = 'calibration-state';

/** Which source a record came from: the processors branch on the topic, the values differ in shape. */
export interface ExecutionTopics { ticks: string; fills: string; orders: string }

/** Advance all instruments' pending markouts at least this often in stream time (ms). */
const MARKOUT_SWEEP_MS = 1000;

export class MarkoutProcessor implements Processor<Tick | Fill> {
  private ctx!: ProcessorContext;
  private ticks!: KeyValueStore<TickSegment>;
  private fills!: KeyValueStore<PendingFill>;
  private aggregates!: KeyValueStore<InstrumentAggregate>;
  /** Instrument → its state and the journal that logs its changes to the stores. */
  private readonly states = new Map<string, { state: MarkoutState; journal: MarkoutJournal }>();

  constructor(private readonly config: MarkoutConfig, private readonly topics: ExecutionTopics) {}

  init(ctx: ProcessorContext): void {
    this.ctx = ctx;
    this.ticks = ctx.getStateStore(MARKOUT_TICKS_STORE);
    this.fills = ctx.getStateStore(MARKOUT_FILLS_STORE);
    this.aggregates = ctx.getStateStore(MARKOUT_AGG_STORE);
    this.rebuild();
    // Stream time is the task's: a quiet instrument's fills resolve when any record moves it.
    ctx.schedule(MARKOUT_SWEEP_MS, 'stream-time', () => {
      for (const instrument of [...this.states.keys()].sort()) this.resolve(instrument);
    });
  }

  process({ value }: StreamRecord<Tick | Fill>): void {
    const instrument = value.instrument;
    const { state, journal } = this.stateOf(instrument);
    if (this.ctx.topic === this.topics.ticks) {
      addTick(state, value as Tick, this.ctx.streamTime, this.config, journal);
    } else if (addFill(state, value as Fill, this.ctx.streamTime, this.config, journal) === 'duplicate') {
      metrics.markoutDuplicates.inc({ symbol: instrument });
    }
    this.resolve(instrument);
  }

  /** The in-memory states from the restored stores (empty on a fresh start). */
  private rebuild(): void {
    const segments = groupByInstrument(this.ticks.all());
    const fills = groupByInstrument(this.fills.all());
    for (const instrument of new Set([...segments.keys(), ...fills.keys()])) {
      this.states.set(instrument, { state: markoutStateOf(segments.get(instrument) ?? [], fills.get(instrument) ?? []), journal: this.journalFor(instrument) });
    }
  }

  private stateOf(instrument: string): { state: MarkoutState; journal: MarkoutJournal } {
    let s = this.states.get(instrument);
    if (!s) {
      s = { state: initialMarkoutState(), journal: this.journalFor(instrument) };
      this.states.set(instrument, s);
    }
    return s;
  }

  private journalFor(instrument: string): MarkoutJournal {
    const segmentKey = (seg: TickSegment) => `${instrument}@${String(seg.start).padStart(16, '0')}`;
    const fillKey = (f: PendingFill) => `${instrument}@${f.cid}`;
    return {
      segment: (seg) => this.ticks.put(segmentKey(seg), seg),
      segmentDropped: (seg) => this.ticks.delete(segmentKey(seg)),
      fill: (f) => this.fills.put(fillKey(f), f),
      fillForgotten: (f) => this.fills.delete(fillKey(f)),
    };
  }

  private resolve(instrument: string): void {
    const s = this.states.get(instrument);
    if (!s) return;
    const { markouts, unresolved } = advance(s.state, instrument, this.ctx.streamTime, this.config, s.journal);
    if (markouts.length === 0 && unresolved.length === 0) return;
    const agg = this.aggregates.get(instrument) ?? emptyAggregate();
    for (const m of markouts) {
      addMarkout(agg, m);
      this.ctx.forward({ key: instrument, value: m, timestamp: m.fill_ts + m.horizon_ms });
      const labels = { horizon_ms: String(m.horizon_ms), color: m.color, symbol: instrument };
      if (m.markout_bps > 0) metrics.markoutUp.inc(labels);
      else if (m.markout_bps < 0) metrics.markoutDown.inc(labels);
      const cell = agg.cells[String(m.horizon_ms)]?.[m.color];
      if (cell) metrics.markoutAvgBps.set(labels, avgBps(cell.sum_bps_int, cell.count) ?? 0);
    }
    for (const u of unresolved) metrics.markoutUnresolved.inc({ reason: u.reason, symbol: instrument });
    this.aggregates.put(instrument, agg);
    if (markouts.length > 0) this.publishCanary(instrument, agg);
  }

  /** The adverse fill rate and the canary gate (seed M1.1) of the instrument, as gauges. */
  private publishCanary(instrument: string, agg: InstrumentAggregate): void {
    for (const r of adverseFillRates([[instrument, agg]], this.config.adverseHorizonMs)) {
      if (r.adverse_fill_rate !== null) metrics.markoutAdverseRate.set({ color: r.color, symbol: instrument }, r.adverse_fill_rate);
    }
    const gate = markoutGate(instrument, agg, this.config);
    for (const h of gate.horizons) if (h.delta_bps !== null) metrics.markoutCanaryDelta.set({ horizon_ms: String(h.horizon_ms), symbol: instrument }, h.delta_bps);
    for (const status of ['pass', 'breach', 'insufficient_sample'] as const) metrics.markoutGate.set({ symbol: instrument, status }, gate.status === status ? 1 : 0);
  }
}

/** `<instrument>@<rest>` store entries grouped by instrument (instrument names have no `@`). */
function groupByInstrument<V>(entries: [string, V][]): Map<string, V[]> {
  const out = new Map<string, V[]>();
  for (const [key, value] of entries) {
    const instrument = key.slice(0, key.indexOf('@'));
    const list = out.get(instrument);
    if (list) list.push(value);
    else out.set(instrument, [value]);
  }
  return out;
}

/** The calibration state and the last quote of one instrument (mid(t0) for a fill's slippage). */
export interface CalibrationEntry {
  calib: InstrumentCalibration;
  quote: Quote | null;
  /** Stream time of the last publication; null before the first. */
  emittedAt: number | null;
  /** The last publication on calib.cost.v1 (the gates' partials carry it to the allocator); absent before the first. */
  published?: CostCalibration | null;
}

export class CalibrationProcessor implements Processor<Tick | Fill | OrderEvent | Feature> {
  private ctx!: ProcessorContext;
  private store!: KeyValueStore<CalibrationEntry>;

  constructor(private readonly config: CalibrationConfig & { emitIntervalSec: number }, private readonly topics: ExecutionTopics) {}

  init(ctx: ProcessorContext): void {
    this.ctx = ctx;
    this.store = ctx.getStateStore(CALIBRATION_STORE);
    ctx.schedule(this.config.emitIntervalSec * 1000, 'stream-time', (at) => this.publish(at));
  }

  process({ value }: StreamRecord<Tick | Fill | OrderEvent | Feature>): void {
    const instrument = value.instrument;
    const e = this.store.get(instrument) ?? { calib: initialInstrumentCalibration(), quote: null, emittedAt: null };
    const topic = this.ctx.topic;
    try {
      if (topic === this.topics.ticks) {
        const t = value as Tick;
        e.quote = { ts: t.ts, bid: t.bid, ask: t.ask };
        e.calib = applyTick(e.calib, e.quote, this.config);
      } else if (topic === this.topics.fills) {
        const step = applyFill(e.calib, value as Fill, e.quote && e.quote.ts <= (value as Fill).ts ? e.quote : null, this.config);
        e.calib = step.state;
        metrics.costCalibFills.inc({ symbol: instrument, outcome: step.outcome });
      } else if (topic === this.topics.orders) {
        e.calib = applyOrderEvent(e.calib, value as OrderEvent, this.config).state;
      } else {
        // A feature forwarded by the features processor: the bar's spread and volume.
        e.calib = applyBar(e.calib, value as Feature, this.config);
      }
    } catch (err) {
      // Out of order within the runtime's grace: the markouts still take the record; the
      // EWMAs (which need time order) skip it, counted, rather than dead-letter it for both.
      if (!(err instanceof InputError) || err.reason !== 'late') throw err;
      metrics.costCalibSkipped.inc({ symbol: instrument, reason: 'out_of_order' });
      return;
    }
    this.store.put(instrument, e);
  }

  private publish(at: number): void {
    for (const [instrument, e] of this.store.all()) {
      if (e.calib.lastTs === null || (e.emittedAt !== null && e.calib.lastTs <= e.emittedAt)) continue;
      const out = costCalibration(instrument, e.calib, this.config);
      if (!out) continue;
      this.ctx.forward({ key: instrument, value: { ...out, ts: at }, timestamp: at });
      this.store.put(instrument, { ...e, emittedAt: at, published: { ...out, ts: at } });
      metrics.publishCalibration(instrument, out);
    }
  }
}
