/**
 * pandas-compatible exponentially weighted means, one observation at a time,
 * over a small JSON state that a state store can hold (DESIGN §6.5, §10;
 * docs/features.md "Reference vectors"). Pinned in
 * test/streams/features/published-vectors.test.ts.
 *
 * Both steps reproduce pandas' `ewm(...).mean()` with `adjust=False` and
 * `ignore_na=False`: the loop of `ewm()` in pandas/_libs/window/aggregations.pyx
 * (pandas 3.x), which keeps the weight `old` of the running mean relative to a
 * new observation:
 *
 *   every row, observed or missing:   old ← old · (1 − α)^Δ
 *   on an observation x:              y ← (old · y + new · x) / (old + new);  old ← 1
 *   on a missing row (NaN / null):    y is repeated; only `old` has decayed
 *
 * - By α (`ewmaAlphaStep`): Δ = 1 row and new = α. Without gaps this is
 *   y_t = (1 − α)·y_{t−1} + α·x_t; after k missing rows the previous mean
 *   weighs (1 − α)^(k+1) against α ("weights based on absolute positions").
 * - By half-life over irregular times (`ewmaHalfLifeStep`, pandas
 *   `ewm(halflife=h, times=t, adjust=False)`, allowed since pandas 3.0,
 *   pandas-dev/pandas#59142): 1 − α = ½ and Δ = (t_i − t_{i−1})/h, and the new
 *   weight is new = 1 − old, so the weights sum to 1 and
 *   y_i = α_i·x_i + (1 − α_i)·y_{i−1} with α_i = 1 − 0.5^((t_i − t_last)/h),
 *   t_last being the previous *observation* (a missing row's decay compounds
 *   into the same power of ½). This is also polars' `ewm_mean_by`.
 *
 * The first observation is the mean as it is; rows before it are ignored.
 * When the new observation equals the mean, the mean is kept as it is (pandas
 * does the same "to avoid numerical errors on constant series").
 *
 * One deliberate difference: pandas ≥ 3.0 also takes new = 1 − old when α is
 * exactly ½ (com = 1) without times, so for α = ½ right after a missing row it
 * gives (¼·y + ¾·x) where its own documentation, and every other α, give
 * (¼·y + ½·x)/¾. We keep the documented weights for every α.
 */
import { ConfigError, InputError } from '../runtime/errors.ts';

/** A value that may be missing: null or NaN is a missing observation. */
export type Observation = number | null;

export interface EwmaAlphaState {
  /** The running mean; null until the first observation. */
  mean: number | null;
  /** Weight of `mean` against a new observation's α, before this row's decay: 1 after an observation, (1 − α)^k after k missing rows. */
  oldWeight: number;
}

export interface EwmaHalfLifeState {
  /** The running mean; null until the first observation. */
  mean: number | null;
  /** Weight of `mean` at `lastTs` (1 after an observation; < 1 after missing rows). */
  oldWeight: number;
  /** Time of the last row (epoch ms), observed or missing; null before any. */
  lastTs: number | null;
}

export interface EwmaStep<S> {
  state: S;
  /** The mean after this row; null until the first observation (a missing row repeats the previous mean). */
  value: number | null;
}

export function initialEwmaAlphaState(): EwmaAlphaState {
  return { mean: null, oldWeight: 1 };
}

export function initialEwmaHalfLifeState(): EwmaHalfLifeState {
  return { mean: null, oldWeight: 1, lastTs: null };
}

const missing = (x: Observation): x is null => x === null || Number.isNaN(x);

/**
 * One row of pandas `ewm(alpha=α, adjust=False, ignore_na=False).mean()`.
 * `alpha` in (0, 1], checked once at configuration (`alphaFrom`), not here. Pure.
 */
