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
  /** Applies one changelog record during restore (null value = delete). */
  restore(key: string, value: string | null): void;
  /** Number of live entries (for the state-size metric and tests). */
  size(): number;
}

export interface ChangelogWrite {
  key: string;
  /** JSON text, or null for a delete (a tombstone on the compacted changelog). */
  value: string | null;
}

export class KeyValueStore<V> implements StateStore {
  private readonly data = new Map<string, V>();
  private pending: ChangelogWrite[] = [];

  constructor(readonly name: string) {}

  get(key: string): V | undefined {
    return this.data.get(key);
  }

  put(key: string, value: V): void {
    this.data.set(key, value);
    this.pending.push({ key, value: JSON.stringify(value) });
  }

  delete(key: string): void {
    if (!this.data.delete(key)) return;
    this.pending.push({ key, value: null });
  }

  /** Entries in key order (deterministic). */
  all(): [string, V][] {
    return [...this.data.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  size(): number {
    return this.data.size;
  }

  drainChangelog(): ChangelogWrite[] {
    const out = this.pending;
    this.pending = [];
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
 */
export class WindowStore<V> implements StateStore {
  private readonly inner: KeyValueStore<V>;
  /** key → sorted window starts. */
  private readonly index = new Map<string, number[]>();

  constructor(readonly name: string, readonly retentionMs: number) {
    this.inner = new KeyValueStore<V>(name);
  }

  private static compose(key: string, windowStart: number): string {
    // Fixed-width start keeps composite keys sorted by time within a key.
    return `${key}@${String(windowStart).padStart(16, '0')}`;
  }

  put(key: string, windowStart: number, value: V): void {
    const starts = this.index.get(key) ?? [];
    // Windows mostly arrive in time order: appending is the common, O(1) case.
    if (starts.length === 0 || windowStart > starts[starts.length - 1]!) {
      starts.push(windowStart);
      this.index.set(key, starts);
    } else if (!starts.includes(windowStart)) {
      starts.push(windowStart);
      starts.sort((a, b) => a - b);
    }
    this.inner.put(WindowStore.compose(key, windowStart), value);
  }

  get(key: string, windowStart: number): V | undefined {
    return this.inner.get(WindowStore.compose(key, windowStart));
  }

  /** Windows of `key` with start in [from, to], oldest first. */
  fetch(key: string, from: number, to: number): [number, V][] {
    return (this.index.get(key) ?? []).filter((s) => s >= from && s <= to).map((s) => [s, this.inner.get(WindowStore.compose(key, s))!]);
  }

  /** Drops windows older than `streamTime − retentionMs`. */
  evict(streamTime: number): void {
    const cutoff = streamTime - this.retentionMs;
    for (const [key, starts] of this.index) {
      while (starts.length && starts[0]! < cutoff) this.inner.delete(WindowStore.compose(key, starts.shift()!));
      if (starts.length === 0) this.index.delete(key);
    }
  }

  size(): number {
    return this.inner.size();
  }

  drainChangelog(): ChangelogWrite[] {
    return this.inner.drainChangelog();
  }

  restore(key: string, value: string | null): void {
    const at = key.lastIndexOf('@');
    const base = key.slice(0, at);
    const start = Number(key.slice(at + 1));
    const starts = this.index.get(base) ?? [];
    if (value === null) {
      this.index.set(base, starts.filter((s) => s !== start));
    } else if (!starts.includes(start)) {
      starts.push(start);
      starts.sort((a, b) => a - b);
      this.index.set(base, starts);
    }
    this.inner.restore(key, value);
  }
}
