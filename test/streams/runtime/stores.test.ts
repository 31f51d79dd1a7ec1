import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../../src/generate/random.ts';
import { WindowStore } from '../../../streams/runtime/stores.ts';

/** The window store's contract as a plain sorted list per key. */
class ModelWindowStore {
  readonly data = new Map<string, [number, number][]>();
  constructor(readonly retentionMs: number) {}
  put(key: string, start: number, value: number): void {
    const list = this.data.get(key) ?? [];
    const i = list.findIndex(([s]) => s >= start);
    if (i >= 0 && list[i]![0] === start) list[i] = [start, value];
    else list.splice(i < 0 ? list.length : i, 0, [start, value]);
    this.data.set(key, list);
  }
  evict(streamTime: number): void {
    for (const [key, list] of this.data) {
      const kept = list.filter(([s]) => s >= streamTime - this.retentionMs);
      if (kept.length === 0) this.data.delete(key);
      else this.data.set(key, kept);
    }
  }
  fetch(key: string, from: number, to: number): [number, number][] {
    return (this.data.get(key) ?? []).filter(([s]) => s >= from && s <= to);
  }
}

test('a window store evicting a window at a time (moving its head, compacting now and then) keeps the plain sorted-list contract', () => {
  const rng = new Rng(17);
  const retention = 240 * 60_000;
  const store = new WindowStore<number>('w', retention);
  const model = new ModelWindowStore(retention);
  const keys = ['A', 'B', 'C'];
  let now = Date.UTC(2026, 0, 5);
  const log: { key: string; value: string | null }[] = [];
  for (let step = 0; step < 6000; step++) {
    now += 60_000;
    for (const key of keys) {
      if (rng.next() < 0.1) continue; // a key that skips minutes
      if (key === 'C' && step > 3000 && step < 4000) continue; // silent for longer than the retention: evicted whole, then back
      // Mostly the next minute; sometimes an older one again (replaced) or one that was skipped (inserted).
      const start = rng.next() < 0.05 ? now - rng.int(300) * 60_000 : now;
      const value = rng.int(1e6);
      store.put(key, start, value);
      model.put(key, start, value);
    }
    if (step % 3 === 0) {
      store.evict(now);
      model.evict(now);
    }
    log.push(...store.drainChangelog());
    if (step % 50 === 0) {
      assert.deepEqual(store.keys(), [...model.data.keys()].sort());
      assert.equal(store.size(), [...model.data.values()].reduce((n, l) => n + l.length, 0));
      for (const key of keys) {
        const from = now - rng.int(400) * 60_000;
        const to = from + rng.int(400) * 60_000;
        assert.deepEqual(store.fetch(key, from, to), model.fetch(key, from, to), `step ${step} ${key} [${from}, ${to}]`);
        assert.deepEqual(store.fetchValues(key, from, to), model.fetch(key, from, to).map(([, v]) => v));
        assert.deepEqual(store.fetch(key, -Infinity, Infinity), model.fetch(key, -Infinity, Infinity));
        const some = model.fetch(key, -Infinity, Infinity)[0];
        if (some) assert.equal(store.get(key, some[0]), some[1]);
        const old = now - retention - 60_000;
        assert.equal(store.get(key, old), model.fetch(key, old, old)[0]?.[1]);
      }
    }
  }
  assert.ok(log.some((w) => w.value === null), 'tombstones were logged');
  // The changelog restores the same contents, deletes included.
  const restored = new WindowStore<number>('w', retention);
  for (const w of log) restored.restore(w.key, w.value);
  assert.deepEqual(restored.keys(), store.keys());
  assert.equal(restored.size(), store.size());
  for (const key of keys) assert.deepEqual(restored.fetch(key, -Infinity, Infinity), store.fetch(key, -Infinity, Infinity));
});