export function ewmaAlphaStep(state: EwmaAlphaState, x: Observation, alpha: number): EwmaStep<EwmaAlphaState> {
  if (state.mean === null) {
    if (missing(x)) return { state, value: null };
    return { state: { mean: x, oldWeight: 1 }, value: x };
  }
  const old = state.oldWeight * (1 - alpha);
  if (missing(x)) return { state: { mean: state.mean, oldWeight: old }, value: state.mean };
  const mean = state.mean === x ? x : (old * state.mean + alpha * x) / (old + alpha);
  return { state: { mean, oldWeight: 1 }, value: mean };
}

/**
 * One row of pandas `ewm(halflife=h, times=t, adjust=False, ignore_na=False).mean()`
 * (= polars `ewm_mean_by(t, half_life=h)` on observed rows): the newest
 * observation weighs α = 1 − 0.5^(Δt/h), Δt since the previous observation.
 * `tMs` must not decrease (two rows at the same time: the second one gets
 * weight 0, as in pandas); `halfLifeMs` > 0, checked at configuration. Pure.
 */
export function ewmaHalfLifeStep(state: EwmaHalfLifeState, x: Observation, tMs: number, halfLifeMs: number): EwmaStep<EwmaHalfLifeState> {
  if (state.lastTs !== null && tMs < state.lastTs) {
    throw new InputError('late', 'ts', `${tMs} is before the previous row at ${state.lastTs}; a time-decayed EWMA needs times that do not decrease`);
  }
  if (state.mean === null) {
    if (missing(x)) return { state: { mean: null, oldWeight: 1, lastTs: tMs }, value: null };
    return { state: { mean: x, oldWeight: 1, lastTs: tMs }, value: x };
  }
  const old = state.oldWeight * 0.5 ** ((tMs - state.lastTs!) / halfLifeMs);
  if (missing(x)) return { state: { mean: state.mean, oldWeight: old, lastTs: tMs }, value: state.mean };
  const fresh = 1 - old;
  const mean = state.mean === x ? x : (old * state.mean + fresh * x) / (old + fresh);
  return { state: { mean, oldWeight: 1, lastTs: tMs }, value: mean };
}

/** One way to give the decay, as pandas' `ewm` takes it (halflife here in rows, not time). */
export type DecaySpec = { alpha: number } | { com: number } | { span: number } | { halflife: number };

/**
 * α from com, span, half-life (in rows) or α itself, validated once with the
 * ranges pandas enforces, and computed as pandas does (every form goes through
 * the centre of mass, then α = 1/(1 + com); pandas/core/window/ewm.py
 * `get_center_of_mass`), so α matches pandas to the last bit. `key` names the
 * configuration key in the error.
 */
export function alphaFrom(spec: DecaySpec, key = 'alpha'): number {
  let com: number;
  const bad = (message: string) => new ConfigError([{ key, message }]);
  if ('com' in spec) {
    if (!(spec.com >= 0) || !Number.isFinite(spec.com)) throw bad(`com=${spec.com}: the centre of mass must be a finite number ≥ 0 (α = 1/(1 + com))`);
    com = spec.com;
  } else if ('span' in spec) {
    if (!(spec.span >= 1) || !Number.isFinite(spec.span)) throw bad(`span=${spec.span}: the span must be a finite number ≥ 1 (α = 2/(span + 1))`);
    com = (spec.span - 1) / 2;
  } else if ('halflife' in spec) {
    if (!(spec.halflife > 0) || !Number.isFinite(spec.halflife)) throw bad(`halflife=${spec.halflife}: the half-life must be a finite number of rows > 0 (α = 1 − 0.5^(1/halflife))`);
    com = 1 / (1 - Math.exp(Math.log(0.5) / spec.halflife)) - 1;
  } else {
    if (!(spec.alpha > 0 && spec.alpha <= 1)) throw bad(`alpha=${spec.alpha}: α must be in (0, 1], e.g. 0.1`);
    com = (1 - spec.alpha) / spec.alpha;
  }
  return 1 / (1 + com);
}
