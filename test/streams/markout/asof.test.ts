import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyTickBuffer, evictTicksBefore, insertTick, midAt, tickCount } from '../../../streams/markout/asof.ts';
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
  assert.deepEqual(b, { ts: [50, 100, 200, 200, 300], mid: [0.5, 1.0, 2.0, 2.5, 3.0] });
  assert.deepEqual(midAt(b, 250), { ts: 200, mid: 2.5 });
  assert.deepEqual(midAt(b, 60), { ts: 50, mid: 0.5 });
});

test('bad ticks are rejected as invalid_value and change nothing', () => {
  const b = emptyTickBuffer();
  insertTick(b, 100, 1.0);
  for (const [ts, mid] of [[200, 0], [200, -1], [200, NaN], [200, Infinity], [200.5, 1], [NaN, 1]] as const) {
    assert.throws(() => insertTick(b, ts, mid), (e: unknown) => e instanceof InputError && e.reason === 'invalid_value');
  }
  assert.deepEqual(b, { ts: [100], mid: [1.0] });
});

test('eviction keeps the anchor (last tick at or before t) and every later tick, amortised by a quarter', () => {
  const b = emptyTickBuffer();
  for (let i = 0; i < 10; i++) insertTick(b, i * 10, i + 1);
  // Anchor for t = 15 is the tick at 10 (index 1): one droppable tick of ten is below a quarter: kept.
  assert.equal(evictTicksBefore(b, 15), 0);
  assert.equal(tickCount(b), 10);
  // Anchor for t = 35 is index 3: 3·4 ≥ 10 → drop the three before it.
  assert.equal(evictTicksBefore(b, 35), 3);
  assert.deepEqual(b.ts, [30, 40, 50, 60, 70, 80, 90]);
  // Lookups at or after t are unchanged by the eviction.
  assert.deepEqual(midAt(b, 35), { ts: 30, mid: 4 });
  // Nothing at or before t: nothing to drop.
  assert.equal(evictTicksBefore(b, 5), 0);
  // Everything before the last tick can go when t is past it.
  assert.equal(evictTicksBefore(b, 1e9), 6);
  assert.deepEqual(b, { ts: [90], mid: [10] });
});
