import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addFill, addTick, advance, initialMarkoutState, markoutBps, markoutStateOf, stateSize, tickHorizon,
  type Markout, type MarkoutJournal, type MarkoutParams, type MarkoutState, type PendingFill, type Unresolved,
} from '../../../streams/markout/markout.ts';
import { TICK_SEGMENT_MS, type TickSegment } from '../../../streams/markout/asof.ts';
import { DEFAULT_MARKOUT_CONFIG } from '../../../streams/markout/config.ts';
import { InputError } from '../../../streams/runtime/errors.ts';
import type { Color, Side } from '../../../streams/model/records.ts';
import { rng } from '../../support/random.ts';

const T0 = Date.UTC(2026, 10, 13, 12);
const I = 'EUR_USD';
const P: MarkoutParams = { horizonsMs: [200, 500], graceMs: 1000, dedupeWindowMs: 5000 };

/** A quote with the given mid (spread 0.0002). */
const q = (ts: number, mid: number) => ({ ts, bid: mid - 0.0001, ask: mid + 0.0001 });
const fill = (cid: string, ts: number, side: Side, price: number, color: Color = 'blue') => ({ cid, ts, side, price, color });
const mids = (ms: Markout[]) => ms.map((m) => [m.cid, m.horizon_ms, m.mid_ts, Number(m.markout_bps.toFixed(9))]);

/**
 * A journal into two maps, as the processor's stores keep it (one entry per
 * segment, one per fill); `restore()` rebuilds the state from a JSON copy of
 * them, as a changelog restore does.
 */
class StoreJournal implements MarkoutJournal {
  readonly segments = new Map<number, TickSegment>();
  readonly fills = new Map<string, PendingFill>();
  /** Changes told, per kind, to check the journal is told at all. */
  told = 0;
  segment(seg: TickSegment): void { this.segments.set(seg.start, seg); this.told++; }
  segmentDropped(seg: TickSegment): void { assert.ok(this.segments.delete(seg.start), `dropped segment ${seg.start} was stored`); }
  fill(f: PendingFill): void { this.fills.set(f.cid, f); this.told++; }
  fillForgotten(f: PendingFill): void { assert.ok(this.fills.delete(f.cid), `forgotten fill ${f.cid} was stored`); }
  restore(): MarkoutState {
    return markoutStateOf(JSON.parse(JSON.stringify([...this.segments.values()])), JSON.parse(JSON.stringify([...this.fills.values()])));
  }
}

/** Feeds records in order; stream time is the largest timestamp seen, as in a task. Returns every resolution. */
function run(records: ({ tick: ReturnType<typeof q> } | { fill: ReturnType<typeof fill> })[], params = P, state = initialMarkoutState(), st = -Infinity) {
  const markouts: Markout[] = [];
  const unresolved: Unresolved[] = [];
  for (const r of records) {
    const ts = 'tick' in r ? r.tick.ts : r.fill.ts;
    st = Math.max(st, ts);
    if ('tick' in r) addTick(state, r.tick, st, params);
    else addFill(state, r.fill, st, params);
    const res = advance(state, I, st, params);
    markouts.push(...res.markouts);
    unresolved.push(...res.unresolved);
  }
  return { state, st, markouts, unresolved };
}

test('markout_bps by hand: a buy and a sell', () => {
  // Buy at 1.1000, mid later 1.1011: +0.0011 / 1.1 · 1e4 = +10 bps (the market moved our way).
  assert.ok(Math.abs(markoutBps('buy', 1.1, 1.1011) - 10) < 1e-9);
  // Buy at 1.1000, mid later 1.0989: −10 bps.
  assert.ok(Math.abs(markoutBps('buy', 1.1, 1.0989) + 10) < 1e-9);
  // Sell at 150.00, mid later 150.03: −(0.03 / 150) · 1e4 = −2 bps.
  assert.ok(Math.abs(markoutBps('sell', 150, 150.03) + 2) < 1e-9);
  // Sell at 150.00, mid later 149.925: +5 bps.
  assert.ok(Math.abs(markoutBps('sell', 150, 149.925) - 5) < 1e-9);
});

