/**
 * State stores, owned by the runtime: the task creates them, restores them
 * from their changelog topic before any record is processed, and collects
 * every write as a changelog record that commits in the same transaction as
 * the outputs and the input offsets. Values must be JSON-serialisable.
 */
export interface StateStore {
  readonly name: string;
  /** Changelog records written since the last drain. */
  drainChangelog(): ChangelogWrite[];
  /** The task tells the store which input record is being processed, to stamp its writes with. */
  bindStamp?(current: () => InputStamp | undefined): void;
  /** Applies one changelog record during restore (null value = delete). */
  restore(key: string, value: string | null): void;
  /** Number of live entries (for the state-size metric and tests). */
  size(): number;
}

export interface ChangelogWrite {
  key: string;
  /** JSON text, or null for a delete (a tombstone on the compacted changelog). */
  value: string | null;
  /** The input record whose processing wrote it (restore ignores writes at or beyond the committed offset). */
  stamp?: InputStamp;
}

export interface InputStamp {
  topic: string;
  offset: number;
}

const noStamp = (): InputStamp | undefined => undefined;

/**
 * Keys and values in memory. Writes are logged lazily: a key written many
 * times between two drains (one instrument's state, once per record) is
 * serialised once, at the drain, with the stamp of its last write — only the
 * last value of a key in a transaction matters to a restore.
 */
export class KeyValueStore<V> implements StateStore {
  private readonly data = new Map<string, V>();
  /** Keys written since the last drain → the input record of their last write. */
  private dirty = new Map<string, InputStamp | undefined>();
  private stampOf: () => InputStamp | undefined = noStamp;

  constructor(readonly name: string) {}

  bindStamp(current: () => InputStamp | undefined): void {
    this.stampOf = current;
  }

  get(key: string): V | undefined {
    return this.data.get(key);
  }

  put(key: string, value: V): void {
    this.data.set(key, value);
    this.dirty.set(key, this.stampOf());
  }

  delete(key: string): void {
    if (!this.data.delete(key)) return;
    this.dirty.set(key, this.stampOf());
  }

