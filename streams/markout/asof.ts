/**
 * One instrument's ticks for as-of lookups on event time (DESIGN §6.4,
 * docs/markout.md "As-of join"): `midAt(t)` is the mid of the last tick at or
 * before `t`. Plain JSON, so a state store can hold it; the functions change
 * the buffer in place (copying thousands of ticks per record would cost more
 * than the join).
 *
 * - Ticks sit in two parallel arrays sorted by timestamp. In-order ticks are
 *   appended (the common case); a tick out of order is inserted at its place.
 * - Two ticks with the same timestamp keep their arrival order and the later
 *   one is "the last tick at or before t" — the quote that stood at the end of
 *   that millisecond, the same on every replay of the same input.
 * - `evictTicksBefore(buf, t)` drops every tick no lookup at or after `t` can
 *   return: all ticks before the last one at or before `t` (that one, the
 *   anchor, stays). The drop is amortised like the runtime's WindowStore: it
 *   happens once the droppable prefix is a quarter of the buffer, so the
 *   buffer holds at most 4/3 of the ticks it needs, plus one.
 */
import { InputError } from '../runtime/errors.ts';

export interface TickBuffer {
  /** Tick timestamps, epoch ms, ascending (equal timestamps in arrival order). */
  ts: number[];
  /** Mid = (bid + ask) / 2 of the tick at the same index. */
  mid: number[];
}

/** A mid and the timestamp of the tick it comes from. */
export interface AsOfMid {
  ts: number;
  mid: number;
}

export function emptyTickBuffer(): TickBuffer {
  return { ts: [], mid: [] };
}

/**
 * Adds one tick. Throws InputError `invalid_value` (and changes nothing) for a
 * non-integer timestamp or a mid that is not a positive finite number.
 */
export function insertTick(buf: TickBuffer, ts: number, mid: number): void {
  if (!Number.isSafeInteger(ts)) throw new InputError('invalid_value', 'ts', `tick timestamp must be integer epoch ms, got ${ts}`);
  if (!(Number.isFinite(mid) && mid > 0)) throw new InputError('invalid_value', 'mid', `tick mid must be a positive finite number, got ${mid}`);
  const n = buf.ts.length;
  if (n === 0 || ts >= buf.ts[n - 1]!) {
    buf.ts.push(ts);
    buf.mid.push(mid);
    return;
  }
  // After any ticks with the same timestamp: arrival order breaks the tie.
  const i = upperBound(buf.ts, ts);
  buf.ts.splice(i, 0, ts);
  buf.mid.splice(i, 0, mid);
}

/** The last tick at or before `t`; undefined when every tick is after `t` (or there is none). */
export function midAt(buf: TickBuffer, t: number): AsOfMid | undefined {
  const i = upperBound(buf.ts, t) - 1;
  return i < 0 ? undefined : { ts: buf.ts[i]!, mid: buf.mid[i]! };
}

/**
 * Drops the ticks that no lookup at a time ≥ `t` can return (those before the
 * last tick at or before `t`), once they are at least a quarter of the buffer.
 * Returns the number of ticks dropped.
 */
export function evictTicksBefore(buf: TickBuffer, t: number): number {
  const anchor = upperBound(buf.ts, t) - 1;
  if (anchor <= 0 || anchor * 4 < buf.ts.length) return 0;
  buf.ts.splice(0, anchor);
  buf.mid.splice(0, anchor);
  return anchor;
}

export function tickCount(buf: TickBuffer): number {
  return buf.ts.length;
}

/** First index whose value is > x in an ascending array. */
function upperBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (xs[m]! <= x) lo = m + 1;
    else hi = m;
  }
  return lo;
}
