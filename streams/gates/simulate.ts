/**
 * Simulates one instrument's direction signal over its span (DESIGN §6.2).
 *
 * The position over bar t is the signal at bar t−1's close: it is taken at a
 * close and held to the next one. The simulation starts flat, so with
 * pos_{−1} = 0 and pos_t = signal_t:
 *
 *   r_0 = −cost_0
 *   r_t = pos_{t−1} · (C_t / C_{t−1} − 1) − cost_t           (t ≥ 1)
 *   cost_t = (spread_bps_t / 2 / 1e4) · |pos_t − pos_{t−1}|
 *
 * i.e. half the bar's spread is paid per unit of position changed at its
 * close (a flip from +1 to −1 pays it twice). One return per bar. A position
 * still open at the last bar is marked to its close; no exit cost is charged.
 *
 * A trade is an entry into a non-zero position: 0 → ±1, or a flip ±1 → ∓1
 * (counted once). Leaving to 0 is not a trade.
 *
 * Dirty input cannot make NaN: a signal is reduced to its sign (NaN → 0); a
 * non-finite or non-positive close is skipped (its price move is taken by the
 * next valid close); a missing or invalid spread is replaced by the last
 * valid one (0 before any).
 */
import { calmarStats, type CalmarParams } from './calmar.ts';

export interface SimBar {
  /** Close time, epoch ms. */
  ts: number;
  close: number;
  /** Direction at this close: −1, 0 or +1. */
  signal: number;
  /** Bid-ask spread in bps over the bar; null when unknown. */
  spread_bps: number | null;
}

export interface SimResult {
  /** One strategy return per bar. */
  returns: number[];
  trades: number;
  calmar: number;
  totalReturn: number;
  maxDrawdown: number;
  annualReturn: number;
}

export function simulate(bars: readonly SimBar[], p: CalmarParams): SimResult {
  const returns: number[] = new Array(bars.length);
  let trades = 0;
  let prevPos = 0;
  let prevClose = NaN;
  let spread = 0;
  for (let t = 0; t < bars.length; t++) {
    const bar = bars[t]!;
    const pos = Number.isFinite(bar.signal) ? Math.sign(bar.signal) : 0;
    if (bar.spread_bps !== null && Number.isFinite(bar.spread_bps) && bar.spread_bps >= 0) spread = bar.spread_bps;
    const close = Number.isFinite(bar.close) && bar.close > 0 ? bar.close : NaN;
    const move = prevPos !== 0 && close > 0 && prevClose > 0 ? prevPos * (close / prevClose - 1) : 0;
    const cost = (spread / 2 / 1e4) * Math.abs(pos - prevPos);
    returns[t] = move - cost;
    if (pos !== 0 && pos !== prevPos) trades += 1;
    prevPos = pos;
    if (close > 0) prevClose = close;
  }
  return { returns, trades, ...calmarStats(returns, p) };
}