test('a buy and a sell resolve once stream time passes t0 + h + grace, with hand-computed markouts; a tick exactly at t0 + h is included', () => {
  const s = initialMarkoutState();
  const feed = [q(T0 - 100, 1.1), q(T0 + 150, 1.1005), q(T0 + 200, 1.1011), q(T0 + 499, 1.0989), q(T0 + 501, 1.2)];
  let st = -Infinity;
  for (const t of feed.slice(0, 1)) addTick(s, t, (st = t.ts), P);
  assert.equal(addFill(s, fill('b1', T0, 'buy', 1.1), (st = T0), P), 'accepted');
  assert.equal(addFill(s, fill('s1', T0, 'sell', 1.1002, 'green'), st, P), 'accepted');
  for (const t of feed.slice(1)) addTick(s, t, (st = t.ts), P);
  // t0 + 200 + grace = T0 + 1200: not passed yet at T0 + 1200.
  assert.deepEqual(advance(s, I, T0 + 1200, P), { markouts: [], unresolved: [] });
  const at200 = advance(s, I, T0 + 1201, P);
  assert.deepEqual(at200.unresolved, []);
  assert.deepEqual(mids(at200.markouts), [
    ['b1', 200, T0 + 200, 10], // (1.1011 − 1.1) / 1.1 · 1e4
    ['s1', 200, T0 + 200, -8.180330849], // −(1.1011 − 1.1002) / 1.1002 · 1e4 = −0.0009 / 1.1002 · 1e4
  ]);
  assert.deepEqual(at200.markouts[0], { cid: 'b1', instrument: I, fill_ts: T0, horizon_ms: 200, side: 'buy', price: 1.1, mid: at200.markouts[0]!.mid, mid_ts: T0 + 200, markout_bps: at200.markouts[0]!.markout_bps, color: 'blue' });
  assert.ok(Math.abs(at200.markouts[0]!.mid - 1.1011) < 1e-12);
  assert.equal(at200.markouts[1]!.color, 'green');
  assert.deepEqual(advance(s, I, T0 + 1500, P).markouts, []);
  // At 500 the tick at T0 + 499 is the last at or before; the one at T0 + 501 is not.
  assert.deepEqual(mids(advance(s, I, T0 + 1501, P).markouts), [['b1', 500, T0 + 499, -10], ['s1', 500, T0 + 499, 11.816033448]]);
  assert.deepEqual(stateSize(s).pending, 0);
});

test('out-of-order ticks within grace give the same markouts as in order; a late tick is rejected and changes nothing', () => {
  const inOrder = run([
    { tick: q(T0 - 100, 1.1) }, { fill: fill('b1', T0, 'buy', 1.1) }, { tick: q(T0 + 200, 1.1011) }, { tick: q(T0 + 499, 1.0989) },
    { tick: q(T0 + 600, 1.2) }, { tick: q(T0 + 900, 1.3) }, { tick: q(T0 + 3000, 1.3) },
  ]);
  const shuffled = run([
    { tick: q(T0 - 100, 1.1) }, { fill: fill('b1', T0, 'buy', 1.1) }, { tick: q(T0 + 600, 1.2) }, { tick: q(T0 + 900, 1.3) },
    // Stream time is T0 + 900; these are 700 and 401 ms behind, within the 1000 ms grace.
    { tick: q(T0 + 200, 1.1011) }, { tick: q(T0 + 499, 1.0989) }, { tick: q(T0 + 3000, 1.3) },
  ]);
  assert.deepEqual(mids(shuffled.markouts), mids(inOrder.markouts));
  assert.deepEqual(mids(inOrder.markouts), [['b1', 200, T0 + 200, 10], ['b1', 500, T0 + 499, -10]]);

  const s = run([{ tick: q(T0 - 100, 1.1) }, { fill: fill('b1', T0, 'buy', 1.1) }, { tick: q(T0 + 1100, 1.2) }]);
  const before = structuredClone(s.state);
  // T0 + 99 < stream time T0 + 1100 − grace 1000: late.
  assert.throws(() => addTick(s.state, q(T0 + 99, 5), s.st, P), (e: unknown) => e instanceof InputError && e.reason === 'late' && /MARKOUT_GRACE_MS=1000/.test(e.message));
  assert.throws(() => addFill(s.state, fill('b2', T0 + 99, 'buy', 1.1), s.st, P), (e: unknown) => e instanceof InputError && e.reason === 'late');
  assert.deepEqual(s.state, before);
  // Exactly stream time − grace is still on time.
  addTick(s.state, q(T0 + 100, 1.15), s.st, P);
});

