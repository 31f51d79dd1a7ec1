/**
 * The features processor: one FeatureState per instrument in the
 * `features-state` store, advanced on each complete candle. Incomplete candles
 * are ignored (they come again complete); a candle at or before the
 * instrument's last bar is rejected as `late` before any state is written.
 */
import { InputError } from '../runtime/errors.ts';
import type { Processor, ProcessorContext, StreamRecord } from '../runtime/processor.ts';
import { KeyValueStore } from '../runtime/stores.ts';
import { Topology } from '../runtime/topology.ts';
import { TOPICS } from '../runtime/topics.ts';
import { validateRecord, type Candle } from '../model/records.ts';
import type { InstrumentCatalog } from '../model/instruments.ts';
import { DEFAULT_FEATURE_PARAMS, initialFeatureState, nextFeature, type FeatureParams, type FeatureState } from './features.ts';

export const FEATURES_STORE = 'features-state';

export class FeaturesProcessor implements Processor<Candle> {
  private ctx!: ProcessorContext;
  private store!: KeyValueStore<FeatureState>;

  constructor(private readonly params: FeatureParams = DEFAULT_FEATURE_PARAMS) {}

  init(context: ProcessorContext): void {
    this.ctx = context;
    this.store = context.getStateStore<KeyValueStore<FeatureState>>(FEATURES_STORE);
  }

  process({ value: candle }: StreamRecord<Candle>): void {
    if (!candle.complete) return;
    const state = this.store.get(candle.instrument) ?? initialFeatureState();
    if (candle.ts <= state.lastTs) {
      throw new InputError('late', 'ts', `candle ${new Date(candle.ts).toISOString()} for ${candle.instrument} is not after the last bar ${new Date(state.lastTs).toISOString()}`);
    }
    const { state: next, feature } = nextFeature(state, candle, this.params);
    this.store.put(candle.instrument, next);
    this.ctx.forward({ key: feature.instrument, value: feature, timestamp: feature.ts });
  }
}

export interface FeaturesTopologyOptions {
  params?: FeatureParams;
  /** Input topic (default md.candles.v1). */
  candlesTopic?: string;
  /** Output topic (default features.v1); it must carry the features.v1 schema. */
  featuresTopic?: string;
}

/** md.candles.v1 → features → features.v1, with the features-state store. */
export function featuresTopology(catalog: InstrumentCatalog, opts: FeaturesTopologyOptions = {}): Topology {
  return new Topology()
    .addSource('candles', opts.candlesTopic ?? TOPICS.candles.name, (v) => validateRecord('candles', v as Record<string, unknown>, catalog))
    .addProcessor('features', () => new FeaturesProcessor(opts.params ?? DEFAULT_FEATURE_PARAMS), 'candles')
    .addStateStore(FEATURES_STORE, () => new KeyValueStore<FeatureState>(FEATURES_STORE), 'features')
    .addSink('features-out', opts.featuresTopic ?? TOPICS.features.name, 'features');
}
