/**
 * Markout of each fill at each horizon (DESIGN §6.4; seed: mm-bot README M1;
 * docs/markout.md): for a fill at t0 with price P and side s (+1 buy, −1 sell)
 *
 *   markout_bps(h) = s · (mid(t0 + h) − P) / P · 1e4
 *
 * with mid(t) the mid of the instrument's last tick at or before t (asof.ts).
 * Positive means the market moved the fill's way (a buy below the later mid).
 *
 * One MarkoutState per instrument, in memory; the functions change it in
 * place and validate before they change anything, so a rejected record leaves
 * no trace (the runtime's rule). What must survive a restart is told to a
 * MarkoutJournal as it changes — tick segments and fill records, small plain
 * JSON values the processor keeps in its state stores — and
 * `markoutStateOf(segments, fills)` rebuilds the state from them. Time is an
 * argument: `streamTime` is the task's stream time (largest record timestamp
 * seen, ProcessorContext.streamTime), so a replay resolves the same markouts.
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
import { emptyTickBuffer, evictTicksBefore, insertTick, midAt, tickBufferOf, tickCount, type TickBuffer, type TickSegment } from './asof.ts';

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

/**
 * What the state keeps of an accepted fill, while it waits for its horizons
 * and then for as long as its cid is remembered (the dedupe window). This is
 * the record the processor stores per fill.
 */
export interface PendingFill {
  cid: string;
  /** t0, epoch ms. */
  ts: number;
  side: Side;
  price: number;
  color: Color;
  /** The horizons (ms) not resolved yet, ascending; empty once all are. */
  open: number[];
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
  /** cid → fill, for every fill remembered (pending, or within the dedupe window). */
  fills: Map<string, PendingFill>;
  /** The same fills by fill time (equal times in arrival order); forgetting walks it from the front. */
  byTime: PendingFill[];
}

/**
 * Where the changes that must survive a restart go (the processor's state
 * stores). `segment`: a tick segment was created or changed; `fill`: a fill
 * was accepted or one of its horizons resolved. Each is told once per change;
 * the same object may be told again after a later change.
 */
export interface MarkoutJournal {
  segment(seg: TickSegment): void;
  segmentDropped(seg: TickSegment): void;
  fill(f: PendingFill): void;
  fillForgotten(f: PendingFill): void;
}

/** A journal that keeps nothing: for callers that hold the state in memory only. */
export const NO_JOURNAL: MarkoutJournal = { segment() {}, segmentDropped() {}, fill() {}, fillForgotten() {} };

export type MarkoutParams = Pick<MarkoutConfig, 'horizonsMs' | 'graceMs' | 'dedupeWindowMs'>;

export interface Resolution {
  /** Ordered by t0 + h, then fill time, then cid. */
  markouts: Markout[];
  /** Same order. */
  unresolved: Unresolved[];
}

export function initialMarkoutState(): MarkoutState {
  return { ticks: emptyTickBuffer(), pending: [], fills: new Map(), byTime: [] };
}

/**
 * The state again from what its journal stored (a changelog restore): the
 * segments, and the fill records with their open horizons. Fills with equal
 * times come back in cid order; nothing observable depends on that order
 * (a resolution batch is sorted by due time, fill time, cid).
 */
