import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyTickBuffer, evictTicksBefore, insertTick, midAt, tickBufferOf, tickCount, TICK_SEGMENT_MS, type TickBuffer } from '../../../streams/markout/asof.ts';

/** Every tick of the buffer in order, as [ts, mid]. */
const flat = (b: TickBuffer) => b.segments.flatMap((s) => s.ts.map((t, i) => [t, s.mid[i]!]));
import { InputError } from '../../../streams/runtime/errors.ts';

test('midAt is the last tick at or before t; a tick exactly at t counts', () => {
  const b = emptyTickBuffer();
  insertTick(b, 100, 1.0);
  insertTick(b, 200, 2.0);
  insertTick(b, 300, 3.0);
  assert.equal(midAt(b, 99), undefined);
  assert.deepEqual(midAt(b, 100), { ts: 100, mid: 1.0 });
  assert.deepEqual(midAt(b, 199), { ts: 100, mid: 1.0 });
  assert.deepEqual(midAt(b, 200), { ts: 200, mid: 2.0 });
  assert.deepEqual(midAt(b, 10_000), { ts: 300, mid: 3.0 });
});

test('an out-of-order tick is inserted at its place; equal timestamps keep arrival order', () => {
  const b = emptyTickBuffer();
  insertTick(b, 100, 1.0);
  insertTick(b, 300, 3.0);
  insertTick(b, 200, 2.0);
  insertTick(b, 200, 2.5); // same millisecond, arrived later: the quote that stood at the end of it
  insertTick(b, 50, 0.5);
  assert.deepEqual(flat(b), [[50, 0.5], [100, 1.0], [200, 2.0], [200, 2.5], [300, 3.0]]);
  assert.deepEqual(midAt(b, 250), { ts: 200, mid: 2.5 });
  assert.deepEqual(midAt(b, 60), { ts: 50, mid: 0.5 });
});

test('bad ticks are rejected as invalid_value and change nothing', () => {
  const b = emptyTickBuffer();
  insertTick(b, 100, 1.0);
  for (const [ts, mid] of [[200, 0], [200, -1], [200, NaN], [200, Infinity], [200.5, 1], [NaN, 1]] as const) {
    assert.throws(() => insertTick(b, ts, mid), (e: unknown) => e instanceof InputError && e.reason === 'invalid_value');
  }
  assert.deepEqual(flat(b), [[100, 1.0]]);
});

test('ticks go into segments of TICK_SEGMENT_MS; insertTick returns the segment it changed; an out-of-order tick lands in its own segment', () => {
  assert.equal(TICK_SEGMENT_MS, 100);
  const b = emptyTickBuffer();
  const first = insertTick(b, 1_000, 1);
  assert.equal(insertTick(b, 1_099, 2), first);
  const next = insertTick(b, 1_100, 3);
  assert.notEqual(next, first);
  insertTick(b, 1_350, 4);
  const back = insertTick(b, 1_050, 1.5); // out of order, into the first segment
  assert.equal(back, first);
  assert.deepEqual(b.segments.map((s) => [s.start, s.ts]), [[1_000, [1_000, 1_050, 1_099]], [1_100, [1_100]], [1_300, [1_350]]]);
  // Before every segment, and into a gap between two: new segments at their place.
  insertTick(b, 900, 0.9);
  insertTick(b, 1_250, 3.5);
  assert.deepEqual(b.segments.map((s) => s.start), [900, 1_000, 1_100, 1_200, 1_300]);
  assert.equal(tickCount(b), 7);
  // The as-of lookup crosses empty stretches and segment borders.
  assert.deepEqual(midAt(b, 1_299), { ts: 1_250, mid: 3.5 });
  assert.deepEqual(midAt(b, 1_349), { ts: 1_250, mid: 3.5 });
  assert.deepEqual(midAt(b, 1_100), { ts: 1_100, mid: 3 });
  assert.deepEqual(midAt(b, 999), { ts: 900, mid: 0.9 });
  // A restore from the segments in any order gives the same lookups.
  const restored = tickBufferOf(JSON.parse(JSON.stringify([...b.segments].reverse())));
  for (const t of [899, 900, 1_000, 1_051, 1_099, 1_199, 1_250, 1_400]) assert.deepEqual(midAt(restored, t), midAt(b, t), `t=${t}`);
});

test('negative timestamps (before 1970) fall into the segment below, not the one above', () => {
  const b = emptyTickBuffer();
  insertTick(b, -150, 1);
  insertTick(b, -50, 2);
  assert.deepEqual(b.segments.map((s) => s.start), [-200, -100]);
  assert.deepEqual(midAt(b, -1), { ts: -50, mid: 2 });
});

test('eviction drops whole segments before the anchor\'s (the last tick at or before t) and keeps every lookup at or after t', () => {
  const b = emptyTickBuffer();
  for (let i = 0; i < 10; i++) insertTick(b, i * 50, i + 1); // two ticks per segment: 0,50 | 100,150 | …
  const before = (t: number) => midAt(b, t);
  const expect = [175, 176, 300, 451].map((t) => [t, before(t)] as const);
  // Anchor for t = 15 is the tick at 0, in the first segment: nothing to drop.
  assert.deepEqual(evictTicksBefore(b, 15), []);
  // Anchor for t = 175 is the tick at 150 (second segment): the first segment goes, whole.
  assert.deepEqual(evictTicksBefore(b, 175).map((s) => s.start), [0]);
  assert.deepEqual(flat(b).map(([t]) => t), [100, 150, 200, 250, 300, 350, 400, 450]);
  for (const [t, m] of expect) assert.deepEqual(midAt(b, t), m, `t=${t}`);
  // Nothing at or before t: nothing to drop.
  assert.deepEqual(evictTicksBefore(b, 5), []);
  // Everything before the last segment can go when t is past it.
  assert.deepEqual(evictTicksBefore(b, 1e9).map((s) => s.start), [100, 200, 300]);
  assert.deepEqual(flat(b), [[400, 9], [450, 10]]);
});