test('a fill with no tick after it waits, then resolves at the watermark with the last tick before it', () => {
  const params: MarkoutParams = { ...P, horizonsMs: [...DEFAULT_MARKOUT_CONFIG.horizonsMs] };
  const { state } = run([{ tick: q(T0 - 2500, 1.1) }, { fill: fill('b1', T0, 'sell', 1.0999) }], params);
  // Stream time moves on through other instruments' records; this one has no tick.
  // grace 1000: h resolves once stream time passes T0 + h + 1000.
  for (const [st, horizons] of [[T0 + 1200, []], [T0 + 6000, [200, 500, 1000]], [T0 + 61_000, [5000]]] as const) {
    const res = advance(state, I, st, params);
    assert.deepEqual(res.markouts.map((m) => [m.horizon_ms, m.mid_ts]), horizons.map((h) => [h, T0 - 2500]), `at +${st - T0} ms`);
  }
  assert.equal(stateSize(state).pending, 1);
  const last = advance(state, I, T0 + 61_001, params);
  // −(1.1 − 1.0999) / 1.0999 · 1e4 with the tick from 2.5 s before the fill.
  assert.deepEqual(mids(last.markouts), [['b1', 60_000, T0 - 2500, -0.909173561]]);
  assert.equal(stateSize(state).pending, 0);
  // The tick stays: it is still the as-of mid for any fill to come.
  assert.equal(stateSize(state).ticks, 1);
});

test('a fill before any tick: horizons with no tick at or before t0 + h resolve as no_tick, later ones get the first tick', () => {
  const { state, markouts, unresolved } = run([{ fill: fill('b1', T0, 'buy', 1.1) }, { tick: q(T0 + 300, 1.1011) }]);
  assert.deepEqual(markouts, []);
  const res = advance(state, I, T0 + 10_000, P);
  assert.deepEqual([...unresolved, ...res.unresolved], [{ cid: 'b1', instrument: I, fill_ts: T0, horizon_ms: 200, color: 'blue', reason: 'no_tick' }]);
  assert.deepEqual(mids(res.markouts), [['b1', 500, T0 + 300, 10]]);
});

test('a duplicate cid is counted once, also with another timestamp and after a restore from the stores; "__proto__" is a cid like any other', () => {
  const s = initialMarkoutState();
  const j = new StoreJournal();
  addTick(s, q(T0 - 10, 1.1), T0, P, j);
  assert.equal(addFill(s, fill('x', T0, 'buy', 1.1), T0, P, j), 'accepted');
  assert.equal(addFill(s, fill('x', T0, 'buy', 1.1), T0, P, j), 'duplicate');
  assert.equal(addFill(s, fill('x', T0 + 5, 'sell', 1.2, 'green'), T0 + 5, P, j), 'duplicate');
  assert.equal(addFill(s, fill('__proto__', T0 + 5, 'buy', 1.1), T0 + 5, P, j), 'accepted');
  assert.deepEqual([...j.fills.keys()], ['x', '__proto__']);
  const restored = j.restore();
  assert.equal(addFill(restored, fill('__proto__', T0 + 6, 'buy', 1.1), T0 + 6, P, j), 'duplicate');
  assert.equal(addFill(restored, fill('x', T0 + 6, 'buy', 1.1), T0 + 6, P, j), 'duplicate');
  const res = advance(restored, I, T0 + 10_000, P, j);
  assert.deepEqual(res.markouts.map((m) => `${m.cid}/${m.horizon_ms}`), ['x/200', '__proto__/200', 'x/500', '__proto__/500']);
  // After the dedupe window the cids are forgotten (and deleted from the store); the same fill again is late, so still never counted twice.
  assert.equal(stateSize(restored).fills, 0);
  assert.equal(j.fills.size, 0);
  assert.throws(() => addFill(restored, fill('x', T0, 'buy', 1.1), T0 + 10_000, P), (e: unknown) => e instanceof InputError && e.reason === 'late');
});

test('a fill stays remembered until its last horizon resolves, even past a dedupe window shorter than that horizon', () => {
  const params: MarkoutParams = { horizonsMs: [200, 60_000], graceMs: 1000, dedupeWindowMs: 1000 };
  const { state } = run([{ tick: q(T0, 1.1) }, { fill: fill('a', T0, 'buy', 1.1) }, { fill: fill('b', T0 + 1, 'buy', 1.1) }], params);
  advance(state, I, T0 + 30_000, params);
  assert.equal(stateSize(state).fills, 2);
  assert.equal(addFill(state, fill('a', T0 + 29_500, 'buy', 1.1), T0 + 30_000, params), 'duplicate');
  advance(state, I, T0 + 61_002, params);
  assert.equal(stateSize(state).fills, 0);
});

