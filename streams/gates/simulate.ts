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
    const pos = positionOf(bar.signal);
    const valid = validSpread(bar.spread_bps);
    if (valid === valid) spread = valid;
    const close = validClose(bar.close);
    returns[t] = barReturn(prevPos, pos, prevClose, close, spread);
    if (pos !== 0 && pos !== prevPos) trades += 1;
    prevPos = pos;
    if (close > 0) prevClose = close;
  }
  return { returns, trades, ...calmarStats(returns, p) };
}

/*
 * The steps of one bar, shared by `simulate` and the evaluator's cached spans
 * (evaluate.ts, SpanSeries), so both do the same floating-point operations.
 */

/** The position a signal asks for: its sign; a non-finite signal (NaN, ±Infinity, null from JSON) → 0. */
export function positionOf(signal: number): number {
  return Number.isFinite(signal) ? Math.sign(signal) : 0;
}

/** The close if usable (finite and > 0), else NaN. */
export function validClose(close: number): number {
  return Number.isFinite(close) && close > 0 ? close : NaN;
}

/** The spread if usable (finite and ≥ 0), else NaN. */
export function validSpread(spreadBps: number | null): number {
  return spreadBps !== null && Number.isFinite(spreadBps) && spreadBps >= 0 ? spreadBps : NaN;
}

/**
 * r_t = pos_{t−1}·(C_t/C_{t−1} − 1) − cost_t, with `prevClose` the last valid
 * close before the bar (NaN: none, no move) and `spread` the carried spread.
 */
export function barReturn(prevPos: number, pos: number, prevClose: number, close: number, spread: number): number {
  const move = prevPos !== 0 && close > 0 && prevClose > 0 ? prevPos * (close / prevClose - 1) : 0;
  const cost = (spread / 2 / 1e4) * Math.abs(pos - prevPos);
  return move - cost;
}
