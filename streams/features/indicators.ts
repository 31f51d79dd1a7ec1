/**
 * The per-bar indicator recursions, kept pure so each is pinned to its
 * published reference in test/streams/features/indicators.test.ts.
 */

/** RiskMetrics (J.P. Morgan 1996) EWMA variance: σ²_t = λσ²_{t−1} + (1−λ)r_t². */
export function ewmaVariance(prevVariance: number, r: number, lambda: number): number {
  return lambda * prevVariance + (1 - lambda) * r * r;
}

/** True range from the second bar: max(H−L, |H−C_{t−1}|, |L−C_{t−1}|). */
export function trueRange(high: number, low: number, prevClose: number): number {
  return Math.max(high - low, Math.abs(high - prevClose), Math.abs(low - prevClose));
}

/** Wilder's smoothing, TA-Lib convention: ATR_t = ((n−1)·ATR_{t−1} + TR_t) / n. */
export function wilderStep(prevAtr: number, tr: number, n: number): number {
  return ((n - 1) * prevAtr + tr) / n;
}
