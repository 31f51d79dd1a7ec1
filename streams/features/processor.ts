/**
 * The features processor: one FeatureState per instrument in the
 * `features-state` store, advanced on each complete candle. Incomplete candles
 * are ignored (they come again complete); a candle at or before the
 * instrument's last bar is rejected as `late` before any state is written.
 *
 * Ticks (a second source, merged with the candles by timestamp, ticks first on
 * a tie) add their spread to the bar they belong to; the candle closing that
 * bar reports the mean. A tick at or before the instrument's last bar is late.
 */
import { InputError } from '../runtime/errors.ts';
import type { Processor, ProcessorContext, StreamRecord } from '../runtime/processor.ts';
import { KeyValueStore } from '../runtime/stores.ts';
import { Topology } from '../runtime/topology.ts';
import { TOPICS } from '../runtime/topics.ts';
import { validateRecord, type Candle, type Tick } from '../model/records.ts';
import type { InstrumentCatalog } from '../model/instruments.ts';
import { addTickSpread, DEFAULT_FEATURE_PARAMS, initialFeatureState, nextFeature, type FeatureParams, type FeatureState } from './features.ts';

export const FEATURES_STORE = 'features-state';

export class FeaturesProcessor implements Processor<Candle | Tick> {
  private ctx!: ProcessorContext;
  private store!: KeyValueStore<FeatureState>;

  constructor(private readonly params: FeatureParams = DEFAULT_FEATURE_PARAMS) {}

  init(context: ProcessorContext): void {
    this.ctx = context;
    this.store = context.getStateStore<KeyValueStore<FeatureState>>(FEATURES_STORE);
  }

  process({ value }: StreamRecord<Candle | Tick>): void {
    if ('bid' in value) return this.tick(value);
    const candle = value;
    if (!candle.complete) return;
    const state = this.store.get(candle.instrument) ?? initialFeatureState(this.params);
    if (candle.ts <= state.lastTs) {
      throw new InputError('late', 'ts', `candle ${new Date(candle.ts).toISOString()} for ${candle.instrument} is not after the last bar ${new Date(state.lastTs).toISOString()}`);
    }
    const { state: next, feature } = nextFeature(state, candle, this.params);
    this.store.put(candle.instrument, next);
    this.ctx.forward({ key: feature.instrument, value: feature, timestamp: feature.ts });
  }

  private tick(tick: Tick): void {
    const state = this.store.get(tick.instrument) ?? initialFeatureState(this.params);
    if (tick.ts <= state.lastTs) {
      throw new InputError('late', 'ts', `tick ${new Date(tick.ts).toISOString()} for ${tick.instrument} is not after its last bar ${new Date(state.lastTs).toISOString()}: that bar's spread is already published`);
    }
    this.store.put(tick.instrument, addTickSpread(state, tick.ts, tick.bid, tick.ask));
  }
}

export interface FeaturesTopologyOptions {
  params?: FeatureParams;
  /** Input topic (default md.candles.v1). */
  candlesTopic?: string;
  /** Tick topic for the spread (default md.ticks.v1); null: no tick source, spread_bps stays null. */
  ticksTopic?: string | null;
  /** Lateness tolerated for ticks, ms (default: the runtime's grace); the markouts need theirs. */
  ticksGraceMs?: number;
  /** Output topic (default features.v1); it must carry the features.v1 schema. */
  featuresTopic?: string;
}

/** md.ticks.v1 + md.candles.v1 → features → features.v1, with the features-state store. */
export function featuresTopology(catalog: InstrumentCatalog, opts: FeaturesTopologyOptions = {}): Topology {
  const topology = new Topology();
  const ticksTopic = opts.ticksTopic === undefined ? TOPICS.ticks.name : opts.ticksTopic;
  // Ticks first: the source order breaks timestamp ties, so a tick at a bar's close time counts in that bar.
  if (ticksTopic !== null) topology.addSource('ticks', ticksTopic, (v) => validateRecord('ticks', v as Record<string, unknown>, catalog), opts.ticksGraceMs !== undefined ? { graceMs: opts.ticksGraceMs } : {});
  return topology
    .addSource('candles', opts.candlesTopic ?? TOPICS.candles.name, (v) => validateRecord('candles', v as Record<string, unknown>, catalog))
    .addProcessor('features', () => new FeaturesProcessor(opts.params ?? DEFAULT_FEATURE_PARAMS), ...(ticksTopic !== null ? ['ticks', 'candles'] : ['candles']))
    .addStateStore(FEATURES_STORE, () => new KeyValueStore<FeatureState>(FEATURES_STORE), 'features')
    .addSink('features-out', opts.featuresTopic ?? TOPICS.features.name, 'features');
}