test('zero, negative and non-finite prices are rejected as invalid_value and change nothing', () => {
  const s = run([{ tick: q(T0, 1.1) }, { fill: fill('ok', T0, 'buy', 1.1) }]).state;
  const before = structuredClone(s);
  for (const price of [0, -1.1, NaN, Infinity]) {
    assert.throws(() => addFill(s, fill('bad', T0, 'buy', price), T0, P), (e: unknown) => e instanceof InputError && e.reason === 'invalid_value' && e.field === 'price');
  }
  assert.throws(() => addTick(s, { ts: T0, bid: 0, ask: 1 }, T0, P), (e: unknown) => e instanceof InputError && e.reason === 'invalid_value' && e.field === 'bid');
  assert.throws(() => addTick(s, { ts: T0, bid: 1, ask: -1 }, T0, P), (e: unknown) => e instanceof InputError && e.reason === 'invalid_value' && e.field === 'ask');
  assert.throws(() => addFill(s, fill('', T0, 'buy', 1), T0, P), (e: unknown) => e instanceof InputError && e.field === 'cid');
  assert.deepEqual(s, before);
});

test('a horizon dropped from the configuration drains its pending fills; new fills get the new horizons', () => {
  const { state } = run([{ tick: q(T0, 1.1) }, { fill: fill('a', T0, 'buy', 1.1) }]);
  const next: MarkoutParams = { ...P, horizonsMs: [200, 1000] };
  addFill(state, fill('b', T0 + 10, 'buy', 1.1), T0 + 10, next);
  const res = advance(state, I, T0 + 100_000, next);
  assert.deepEqual(res.markouts.map((m) => `${m.cid}/${m.horizon_ms}`), ['a/200', 'b/200', 'a/500', 'b/1000']);
  assert.deepEqual(state.pending.map((p) => p.horizonMs), [200, 1000]);
});