export function markoutStateOf(segments: Iterable<TickSegment>, fills: Iterable<PendingFill>): MarkoutState {
  const state = initialMarkoutState();
  state.ticks = tickBufferOf(segments);
  state.byTime = [...fills].sort((a, b) => a.ts - b.ts || (a.cid < b.cid ? -1 : a.cid > b.cid ? 1 : 0));
  for (const f of state.byTime) {
    state.fills.set(f.cid, f);
    for (const h of f.open) queueFor(state, h).fills.push(f);
  }
  return state;
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
export function addTick(state: MarkoutState, tick: Pick<Tick, 'ts' | 'bid' | 'ask'>, streamTime: number, params: MarkoutParams, journal = NO_JOURNAL): void {
  checkPrice('bid', tick.bid);
  checkPrice('ask', tick.ask);
  checkOnTime('tick', tick.ts, streamTime, params.graceMs);
  journal.segment(insertTick(state.ticks, tick.ts, (tick.bid + tick.ask) / 2));
}

/**
 * Accepts a fill for every configured horizon. Returns `duplicate` (and
 * changes nothing) when its cid was accepted before and is still remembered:
 * a duplicate is never counted twice. Throws InputError `invalid_value` for a
 * zero, negative or non-finite price or a bad timestamp, `late` for a fill
 * older than stream time − grace; nothing changes then.
 */
export function addFill(state: MarkoutState, fill: Pick<Fill, 'cid' | 'ts' | 'side' | 'price' | 'color'>, streamTime: number, params: MarkoutParams, journal = NO_JOURNAL): 'accepted' | 'duplicate' {
  checkPrice('price', fill.price);
  if (!Number.isSafeInteger(fill.ts)) throw new InputError('invalid_value', 'ts', `fill timestamp must be integer epoch ms, got ${fill.ts}`);
  if (typeof fill.cid !== 'string' || fill.cid === '') throw new InputError('invalid_value', 'cid', 'fill id must be a non-empty string');
  checkOnTime('fill', fill.ts, streamTime, params.graceMs);
  if (state.fills.has(fill.cid)) return 'duplicate';
  const f: PendingFill = { cid: fill.cid, ts: fill.ts, side: fill.side, price: fill.price, color: fill.color, open: [...params.horizonsMs] };
  state.fills.set(f.cid, f);
  insertByTime(state.byTime, f);
  for (const h of f.open) insertByTime(queueFor(state, h).fills, f);
  journal.fill(f);
  return 'accepted';
}

/**
 * Resolves every pending (fill, h) with t0 + h + grace < streamTime, then
 * evicts what no later lookup or duplicate check needs. The markouts' content
 * does not depend on how often this is called, only the batch they come in.
 */
export function advance(state: MarkoutState, instrument: string, streamTime: number, params: MarkoutParams, journal = NO_JOURNAL): Resolution {
  const markouts: Markout[] = [];
  const unresolved: Unresolved[] = [];
  const changed = new Set<PendingFill>();
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
      f.open = f.open.filter((h) => h !== q.horizonMs);
      changed.add(f);
    }
  }
  // Queues of horizons no longer configured go once drained.
  state.pending = state.pending.filter((q) => q.fills.length > 0 || params.horizonsMs.includes(q.horizonMs));
  for (const seg of evictTicksBefore(state.ticks, tickHorizon(state, streamTime, params))) journal.segmentDropped(seg);
  for (const f of forgetFills(state, streamTime - params.dedupeWindowMs)) {
    changed.delete(f);
    journal.fillForgotten(f);
  }
  for (const f of changed) journal.fill(f);
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

/** Entry counts, for the state-size metric and tests: ticks held, pending (fill, horizon) pairs, fills remembered. */
export function stateSize(state: MarkoutState): { ticks: number; pending: number; fills: number } {
  return { ticks: tickCount(state.ticks), pending: state.pending.reduce((n, q) => n + q.fills.length, 0), fills: state.fills.size };
}

/**
 * Forgets resolved fills from before `cutoff`, walking fill-time order; a fill
 * still pending holds the later ones back until it resolves (so a fill is
 * remembered for max(dedupe window, its longest horizon + grace)).
 */
function forgetFills(state: MarkoutState, cutoff: number): PendingFill[] {
  let n = 0;
  while (n < state.byTime.length && state.byTime[n]!.ts < cutoff && state.byTime[n]!.open.length === 0) n++;
  if (n === 0) return [];
  const gone = state.byTime.splice(0, n);
  for (const f of gone) state.fills.delete(f.cid);
  return gone;
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
