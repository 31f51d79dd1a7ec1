/**
 * Features per instrument on each complete candle (DESIGN §6.1; docs/features.md).
 *
 * - log return r_t = ln(C_t / C_{t−1}), from the second bar;
 * - EWMA volatility (RiskMetrics, λ = FEATURES_EWMA_LAMBDA, default 0.94 — the
 *   RiskMetrics daily value, kept for M1 as the seeds do): seeded with
 *   σ²_1 = r_1² on the first return, then σ²_t = λσ²_{t−1} + (1−λ)r_t²;
 *   ewma_vol = σ_t per bar (not annualised);
 * - true range from the second bar and ATR(14) with Wilder smoothing, seeded as
 *   TA-Lib does: the first ATR, at bar index 14, is the mean of TR[1..14];
 * - volume_usd = volume · close (quote-currency notional; for USD-quoted pairs, USD);
 * - regime metrics and the direction signal (regime.ts, docs/regime.md);
 * - spread_bps = mean of (ask − bid)/mid · 1e4 over the ticks of the bar, i.e.
 *   with ts in (close time − 60 s, close time]; null when the bar had no tick.
 *
 * The state per instrument is a plain object so a state store can hold it.
 * A gap in the candles does not reset anything: span integrity is the gates'
 * concern (DESIGN §6.2), not the features'.
 */
import type { Candle } from '../model/records.ts';
import { ewmaVariance, trueRange, wilderStep } from './indicators.ts';
import { DEFAULT_REGIME_PARAMS, initialRegimeState, nextRegime, type RegimeMetrics, type RegimeParams, type RegimeState } from './regime.ts';

export interface FeatureParams {
  /** RiskMetrics decay λ in (0, 1); default 0.94. */
  ewmaLambda: number;
  /** ATR period n; default 14. */
  atrPeriod: number;
  /** Regime metrics and direction signal (docs/regime.md). */
  regime: RegimeParams;
}

export const DEFAULT_FEATURE_PARAMS: FeatureParams = { ewmaLambda: 0.94, atrPeriod: 14, regime: DEFAULT_REGIME_PARAMS };

export interface Feature {
  instrument: string;
  granularity: string;
  ts: number;
  bar_index: number;
  close: number;
  log_return: number | null;
  ewma_vol: number | null;
  true_range: number | null;
  atr14: number | null;
  volume_usd: number;
  spread_bps: number | null;
  entropy: number | null;
  coherence: number | null;
  rupture: number | null;
  stability: number | null;
  hazard: number | null;
  repetition: number | null;
  /** Direction −1/0/+1: sign(EMA_fast − EMA_slow), 0 while coherence < GUARD_MIN_COHERENCE. */
  signal: number;
}

export interface FeatureState {
  /** Index of the last bar processed (0-based); −1 before the first. */
  barIndex: number;
  lastTs: number;
  prevClose: number | null;
  variance: number | null;
  /** Sum of TR[1..barIndex] until the ATR is seeded. */
  trSum: number;
  atr: number | null;
  /** Close time of the bar the tick spreads below belong to; null when none. */
  spreadBarEnd: number | null;
  spreadSum: number;
  spreadCount: number;
  regime: RegimeState;
}

export function initialFeatureState(p: FeatureParams = DEFAULT_FEATURE_PARAMS): FeatureState {
  return { barIndex: -1, lastTs: -Infinity, prevClose: null, variance: null, trSum: 0, atr: null, spreadBarEnd: null, spreadSum: 0, spreadCount: 0, regime: initialRegimeState(p.regime) };
}

/** Advances the state by one complete candle and returns the feature vector. Pure. */
export function nextFeature(state: FeatureState, c: Candle, p: FeatureParams = DEFAULT_FEATURE_PARAMS): { state: FeatureState; feature: Feature } {
  const barIndex = state.barIndex + 1;
  let logReturn: number | null = null;
  let variance = state.variance;
  let tr: number | null = null;
  let trSum = state.trSum;
  let atr = state.atr;
  if (state.prevClose !== null) {
    logReturn = Math.log(c.close / state.prevClose);
    variance = variance === null ? logReturn * logReturn : ewmaVariance(variance, logReturn, p.ewmaLambda);
    tr = trueRange(c.high, c.low, state.prevClose);
    if (barIndex < p.atrPeriod) trSum += tr;
    else if (barIndex === p.atrPeriod) atr = (trSum + tr) / p.atrPeriod;
    else atr = wilderStep(atr!, tr, p.atrPeriod);
  }
  const regime = nextRegime(state.regime ?? initialRegimeState(p.regime), logReturn, c.close, p.regime);
  const m: RegimeMetrics = regime.metrics;
  return {
    state: { barIndex, lastTs: c.ts, prevClose: c.close, variance, trSum, atr, spreadBarEnd: null, spreadSum: 0, spreadCount: 0, regime: regime.state },
    feature: {
      instrument: c.instrument, granularity: c.granularity, ts: c.ts, bar_index: barIndex, close: c.close,
      log_return: logReturn, ewma_vol: variance === null ? null : Math.sqrt(variance), true_range: tr,
      atr14: atr, volume_usd: c.volume * c.close,
      spread_bps: state.spreadBarEnd === c.ts && state.spreadCount > 0 ? state.spreadSum / state.spreadCount : null,
      entropy: m.entropy, coherence: m.coherence, rupture: m.rupture, stability: m.stability, hazard: m.hazard, repetition: m.repetition, signal: m.signal,
    },
  };
}

/** The bar a tick at `ts` belongs to, by close time: ticks in (T − barMs, T] belong to the bar closing at T. */
export function barEndOf(ts: number, barMs = 60_000): number {
  return Math.ceil(ts / barMs) * barMs;
}

/** Adds one tick's spread to the bar it belongs to (a new bar starts the sums afresh). Pure. */
export function addTickSpread(state: FeatureState, tickTs: number, bid: number, ask: number): FeatureState {
  const end = barEndOf(tickTs);
  const bps = ((ask - bid) / ((ask + bid) / 2)) * 1e4;
  if (state.spreadBarEnd === end) return { ...state, spreadSum: state.spreadSum + bps, spreadCount: state.spreadCount + 1 };
  return { ...state, spreadBarEnd: end, spreadSum: bps, spreadCount: 1 };
}
