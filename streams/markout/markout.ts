/**
 * Markout of each fill at each horizon (DESIGN §6.4; seed: mm-bot README M1;
 * docs/markout.md): for a fill at t0 with price P and side s (+1 buy, −1 sell)
 *
 *   markout_bps(h) = s · (mid(t0 + h) − P) / P · 1e4
 *
 * with mid(t) the mid of the instrument's last tick at or before t (asof.ts).
 * Positive means the market moved the fill's way (a buy below the later mid).
 *
 * One MarkoutState per instrument, plain JSON for a state store; the
 * functions change it in place and validate before they change anything, so a
 * rejected record leaves no trace (the runtime's rule). Time is an argument:
 * `streamTime` is the task's stream time (largest record timestamp seen,
 * ProcessorContext.streamTime), so a replay resolves the same markouts.
 *
 * Finality: a (fill, h) pair resolves once stream time passes t0 + h + grace,
 * strictly. Any tick at or before t0 + h that has not arrived by then is late
 * (ts < stream time − grace), so it is rejected and the markout never changes.
 * The processor must give its sources the same grace (graceMs =
 * MARKOUT_GRACE_MS); this module also rejects late records itself.
 */
import { InputError } from '../runtime/errors.ts';
import type { Color, Fill, Side, Tick } from '../model/records.ts';
import type { MarkoutConfig } from './config.ts';
import { emptyTickBuffer, evictTicksBefore, insertTick, midAt, tickCount, type TickBuffer } from './asof.ts';

/** One output record; field names are schemas/avro/markout.avsc's. */
export interface Markout {
  cid: string;
  instrument: string;
  fill_ts: number;
  horizon_ms: number;
  side: Side;
  price: number;
  mid: number;
  /** Timestamp of the tick `mid` comes from (≤ fill_ts + horizon_ms). */
  mid_ts: number;
  markout_bps: number;
  color: Color;
}

/**
 * A (fill, horizon) pair that resolved without a markout. `no_tick`: the
 * instrument had no tick at or before t0 + h (a fill before the first tick,
 * with the first tick later than t0 + h). Not emitted as a markout: any mid
 * would be invented.
 */
export interface Unresolved {
  cid: string;
  instrument: string;
  fill_ts: number;
  horizon_ms: number;
  color: Color;
  reason: UnresolvedReason;
}
export const UNRESOLVED_REASONS = ['no_tick'] as const;
export type UnresolvedReason = (typeof UNRESOLVED_REASONS)[number];

/** What a fill keeps while it waits for its horizons. */
export interface PendingFill {
  cid: string;
  /** t0, epoch ms. */
  ts: number;
  side: Side;
  price: number;
  color: Color;
}

/** The fills waiting for one horizon, by fill time (equal times in arrival order). */
export interface HorizonQueue {
  horizonMs: number;
  fills: PendingFill[];
}

export interface MarkoutState {
  ticks: TickBuffer;
  /**
   * One queue per horizon, ascending. A fill joins the queues of the horizons
   * configured when it is accepted and keeps them; a horizon dropped from the
   * configuration drains its queue and disappears, so a restart with other
   * MARKOUT_HORIZONS_MS neither loses nor invents a markout.
   */
  pending: HorizonQueue[];
  /** cid → fill time, for every fill accepted within the dedupe window (own properties only). */
  seen: Record<string, number>;
  /** The cids of `seen` in the order they were accepted; eviction walks it from the front. */
  seenOrder: string[];
}

export type MarkoutParams = Pick<MarkoutConfig, 'horizonsMs' | 'graceMs' | 'dedupeWindowMs'>;

export interface Resolution {
  /** Ordered by t0 + h, then fill time, then cid. */
  markouts: Markout[];
  /** Same order. */
  unresolved: Unresolved[];
}

export function initialMarkoutState(): MarkoutState {
  return { ticks: emptyTickBuffer(), pending: [], seen: {}, seenOrder: [] };
}

/** s · (mid − P) / P · 1e4, s = +1 for a buy, −1 for a sell. */
export function markoutBps(side: Side, price: number, mid: number): number {
  const s = side === 'buy' ? 1 : -1;
  return (s * (mid - price) / price) * 1e4;
}

/**
 * Adds a tick's mid, (bid + ask) / 2. Throws InputError `late` for a tick
 * older than stream time − grace, `invalid_value` for a bad timestamp or a
 * non-positive bid, ask or mid; nothing changes then.
 */
export function addTick(state: MarkoutState, tick: Pick<Tick, 'ts' | 'bid' | 'ask'>, streamTime: number, params: MarkoutParams): void {
  checkPrice('bid', tick.bid);
  checkPrice('ask', tick.ask);
  checkOnTime('tick', tick.ts, streamTime, params.graceMs);
  insertTick(state.ticks, tick.ts, (tick.bid + tick.ask) / 2);
}

/**
 * Accepts a fill for every configured horizon. Returns `duplicate` (and
 * changes nothing) when its cid was accepted before and is still remembered:
 * a duplicate is never counted twice. Throws InputError `invalid_value` for a
 * zero, negative or non-finite price or a bad timestamp, `late` for a fill
 * older than stream time − grace; nothing changes then.
 */
