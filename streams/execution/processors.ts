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
 * Both keep one state object per instrument in a key-value store (changelog
 * backed); the pure steps mutate or replace it, the store logs it lazily.
 */
import type { Processor, ProcessorContext, StreamRecord } from '../runtime/processor.ts';
import type { KeyValueStore } from '../runtime/stores.ts';
import { InputError } from '../runtime/errors.ts';
import type { Fill, OrderEvent, Tick } from '../model/records.ts';
import type { Feature } from '../features/features.ts';
import { addFill, addTick, advance, initialMarkoutState, type MarkoutState } from '../markout/markout.ts';
import { addMarkout, adverseFillRates, avgBps, emptyAggregate, markoutGate, type InstrumentAggregate } from '../markout/aggregate.ts';
import type { MarkoutConfig } from '../markout/config.ts';
import { applyBar, applyFill, applyOrderEvent, applyTick, costCalibration, initialInstrumentCalibration, type InstrumentCalibration, type Quote } from '../calibration/calibration.ts';
import type { CalibrationConfig } from '../calibration/config.ts';
import * as metrics from '../runtime/metrics.ts';

export const MARKOUT_STORE = 'markout-state';
export const MARKOUT_AGG_STORE = 'markout-aggregates';
export const CALIBRATION_STORE = 'calibration-state';

/** Which source a record came from: the processors branch on the topic, the values differ in shape. */
export interface ExecutionTopics { ticks: string; fills: string; orders: string }

/** Advance all instruments' pending markouts at least this often in stream time (ms). */
const MARKOUT_SWEEP_MS = 1000;

export class MarkoutProcessor implements Processor<Tick | Fill> {
  private ctx!: ProcessorContext;
  private state!: KeyValueStore<MarkoutState>;
  private aggregates!: KeyValueStore<InstrumentAggregate>;

  constructor(private readonly config: MarkoutConfig, private readonly topics: ExecutionTopics) {}

  init(ctx: ProcessorContext): void {
    this.ctx = ctx;
    this.state = ctx.getStateStore(MARKOUT_STORE);
    this.aggregates = ctx.getStateStore(MARKOUT_AGG_STORE);
    // Stream time is the task's: a quiet instrument's fills resolve when any record moves it.
    ctx.schedule(MARKOUT_SWEEP_MS, 'stream-time', () => {
      for (const [instrument] of this.state.all()) this.resolve(instrument);
    });
  }

  process({ value }: StreamRecord<Tick | Fill>): void {
    const instrument = value.instrument;
    const s = this.state.get(instrument) ?? initialMarkoutState();
    if (this.ctx.topic === this.topics.ticks) {
      addTick(s, value as Tick, this.ctx.streamTime, this.config);
    } else if (addFill(s, value as Fill, this.ctx.streamTime, this.config) === 'duplicate') {
      metrics.markoutDuplicates.inc({ symbol: instrument });
    }
    this.state.put(instrument, s);
    this.resolve(instrument);
  }

  private resolve(instrument: string): void {
    const s = this.state.get(instrument);
    if (!s) return;
    const { markouts, unresolved } = advance(s, instrument, this.ctx.streamTime, this.config);
    if (markouts.length === 0 && unresolved.length === 0) return;
    this.state.put(instrument, s);
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

/** The calibration state and the last quote of one instrument (mid(t0) for a fill's slippage). */
export interface CalibrationEntry {
  calib: InstrumentCalibration;
  quote: Quote | null;
  /** Stream time of the last publication; null before the first. */
  emittedAt: number | null;
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
      this.store.put(instrument, { ...e, emittedAt: at });
      metrics.publishCalibration(instrument, out);
    }
  }
}
