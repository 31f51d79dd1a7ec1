/**
 * Regime metrics and the direction signal (DESIGN §6.1; docs/regime.md), as
 * pure per-bar recursions over a small JSON state.
 *
 * Over the last W return signs (1 = up, 0 = down):
 * - entropy    = Shannon entropy (bits) of the W−k+1 overlapping k-bit sign
 *                patterns, divided by k, in [0, 1];
 * - coherence  = 1 − entropy;
 * - rupture    = flips between consecutive signs / (W − 1);
 * - stability  = 1 − rupture;
 * - hazard     = EWMA of the per-sign flip indicator with weight α, start-up
 *                bias removed (pandas `ewm(alpha=α, adjust=True).mean()`);
 * - repetition = occurrences in the window of the latest k-bit pattern,
 *                the latest itself included (so ≥ 1).
 * All six are null until the window holds W signs. The signal is
 * sign(EMA_fast − EMA_slow) of closes, forced to 0 while coherence is null or
 * below GUARD_MIN_COHERENCE.
 *
 * A zero return repeats the previous sign (a flat bar is not a change of
 * direction); before the first non-zero return there is no sign to repeat and
 * nothing enters the window. Per bar: O(1) for the pattern counts and flips,
 * O(2^k) ≤ O(W) for the entropy sum, plus the O(W) copy of the sign string
 * that keeps the update pure.
 */
import { resolveConfig, type Resolved } from '../runtime/config.ts';
import { ConfigError } from '../runtime/errors.ts';

/** The regime knobs, declared once for resolveConfig (keys are the env names). */
export const REGIME_KNOBS = {
  REGIME_WINDOW: {
    kind: 'integer', default: 64, min: 2, max: 4096,
    doc: 'W, return signs in the regime window (bars); also ≥ 2^k + k − 1',
  },
  REGIME_PATTERN_BITS: {
    kind: 'integer', default: 3, min: 1, max: 8,
    doc: 'k, bits per sign pattern for entropy and repetition',
  },
  REGIME_HAZARD_ALPHA: {
    kind: 'number', default: 0.05, min: 0.0001, max: 1,
    doc: 'α, EWMA weight of the newest flip indicator in hazard (0.05 ≈ 13.5-bar half-life)',
  },
  SIGNAL_EMA_FAST: {
    kind: 'integer', default: 12, min: 1, max: 10_000,
    doc: 'fast EMA period of closes for the direction signal (bars), < SIGNAL_EMA_SLOW',
  },
  SIGNAL_EMA_SLOW: {
    kind: 'integer', default: 48, min: 2, max: 10_000,
    doc: 'slow EMA period of closes for the direction signal (bars), > SIGNAL_EMA_FAST',
  },
  GUARD_MIN_COHERENCE: {
    kind: 'number', default: 0.55, min: 0, max: 1,
    doc: 'signal forced to 0 when coherence is below this (seed: operations-reference)',
  },
} as const;

export interface RegimeParams {
  /** W, signs in the window (bars); default 64 (one hour of M1). */
  window: number;
  /** k, bits per pattern; default 3. */
  patternBits: number;
  /** α in (0, 1], weight of the newest flip in hazard; default 0.05. */
  hazardAlpha: number;
  /** Fast EMA period (bars); default 12. */
  emaFast: number;
  /** Slow EMA period (bars); default 48. */
  emaSlow: number;
  /** Coherence below which the signal is 0; default 0.55. */
  minCoherence: number;
}

function toParams(c: Resolved<typeof REGIME_KNOBS>): RegimeParams {
  return {
    window: c.REGIME_WINDOW,
    patternBits: c.REGIME_PATTERN_BITS,
    hazardAlpha: c.REGIME_HAZARD_ALPHA,
    emaFast: c.SIGNAL_EMA_FAST,
    emaSlow: c.SIGNAL_EMA_SLOW,
    minCoherence: c.GUARD_MIN_COHERENCE,
  };
}