export function addFill(state: MarkoutState, fill: Pick<Fill, 'cid' | 'ts' | 'side' | 'price' | 'color'>, streamTime: number, params: MarkoutParams): 'accepted' | 'duplicate' {
  checkPrice('price', fill.price);
  if (!Number.isSafeInteger(fill.ts)) throw new InputError('invalid_value', 'ts', `fill timestamp must be integer epoch ms, got ${fill.ts}`);
  if (typeof fill.cid !== 'string' || fill.cid === '') throw new InputError('invalid_value', 'cid', 'fill id must be a non-empty string');
  checkOnTime('fill', fill.ts, streamTime, params.graceMs);
  if (Object.hasOwn(state.seen, fill.cid)) return 'duplicate';
  // defineProperty: a cid such as "__proto__" must become a key, not the prototype.
  Object.defineProperty(state.seen, fill.cid, { value: fill.ts, enumerable: true, writable: true, configurable: true });
  state.seenOrder.push(fill.cid);
  const pending: PendingFill = { cid: fill.cid, ts: fill.ts, side: fill.side, price: fill.price, color: fill.color };
  for (const h of params.horizonsMs) insertByTime(queueFor(state, h).fills, pending);
  return 'accepted';
}

/**
 * Resolves every pending (fill, h) with t0 + h + grace < streamTime, then
 * evicts what no later lookup or duplicate check needs. The markouts' content
 * does not depend on how often this is called, only the batch they come in.
 */
export function advance(state: MarkoutState, instrument: string, streamTime: number, params: MarkoutParams): Resolution {
  const markouts: Markout[] = [];
  const unresolved: Unresolved[] = [];
  const until = streamTime - params.graceMs; // resolve t0 + h < until
  for (const q of state.pending) {
    let n = 0;
    while (n < q.fills.length && q.fills[n]!.ts + q.horizonMs < until) n++;
    if (n === 0) continue;
    for (const f of q.fills.splice(0, n)) {
      const at = midAt(state.ticks, f.ts + q.horizonMs);
      if (at) {
        markouts.push({ cid: f.cid, instrument, fill_ts: f.ts, horizon_ms: q.horizonMs, side: f.side, price: f.price, mid: at.mid, mid_ts: at.ts, markout_bps: markoutBps(f.side, f.price, at.mid), color: f.color });
      } else {
        unresolved.push({ cid: f.cid, instrument, fill_ts: f.ts, horizon_ms: q.horizonMs, color: f.color, reason: 'no_tick' });
      }
    }
  }
  // Queues of horizons no longer configured go once drained.
  state.pending = state.pending.filter((q) => q.fills.length > 0 || params.horizonsMs.includes(q.horizonMs));
  evictTicksBefore(state.ticks, tickHorizon(state, streamTime, params));
  forgetCids(state, streamTime - params.dedupeWindowMs);
  return { markouts: markouts.sort(byDue), unresolved: unresolved.sort(byDue) };
}

/**
 * The earliest time a lookup can still ask for: the earliest pending t0 + h,
 * and for fills still to come (t0 ≥ stream time − grace, else late) stream
 * time − grace + the shortest horizon. Ticks before the last one at or before
 * it are never read again.
 */
export function tickHorizon(state: MarkoutState, streamTime: number, params: MarkoutParams): number {
  let t = streamTime - params.graceMs + Math.min(...params.horizonsMs);
  for (const q of state.pending) {
    const first = q.fills[0];
    if (first) t = Math.min(t, first.ts + q.horizonMs);
  }
  return t;
}

/** Entry counts, for the state-size metric and tests. */
export function stateSize(state: MarkoutState): { ticks: number; pending: number; seen: number } {
  return { ticks: tickCount(state.ticks), pending: state.pending.reduce((n, q) => n + q.fills.length, 0), seen: state.seenOrder.length };
}

/**
 * Forgets cids of fills before `cutoff`, walking acceptance order. A fill
 * accepted out of order can hold a few older ones back, by at most the grace:
 * `seen` keeps fills with t0 ≥ stream time − dedupe window − grace.
 */
function forgetCids(state: MarkoutState, cutoff: number): void {
  let n = 0;
  while (n < state.seenOrder.length && state.seen[state.seenOrder[n]!]! < cutoff) {
    delete state.seen[state.seenOrder[n]!];
    n++;
  }
  if (n > 0) state.seenOrder.splice(0, n);
}

function queueFor(state: MarkoutState, horizonMs: number): HorizonQueue {
  let i = 0;
  while (i < state.pending.length && state.pending[i]!.horizonMs < horizonMs) i++;
  const q = state.pending[i];
  if (q && q.horizonMs === horizonMs) return q;
  const created: HorizonQueue = { horizonMs, fills: [] };
  state.pending.splice(i, 0, created);
  return created;
}

/** Inserts after every fill at or before its time; fills mostly come in order, so search from the end. */
function insertByTime(fills: PendingFill[], f: PendingFill): void {
  let i = fills.length;
  while (i > 0 && fills[i - 1]!.ts > f.ts) i--;
  fills.splice(i, 0, f);
}

function checkPrice(field: string, v: number): void {
  if (!(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw new InputError('invalid_value', field, `must be a positive finite number, got ${v}`);
}

function checkOnTime(what: string, ts: number, streamTime: number, graceMs: number): void {
  if (ts < streamTime - graceMs) {
    throw new InputError('late', 'ts', `${what} at ${new Date(ts).toISOString()} is more than MARKOUT_GRACE_MS=${graceMs} ms behind stream time ${new Date(streamTime).toISOString()}`);
  }
}

function byDue(a: { fill_ts: number; horizon_ms: number; cid: string }, b: { fill_ts: number; horizon_ms: number; cid: string }): number {
  return a.fill_ts + a.horizon_ms - (b.fill_ts + b.horizon_ms) || a.fill_ts - b.fill_ts || (a.cid < b.cid ? -1 : a.cid > b.cid ? 1 : 0);
}