test('a long random stream with out-of-order records: every fill gets exactly one result per horizon, equal to a brute-force as-of join, and state stays bounded', () => {
  const params: MarkoutParams = { horizonsMs: [0, 200, 500, 1000, 5000, 60_000], graceMs: 2000, dedupeWindowMs: 10_000 };
  const rand = rng(42);
  let state = initialMarkoutState();
  const journal = new StoreJournal();
  const ticks: { ts: number; mid: number }[] = []; // accepted, in arrival order
  const fills: ReturnType<typeof fill>[] = [];
  const tickTimes = new SortedTimes();
  const fillTimes = new SortedTimes();
  const out: Markout[] = [];
  const missing: Unresolved[] = [];
  let st = -Infinity;
  let clock = T0;
  let mid = 1.1;
  let maxTicks = 0;
  let dupes = 0;
  const N = 60_000;
  for (let i = 0; i < N; i++) {
    clock += Math.floor(rand() * 20); // ~10 ms apart, sometimes the same millisecond
    // A quarter of the records are delayed by up to the grace, so arrive out of order.
    const ts = rand() < 0.25 ? Math.max(clock - Math.floor(rand() * params.graceMs), Number.isFinite(st) ? st - params.graceMs : clock) : clock;
    st = Math.max(st, ts);
    if (rand() < 0.9) {
      mid *= 1 + (rand() - 0.5) * 1e-4;
      const t = q(ts, mid);
      addTick(state, t, st, params, journal);
      ticks.push({ ts, mid: (t.bid + t.ask) / 2 });
      tickTimes.add(ts);
    } else if (rand() < 0.1 && fills.length > 0) {
      // A re-sent fill: same cid, within the window.
      const again = fills[fills.length - 1 - Math.floor(rand() * Math.min(5, fills.length))]!;
      assert.equal(addFill(state, { ...again, ts: Math.max(again.ts, st - params.graceMs) }, st, params, journal), 'duplicate');
      dupes++;
    } else {
      const f = fill(`f${i}`, ts, rand() < 0.5 ? 'buy' : 'sell', mid * (1 + (rand() - 0.5) * 2e-4), rand() < 0.5 ? 'blue' : 'green');
      assert.equal(addFill(state, f, st, params, journal), 'accepted');
      fills.push(f);
      fillTimes.add(ts);
    }
    const res = advance(state, I, st, params, journal);
    // Final when emitted (stream time passed t0 + h + grace), and in order of t0 + h within the batch.
    for (const m of [...res.markouts, ...res.unresolved]) assert.ok(st - params.graceMs > m.fill_ts + m.horizon_ms);
    const dues = res.markouts.map((m) => m.fill_ts + m.horizon_ms);
    assert.deepEqual(dues, [...dues].sort((a, b) => a - b));
    out.push(...res.markouts);
    missing.push(...res.unresolved);

    // Bounds (docs/markout.md "State"). Ticks: an unresolved t0 + h is ≥ stream time − grace, so at most the
    // ticks from the segment of the last tick at or before stream time − grace on.
    const size = stateSize(state);
    const anchorTs = tickTimes.lastAtOrBefore(st - params.graceMs);
    const recentTicks = tickTimes.countSince(anchorTs === undefined ? -Infinity : segmentFloor(anchorTs));
    assert.ok(size.ticks <= recentTicks, `${size.ticks} ticks kept, ${recentTicks} recent at record ${i}`);
    const recentFills = fillTimes.countSince(st - params.graceMs - Math.max(...params.horizonsMs));
    assert.ok(size.pending <= recentFills * params.horizonsMs.length, `pending ${size.pending} > ${recentFills} × horizons`);
    const remembered = fillTimes.countSince(st - Math.max(params.dedupeWindowMs, Math.max(...params.horizonsMs) + params.graceMs) - params.graceMs);
    assert.ok(size.fills <= remembered, `fills ${size.fills} > ${remembered}`);
    // The stores hold exactly the state: one entry per segment and per remembered fill.
    assert.equal(journal.segments.size, state.ticks.segments.length);
    assert.equal(journal.fills.size, size.fills);
    maxTicks = Math.max(maxTicks, size.ticks);
    if (i % 10_000 === 5_000) {
      // A restart from the stores (a changelog restore) changes nothing that follows.
      state = journal.restore();
    }
  }
  const flush = advance(state, I, Number.MAX_SAFE_INTEGER, params, journal);
  out.push(...flush.markouts);
  missing.push(...flush.unresolved);
  assert.ok(dupes > 100 && fills.length > 4000, `${dupes} duplicates, ${fills.length} fills`);
  assert.ok(maxTicks < 2000, `at most ${maxTicks} of ${ticks.length} ticks held`);

  // Brute force over every accepted tick: the last at or before t, the later arrival on equal timestamps.
  const sorted = ticks.map((t, k) => ({ ...t, k })).sort((a, b) => a.ts - b.ts || a.k - b.k);
  const asOf = (t: number) => {
    let lo = 0, hi = sorted.length;
    while (lo < hi) { const m = (lo + hi) >>> 1; if (sorted[m]!.ts <= t) lo = m + 1; else hi = m; }
    return lo === 0 ? undefined : sorted[lo - 1]!;
  };
  const got = new Map(out.map((m) => [`${m.cid}/${m.horizon_ms}`, m]));
  const gone = new Set(missing.map((u) => `${u.cid}/${u.horizon_ms}`));
  assert.equal(got.size, out.length, 'one markout per fill and horizon');
  assert.equal(out.length + missing.length, fills.length * params.horizonsMs.length);
  for (const f of fills) {
    for (const h of params.horizonsMs) {
      const key = `${f.cid}/${h}`;
      const tick = asOf(f.ts + h);
      if (!tick) { assert.ok(gone.has(key), key); continue; }
      const m = got.get(key);
      assert.ok(m, key);
      assert.deepEqual([m.mid_ts, m.mid, m.markout_bps, m.side, m.color], [tick.ts, tick.mid, markoutBps(f.side, f.price, tick.mid), f.side, f.color], key);
    }
  }
  assert.equal(stateSize(state).pending, 0);
  assert.ok(tickHorizon(state, st, params) >= st - params.graceMs);
});

const segmentFloor = (t: number) => Math.floor(t / TICK_SEGMENT_MS) * TICK_SEGMENT_MS;

/** Timestamps kept sorted, to count those at or after a time by binary search. */
class SortedTimes {
  private readonly xs: number[] = [];
  add(ts: number): void {
    let i = this.xs.length;
    while (i > 0 && this.xs[i - 1]! > ts) i--;
    this.xs.splice(i, 0, ts);
  }
  lastAtOrBefore(t: number): number | undefined {
    const n = this.xs.length - this.countSince(t + 1);
    return n === 0 ? undefined : this.xs[n - 1];
  }
  countSince(from: number): number {
    let lo = 0, hi = this.xs.length;
    while (lo < hi) { const m = (lo + hi) >>> 1; if (this.xs[m]! < from) lo = m + 1; else hi = m; }
    return this.xs.length - lo;
  }
}