export const DEFAULT_REGIME_PARAMS: RegimeParams = Object.freeze(toParams(resolveConfig(REGIME_KNOBS, {}, {})));

/**
 * Resolves the regime knobs (explicit value → environment → default) and checks
 * the rules between knobs; every problem is reported at once in a ConfigError
 * naming the knobs involved.
 */
export function resolveRegimeParams(explicit: Partial<Record<keyof typeof REGIME_KNOBS, unknown>> = {}, env: NodeJS.ProcessEnv = process.env): RegimeParams {
  const p = toParams(resolveConfig(REGIME_KNOBS, explicit, env));
  const problems: { key: string; message: string }[] = [];
  const minWindow = 2 ** p.patternBits + p.patternBits - 1;
  if (p.window < minWindow) {
    // W − k + 1 patterns must be able to hold all 2^k patterns once, else the
    // entropy cannot reach k bits and coherence has a floor above 0 (W = 9,
    // k = 8 would give coherence ≥ 0.875 and let every signal through).
    problems.push({
      key: 'REGIME_WINDOW',
      message: `=${p.window}: must be ≥ 2^REGIME_PATTERN_BITS + REGIME_PATTERN_BITS − 1 = ${minWindow} for REGIME_PATTERN_BITS=${p.patternBits} (the W − k + 1 patterns in the window must be able to cover all 2^k patterns); raise REGIME_WINDOW or lower REGIME_PATTERN_BITS`,
    });
  }
  if (p.emaFast >= p.emaSlow) {
    problems.push({
      key: 'SIGNAL_EMA_FAST',
      message: `=${p.emaFast}: must be lower than SIGNAL_EMA_SLOW=${p.emaSlow} (the fast EMA needs the shorter period; the defaults are 12 and 48)`,
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return p;
}

/** Per-instrument state; plain JSON (no NaN or Infinity), a few hundred bytes at the defaults. */
export interface RegimeState {
  /** Signs in the window, oldest first, '1' = up and '0' = down; length ≤ W. */
  signs: string;
  /** Occurrences of each k-bit pattern (index = pattern, oldest sign as the high bit) in the window; length 2^k. */
  counts: number[];
  /** Flips between consecutive signs in the window. */
  flips: number;
  /** Hazard EWMA numerator Σ α(1−α)^i·flip_{t−i} and denominator Σ α(1−α)^i; both 0 before the first flip indicator. */
  hazardNum: number;
  hazardDen: number;
  /** EMAs of closes, seeded with the first close; null before it. */
  emaFast: number | null;
  emaSlow: number | null;
}

export interface RegimeMetrics {
  entropy: number | null;
  coherence: number | null;
  rupture: number | null;
  stability: number | null;
  hazard: number | null;
  repetition: number | null;
  /** −1, 0 or +1; 0 while coherence is null or below the guard. */
  signal: -1 | 0 | 1;
}

export function initialRegimeState(p: RegimeParams = DEFAULT_REGIME_PARAMS): RegimeState {
  return { signs: '', counts: new Array<number>(2 ** p.patternBits).fill(0), flips: 0, hazardNum: 0, hazardDen: 0, emaFast: null, emaSlow: null };
}

/**
 * Advances the state by one bar: `logReturn` is the bar's log return (null on
 * an instrument's first bar), `close` its close. Pure: the input state is not
 * modified. A non-finite return adds no sign and a non-finite or non-positive
 * close leaves the EMAs as they were, so no output is ever NaN.
 */
export function nextRegime(state: RegimeState, logReturn: number | null, close: number, p: RegimeParams = DEFAULT_REGIME_PARAMS): { state: RegimeState; metrics: RegimeMetrics } {
  const k = p.patternBits;
  const s0 = fitToParams(state, p);
  let { signs, flips, hazardNum, hazardDen, emaFast, emaSlow } = s0;
  let counts = s0.counts;

  const last = signs.length > 0 ? signs[signs.length - 1]! : null;
  const sign = logReturn === null || !Number.isFinite(logReturn) ? null : logReturn > 0 ? '1' : logReturn < 0 ? '0' : last;
  if (sign !== null) {
    counts = counts.slice();
    if (last !== null) {
      const flip = sign !== last ? 1 : 0;
      flips += flip;
      hazardNum = p.hazardAlpha * flip + (1 - p.hazardAlpha) * hazardNum;
      hazardDen = p.hazardAlpha + (1 - p.hazardAlpha) * hazardDen;
    }
    signs += sign;
    if (signs.length >= k) counts[patternAt(signs, signs.length - k, k)]! += 1;
    if (signs.length > p.window) {
      // Evict the oldest sign: its pattern and its flip with the next sign leave the window.
      counts[patternAt(signs, 0, k)]! -= 1;
      if (signs[0] !== signs[1]) flips -= 1;
      signs = signs.slice(1);
    }
  }

  if (Number.isFinite(close) && close > 0) {
    // ema + α(x − ema) rather than αx + (1−α)ema: a flat close leaves the EMA
    // bit-for-bit unchanged, so flat prices cannot produce a ±1 from rounding.
    emaFast = emaFast === null ? close : emaFast + (2 / (p.emaFast + 1)) * (close - emaFast);
    emaSlow = emaSlow === null ? close : emaSlow + (2 / (p.emaSlow + 1)) * (close - emaSlow);
  }

  const next: RegimeState = { signs, counts, flips, hazardNum, hazardDen, emaFast, emaSlow };
  return { state: next, metrics: metricsOf(next, p) };
}

function metricsOf(s: RegimeState, p: RegimeParams): RegimeMetrics {
  const k = p.patternBits;
  if (s.signs.length < p.window) {
    return { entropy: null, coherence: null, rupture: null, stability: null, hazard: null, repetition: null, signal: 0 };
  }
  const n = p.window - k + 1;
  let h = 0;
  for (const c of s.counts) {
    if (c > 0) {
      const q = c / n;
      h -= q * Math.log2(q);
    }
  }
  const entropy = h / k;
  const coherence = 1 - entropy;
  const rupture = s.flips / (p.window - 1);
  const repetition = s.counts[patternAt(s.signs, s.signs.length - k, k)]!;
  const trend = s.emaFast === null || s.emaSlow === null ? 0 : s.emaFast > s.emaSlow ? 1 : s.emaFast < s.emaSlow ? -1 : 0;
  return {
    entropy, coherence, rupture, stability: 1 - rupture,
    // A full window (W ≥ 2) has seen a flip indicator, so hazardDen > 0 unless the state was hand-made.
    hazard: s.hazardDen > 0 ? s.hazardNum / s.hazardDen : null,
    repetition,
    signal: coherence < p.minCoherence ? 0 : trend,
  };
}

/** The k-bit pattern of signs[from .. from+k−1], the oldest sign as the high bit. */
function patternAt(signs: string, from: number, k: number): number {
  let v = 0;
  for (let i = from; i < from + k; i++) v = (v << 1) | (signs.charCodeAt(i) === 49 ? 1 : 0);
  return v;
}

/**
 * A state saved under other W or k (a knob changed between runs) is rebuilt
 * from its newest W signs instead of being misread; the hazard and the EMAs
 * carry on. A consistent state is returned as it is.
 */
function fitToParams(s: RegimeState, p: RegimeParams): RegimeState {
  const k = p.patternBits;
  if (s.counts.length === 2 ** k && s.signs.length <= p.window) return s;
  const signs = s.signs.slice(-p.window);
  const counts = new Array<number>(2 ** k).fill(0);
  let flips = 0;
  for (let i = 0; i + k <= signs.length; i++) counts[patternAt(signs, i, k)]! += 1;
  for (let i = 1; i < signs.length; i++) if (signs[i] !== signs[i - 1]) flips += 1;
  return { ...s, signs, counts, flips };
}