  /** Entries in key order (deterministic). */
  all(): [string, V][] {
    return [...this.data.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  size(): number {
    return this.data.size;
  }

  drainChangelog(): ChangelogWrite[] {
    const out: ChangelogWrite[] = [];
    for (const [key, stamp] of this.dirty) {
      const value = this.data.get(key);
      out.push({ key, value: value === undefined && !this.data.has(key) ? null : JSON.stringify(value), ...(stamp ? { stamp } : {}) });
    }
    this.dirty = new Map();
    return out;
  }

  restore(key: string, value: string | null): void {
    if (value === null) this.data.delete(key);
    else this.data.set(key, JSON.parse(value) as V);
  }
}

/**
 * Values per key and window start, kept for `retentionMs` of stream time
 * behind the newest window (older windows are dropped, with tombstones).
 * Per key the windows sit in two parallel arrays sorted by start, so a range
 * fetch is two binary searches and a slice — evaluators read whole spans of
 * thousands of windows at every punctuation. Eviction only moves a key's
 * `head` past the dropped windows; the arrays are compacted once the dropped
 * part is a quarter of them, so evicting one window from a span of thousands
 * costs O(1) amortised rather than a shift of every window.
 */
export class WindowStore<V> implements StateStore {
  /** Per key, the live windows are [head, starts.length) of the arrays. */
  private readonly windows = new Map<string, { starts: number[]; values: V[]; head: number }>();
  private pending: ChangelogWrite[] = [];
  private stampOf: () => InputStamp | undefined = noStamp;
  private count = 0;

  constructor(readonly name: string, readonly retentionMs: number) {}

  bindStamp(current: () => InputStamp | undefined): void {
    this.stampOf = current;
  }

  private stamped(w: ChangelogWrite): ChangelogWrite {
    const stamp = this.stampOf();
    return stamp ? { ...w, stamp } : w;
  }

  private static compose(key: string, windowStart: number): string {
    // Fixed-width start keeps composite keys sorted by time within a key.
    return `${key}@${String(windowStart).padStart(16, '0')}`;
  }

  put(key: string, windowStart: number, value: V): void {
    this.set(key, windowStart, value);
    this.pending.push(this.stamped({ key: WindowStore.compose(key, windowStart), value: JSON.stringify(value) }));
  }

  get(key: string, windowStart: number): V | undefined {
    const w = this.windows.get(key);
    if (!w) return undefined;
    const i = lowerBound(w.starts, windowStart, w.head);
    return w.starts[i] === windowStart ? w.values[i] : undefined;
  }

  /** Windows of `key` with start in [from, to], oldest first. */
  fetch(key: string, from: number, to: number): [number, V][] {
    const w = this.windows.get(key);
    if (!w) return [];
    const lo = lowerBound(w.starts, from, w.head);
    const hi = lowerBound(w.starts, nextUp(to), lo);
    const out: [number, V][] = new Array(Math.max(0, hi - lo));
    for (let i = lo; i < hi; i++) out[i - lo] = [w.starts[i]!, w.values[i]!];
    return out;
  }

  /** Values of `key`'s windows with start in [from, to], oldest first (no per-window allocation). */
  fetchValues(key: string, from: number, to: number): V[] {
    const w = this.windows.get(key);
    if (!w) return [];
    const lo = lowerBound(w.starts, from, w.head);
    return w.values.slice(lo, lowerBound(w.starts, nextUp(to), lo));
  }

  /** Keys with at least one window, sorted. */
  keys(): string[] {
    return [...this.windows.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Drops windows older than `streamTime − retentionMs`. */
  evict(streamTime: number): void {
    const cutoff = streamTime - this.retentionMs;
    for (const [key, w] of this.windows) {
      const n = lowerBound(w.starts, cutoff, w.head);
      if (n === w.head) continue;
      for (let i = w.head; i < n; i++) {
        this.pending.push(this.stamped({ key: WindowStore.compose(key, w.starts[i]!), value: null }));
        (w.values as (V | undefined)[])[i] = undefined; // let the dropped value go before the compaction
      }
      this.count -= n - w.head;
      w.head = n;
      if (w.head === w.starts.length) this.windows.delete(key);
      else if (w.head * 4 >= w.starts.length) compact(w);
    }
  }

  size(): number {
    return this.count;
  }

  drainChangelog(): ChangelogWrite[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }

  restore(key: string, value: string | null): void {
    const at = key.lastIndexOf('@');
    const base = key.slice(0, at);
    const start = Number(key.slice(at + 1));
    if (value === null) this.remove(base, start);
    else this.set(base, start, JSON.parse(value) as V);
  }

  private set(key: string, windowStart: number, value: V): void {
    let w = this.windows.get(key);
    if (!w) {
      w = { starts: [], values: [], head: 0 };
      this.windows.set(key, w);
    }
    const n = w.starts.length;
    // Windows mostly arrive in time order: appending is the common, O(1) case.
    if (n === w.head || windowStart > w.starts[n - 1]!) {
      w.starts.push(windowStart);
      w.values.push(value);
      this.count++;
      return;
    }
    const i = lowerBound(w.starts, windowStart, w.head);
    if (w.starts[i] === windowStart) {
      w.values[i] = value;
      return;
    }
    if (i === w.head && w.head > 0) {
      // Before every live window: reuse the slot of the last dropped one.
      w.head--;
      w.starts[w.head] = windowStart;
      w.values[w.head] = value;
    } else {
      w.starts.splice(i, 0, windowStart);
      w.values.splice(i, 0, value);
    }
    this.count++;
  }

  private remove(key: string, windowStart: number): void {
    const w = this.windows.get(key);
    if (!w) return;
    const i = lowerBound(w.starts, windowStart, w.head);
    if (w.starts[i] !== windowStart) return;
    if (i === w.head) {
      (w.values as (V | undefined)[])[i] = undefined;
      w.head++;
    } else {
      w.starts.splice(i, 1);
      w.values.splice(i, 1);
    }
    this.count--;
    if (w.head === w.starts.length) this.windows.delete(key);
    else if (w.head * 4 >= w.starts.length) compact(w);
  }
}

/** Drops a key's evicted windows from the front of its arrays. */
function compact(w: { starts: number[]; values: unknown[]; head: number }): void {
  w.starts.splice(0, w.head);
  w.values.splice(0, w.head);
  w.head = 0;
}

/** First index in [lo, xs.length) whose value is ≥ x in an ascending array. */
function lowerBound(xs: readonly number[], x: number, lo = 0): number {
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The smallest number above x, so [from, to] ranges include `to` with lowerBound. */
function nextUp(x: number): number {
  return Number.isInteger(x) ? x + 1 : x + Math.abs(x) * Number.EPSILON + Number.MIN_VALUE;
}
