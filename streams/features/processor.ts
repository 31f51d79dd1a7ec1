/**
 * The features processor: one FeatureState per instrument, advanced on each
 * complete candle. Incomplete candles are ignored (they will be sent again
 * complete); a candle at or before the instrument's last bar is late and is
 * rejected with reason `late` (the caller dead-letters it).
 */
import { InputError } from '../runtime/errors.ts';
import type { Candle } from '../model/records.ts';
import { DEFAULT_FEATURE_PARAMS, initialFeatureState, nextFeature, type Feature, type FeatureParams, type FeatureState } from './features.ts';

export class FeaturesProcessor {
  private readonly states = new Map<string, FeatureState>();

  constructor(private readonly params: FeatureParams = DEFAULT_FEATURE_PARAMS) {}

  /** Returns the feature for a complete candle, null for an incomplete one; throws InputError('late') for an old bar. */
  process(candle: Candle): Feature | null {
    if (!candle.complete) return null;
    const state = this.states.get(candle.instrument) ?? initialFeatureState();
    if (candle.ts <= state.lastTs) {
      throw new InputError('late', 'ts', `candle ${new Date(candle.ts).toISOString()} for ${candle.instrument} is not after the last bar ${new Date(state.lastTs).toISOString()}`);
    }
    const { state: next, feature } = nextFeature(state, candle, this.params);
    this.states.set(candle.instrument, next);
    return feature;
  }
}
