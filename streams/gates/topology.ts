/**
 * The signal path as one task per partition: ticks + candles → features →
 * rolling evaluator, with its outputs features.v1, gates.v1 and the internal
 * gates.partial.v1 that the blob stage (blob-processor.ts) combines.
 */
import { KeyValueStore, WindowStore } from '../runtime/stores.ts';
import type { Topology } from '../runtime/topology.ts';
import { TOPICS } from '../runtime/topics.ts';
import type { InstrumentCatalog } from '../model/instruments.ts';
import { featuresTopology, type FeaturesTopologyOptions } from '../features/processor.ts';
import type { GatesConfig } from './config.ts';
import { GATES_SPAN_STORE, GATES_STATE_STORE, GatesProcessor, type InstrumentGateState } from './processor.ts';
import type { SimBar } from './simulate.ts';

export interface SignalTopologyOptions extends FeaturesTopologyOptions {
  gates: GatesConfig;
  gatesTopic?: string;
  partialTopic?: string;
  /** A store the gates processor reads each instrument's latest cost calibration from (pipelineTopology connects it). */
  calibrationStore?: string;
}

export function signalTopology(catalog: InstrumentCatalog, opts: SignalTopologyOptions): Topology {
  const spanMs = opts.gates.spanDays * 86_400_000;
  return featuresTopology(catalog, opts)
    .addProcessor('gates', () => new GatesProcessor(opts.gates, { decisions: 'gates-out', partial: 'partial-out' }, opts.calibrationStore), 'features')
    .addStateStore(GATES_SPAN_STORE, () => new WindowStore<SimBar>(GATES_SPAN_STORE, spanMs), 'gates')
    .addStateStore(GATES_STATE_STORE, () => new KeyValueStore<InstrumentGateState>(GATES_STATE_STORE), 'gates')
    .addSink('gates-out', opts.gatesTopic ?? TOPICS.gates.name, 'gates')
    .addSink('partial-out', opts.partialTopic ?? TOPICS.gatesPartial.name, 'gates');
}
