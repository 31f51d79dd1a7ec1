/**
 * The whole per-partition pipeline in one app: the signal path (ticks +
 * candles → features → rolling gates) and the executor-facing processors
 * (fills + orders + ticks → markouts, cost calibration). One task sees every
 * input of its instruments merged by timestamp, so a replay gives the same
 * outputs as the live run and the offline driver.
 *
 * Lateness: ticks and fills use MARKOUT_GRACE_MS (default 5 s) — a markout is
 * final once stream time passes t0 + h + grace, so a tick later than that
 * would change a published markout; the runtime dead-letters it as `late`
 * before any processor sees it.
 */
import { KeyValueStore } from '../runtime/stores.ts';
import type { Topology } from '../runtime/topology.ts';
import { TOPICS } from '../runtime/topics.ts';
import { resolveConfig } from '../runtime/config.ts';
import { validateRecord } from '../model/records.ts';
import type { InstrumentCatalog } from '../model/instruments.ts';
import { signalTopology, type SignalTopologyOptions } from '../gates/topology.ts';
import type { MarkoutConfig } from '../markout/config.ts';
import type { CalibrationConfig } from '../calibration/config.ts';
import type { AllocatorConfig } from '../allocation/config.ts';
import type { FeatureParams } from '../features/features.ts';
import type { GatesConfig } from '../gates/config.ts';
import { CALIBRATION_STORE, CalibrationProcessor, MARKOUT_AGG_STORE, MARKOUT_FILLS_STORE, MARKOUT_TICKS_STORE, MarkoutProcessor, type CalibrationEntry } from './processors.ts';
import type { PendingFill } from '../markout/markout.ts';
import type { TickSegment } from '../markout/asof.ts';
import type { InstrumentAggregate } from '../markout/aggregate.ts';

export const EXECUTION_KNOBS = {
  CALIB_EMIT_INTERVAL_SEC: { kind: 'integer', default: 60, min: 1, max: 86_400, doc: 'seconds of stream time between publications of each changed instrument\'s calibration on calib.cost.v1' },
} as const;

export function resolveExecutionConfig(env: NodeJS.ProcessEnv = process.env): { emitIntervalSec: number } {
  return { emitIntervalSec: resolveConfig(EXECUTION_KNOBS, {}, env).CALIB_EMIT_INTERVAL_SEC };
}

/**
 * Every processor knob of the pipeline, resolved (src/pipeline/run.ts
 * resolvePipelineConfig): what `sep run` and `sep offline` run the topologies
 * with, and what a run's config hash covers.
 */
export interface PipelineKnobs {
  catalog: InstrumentCatalog;
  params: FeatureParams;
  gates: GatesConfig;
  markout: MarkoutConfig;
  calibration: CalibrationConfig & { emitIntervalSec: number };
  allocator: AllocatorConfig;
}

/** The knobs as the plain object a run's `runs.config` / config hash is computed from (the same for every path). */
export function fingerprintedKnobs(k: PipelineKnobs): Record<string, unknown> {
  const { catalog, params, gates, markout, calibration, allocator } = k;
  return { instruments: catalog.list(), params, gates, markout, calibration, allocator };
}

export interface PipelineTopologyOptions extends SignalTopologyOptions {
  markout: MarkoutConfig;
  calibration: CalibrationConfig & { emitIntervalSec: number };
  fillsTopic?: string;
  ordersTopic?: string;
  markoutTopic?: string;
  calibrationTopic?: string;
}

export function pipelineTopology(catalog: InstrumentCatalog, opts: PipelineTopologyOptions): Topology {
  const topics = { ticks: opts.ticksTopic ?? TOPICS.ticks.name, fills: opts.fillsTopic ?? TOPICS.fills.name, orders: opts.ordersTopic ?? TOPICS.orders.name };
  const grace = { graceMs: opts.markout.graceMs };
  return signalTopology(catalog, { ...opts, ticksTopic: topics.ticks, ticksGraceMs: opts.markout.graceMs, calibrationStore: CALIBRATION_STORE })
    .addSource('fills', topics.fills, (v) => validateRecord('fills', v as Record<string, unknown>, catalog), grace)
    .addSource('orders', topics.orders, (v) => validateRecord('orders', v as Record<string, unknown>, catalog))
    // Calibration before markout: it may skip an out-of-order fill for its EWMAs; the markout still takes it.
    .addProcessor('calibration', () => new CalibrationProcessor(opts.calibration, topics), 'features', 'ticks', 'fills', 'orders')
    .addProcessor('markout', () => new MarkoutProcessor(opts.markout, topics), 'ticks', 'fills')
    // Shared: the gates processor reads each instrument's latest publication into its partials (for the allocator).
    .addStateStore(CALIBRATION_STORE, () => new KeyValueStore<CalibrationEntry>(CALIBRATION_STORE), 'calibration', 'gates')
    .addStateStore(MARKOUT_TICKS_STORE, () => new KeyValueStore<TickSegment>(MARKOUT_TICKS_STORE), 'markout')
    .addStateStore(MARKOUT_FILLS_STORE, () => new KeyValueStore<PendingFill>(MARKOUT_FILLS_STORE), 'markout')
    .addStateStore(MARKOUT_AGG_STORE, () => new KeyValueStore<InstrumentAggregate>(MARKOUT_AGG_STORE), 'markout')
    .addSink('markout-out', opts.markoutTopic ?? TOPICS.markouts.name, 'markout')
    .addSink('calibration-out', opts.calibrationTopic ?? TOPICS.costCalibration.name, 'calibration');
}
