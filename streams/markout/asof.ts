/**
 * One instrument's ticks for as-of lookups on event time (DESIGN §6.4,
 * docs/markout.md "As-of join"): `midAt(t)` is the mid of the last tick at or
 * before `t`. Plain JSON, so state stores can hold it; the functions change
 * the buffer in place (copying thousands of ticks per record would cost more
 * than the join).
 *
 * - Ticks sit in **segments** of TICK_SEGMENT_MS of event time (by
 *   `floor(ts / TICK_SEGMENT_MS)`), each two parallel arrays sorted by
 *   timestamp. The processor stores each segment under its own key, so a
 *   changelog record carries one segment (≤ 100 ms of ticks), not the whole
 *   grace window: in-order ticks only ever change the newest segment, and
 *   the store serialises a changed key once per send. One value holding every
 *   tick made each send re-serialise 1.5 MiB per instrument at 10 000
 *   ticks/s (BENCHMARKS.md, issue 6), above the broker's 1 MiB record limit.
 * - In-order ticks are appended (the common case); a tick out of order is
 *   inserted at its place, in its own segment.
 * - Two ticks with the same timestamp keep their arrival order and the later
 *   one is "the last tick at or before t" — the quote that stood at the end of
 *   that millisecond, the same on every replay of the same input.
 * - `evictTicksBefore(buf, t)` drops every whole segment that no lookup at or
 *   after `t` can read: the segments before the one holding the anchor (the
 *   last tick at or before `t`). So the buffer holds the ticks it needs plus
 *   at most one segment's worth before the anchor.
 */
import { InputError } from '../runtime/errors.ts';

/** Event-time width of a segment (ms): small enough for cheap re-serialisation, large enough for few keys. */
export const TICK_SEGMENT_MS = 100;

export interface TickSegment {
  /** floor(ts / TICK_SEGMENT_MS) · TICK_SEGMENT_MS of every tick in it. */
  start: number;
  /** Tick timestamps, epoch ms, ascending (equal timestamps in arrival order). */
  ts: number[];
  /** Mid = (bid + ask) / 2 of the tick at the same index. */
  mid: number[];
}

export interface TickBuffer {
  /** Ascending by start; none empty. */
  segments: TickSegment[];
}

/** A mid and the timestamp of the tick it comes from. */
export interface AsOfMid {
  ts: number;
  mid: number;
}

export function emptyTickBuffer(): TickBuffer {
  return { segments: [] };
}

/** A buffer from stored segments (a changelog restore), in any order. */
export function tickBufferOf(segments: Iterable<TickSegment>): TickBuffer {
  return { segments: [...segments].filter((s) => s.ts.length > 0).sort((a, b) => a.start - b.start) };
}

export function segmentStart(ts: number): number {
  return Math.floor(ts / TICK_SEGMENT_MS) * TICK_SEGMENT_MS;
}

/**
 * Adds one tick and returns the segment it went into (the one to store
 * again). Throws InputError `invalid_value` (and changes nothing) for a
 * non-integer timestamp or a mid that is not a positive finite number.
 */
export function insertTick(buf: TickBuffer, ts: number, mid: number): TickSegment {
  if (!Number.isSafeInteger(ts)) throw new InputError('invalid_value', 'ts', `tick timestamp must be integer epoch ms, got ${ts}`);
  if (!(Number.isFinite(mid) && mid > 0)) throw new InputError('invalid_value', 'mid', `tick mid must be a positive finite number, got ${mid}`);
  const start = segmentStart(ts);
  const segs = buf.segments;
  let i = segs.length - 1;
  while (i >= 0 && segs[i]!.start > start) i--; // mostly the last one: search from the end
  let seg = segs[i];
  if (!seg || seg.start !== start) {
    seg = { start, ts: [], mid: [] };
    segs.splice(i + 1, 0, seg);
  }
  const n = seg.ts.length;
  if (n === 0 || ts >= seg.ts[n - 1]!) {
    seg.ts.push(ts);
    seg.mid.push(mid);
  } else {
    // After any ticks with the same timestamp: arrival order breaks the tie.
    const j = upperBound(seg.ts, ts);
    seg.ts.splice(j, 0, ts);
    seg.mid.splice(j, 0, mid);
  }
  return seg;
}

/** The last tick at or before `t`; undefined when every tick is after `t` (or there is none). */
export function midAt(buf: TickBuffer, t: number): AsOfMid | undefined {
  const at = anchor(buf, t);
  if (!at) return undefined;
  const seg = buf.segments[at.segment]!;
  return { ts: seg.ts[at.index]!, mid: seg.mid[at.index]! };
}

/**
 * Drops the segments that no lookup at a time ≥ `t` can read: those before
 * the segment of the last tick at or before `t`. Returns the dropped segments
 * (to delete from the store).
 */
export function evictTicksBefore(buf: TickBuffer, t: number): TickSegment[] {
  const at = anchor(buf, t);
  if (!at || at.segment === 0) return [];
  return buf.segments.splice(0, at.segment);
}

export function tickCount(buf: TickBuffer): number {
  let n = 0;
  for (const s of buf.segments) n += s.ts.length;
  return n;
}

/** Segment and index of the last tick at or before `t`. */
function anchor(buf: TickBuffer, t: number): { segment: number; index: number } | undefined {
  const segs = buf.segments;
  // The last segment starting at or before t; its first tick may still be after t, then the one before.
  let lo = 0;
  let hi = segs.length;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (segs[m]!.start <= t) lo = m + 1;
    else hi = m;
  }
  for (let s = lo - 1; s >= 0; s--) {
    const i = upperBound(segs[s]!.ts, t) - 1;
    if (i >= 0) return { segment: s, index: i };
  }
  return undefined;
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
