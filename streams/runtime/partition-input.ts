/**
 * The records of one task (one partition number across its source topics),
 * fetched but not yet processed, handed out in timestamp order — Kafka
 * Streams' PartitionGroup. A topology with several sources (candles and
 * ticks, fills and ticks) must see them merged by event time, or the same
 * input would give different output depending on how the fetches happened to
 * interleave. The rule, as in Kafka Streams with max.task.idle.ms:
 *
 * - the next record is the buffered head with the smallest timestamp (ties:
 *   the topology's source order, then offset order within a topic);
 * - a source with nothing buffered blocks the others while it may still have
 *   records below its known end offset (the high watermark of its last fetch,
 *   or the end offset when the task was created); once it is read to that end
 *   it is idle and the others go on without it.
 *
 * So a replay of recorded topics (all data present before the run) merges
 * deterministically; a live source that is momentarily caught up does not
 * hold the others back.
 *
 * It also tells which offsets may be committed: per topic, the first record
 * not yet processed, or — with nothing buffered — everything fetched,
 * including trailing transaction markers.
 *
 * A bounded run (`sep replay`) gives each source a stop offset: records at or
 * beyond it are not taken, and a source fetched up to it is at its end. So
 * the run reads exactly the range, and the merge at its end is the one a run
 * over topics that end there would make.
 */
export interface InputRecord {
  offset: string;
  timestamp: string;
}

interface Source<R> {
  queue: R[];
  head: number;
  /** Next offset after everything fetched so far (records and markers). */
  fetched: bigint;
  /** Known end offset of the partition (never beyond `stop`). */
  end: bigint;
  /** Offset the run stops before (a bounded run), else undefined. */
  stop: bigint | undefined;
}

export class PartitionInput<R extends InputRecord> {
  private readonly sources = new Map<string, Source<R>>();

  /**
   * @param topics source topics in topology order (the tie-break order)
   * @param positions next offset to process per topic (the committed offsets)
   * @param ends known end offsets per topic (missing: treated as at the position)
   * @param stops per topic, the offset a bounded run stops before (missing: unbounded)
   */
  constructor(readonly partition: number, private readonly topics: readonly string[], positions: ReadonlyMap<string, bigint>, ends: ReadonlyMap<string, bigint>,
    stops: ReadonlyMap<string, bigint> = new Map()) {
    for (const t of topics) {
      const stop = stops.get(t);
      const fetched = min(positions.get(t) ?? 0n, stop);
      this.sources.set(t, { queue: [], head: 0, fetched, end: min(ends.get(t) ?? fetched, stop), stop });
    }
  }

  /** True when a bounded source has been fetched up to its stop offset (fetching it further is wasted). */
  atStop(topic: string): boolean {
    const s = this.source(topic);
    return s.stop !== undefined && s.fetched >= s.stop;
  }

  /**
   * Adds a fetched batch. Records below the fetch position are dropped (a
   * batch fetched again after a retry); `lastOffset` may be beyond the last
   * record (trailing transaction markers).
   */
  append(topic: string, records: readonly R[], lastOffset: bigint, highWatermark: bigint): number {
    const s = this.source(topic);
    let accepted = 0;
    for (const r of records) {
      const offset = BigInt(r.offset);
      if (offset < s.fetched || (s.stop !== undefined && offset >= s.stop)) continue;
      s.queue.push(r);
      accepted++;
    }
    this.observe(topic, lastOffset, highWatermark);
    return accepted;
  }

  /** A fetch that moved the position without records (markers, aborted data). */
  observe(topic: string, lastOffset: bigint, highWatermark: bigint): void {
    const s = this.source(topic);
    const fetched = min(lastOffset + 1n, s.stop);
    if (fetched > s.fetched) s.fetched = fetched;
    const end = min(highWatermark, s.stop);
    if (end > s.end) s.end = end;
  }

  buffered(topic?: string): number {
    if (topic !== undefined) {
      const s = this.source(topic);
      return s.queue.length - s.head;
    }
    let n = 0;
    for (const s of this.sources.values()) n += s.queue.length - s.head;
    return n;
  }

  /**
   * Takes the next record in timestamp order, or undefined when nothing is
   * buffered or a source without buffered records may still have some before
   * its end. `endOfInput` treats every source as read to its end (the test
   * driver, once all input is piped).
   */
  next(endOfInput = false): { topic: string; record: R } | undefined {
    let best: { topic: string; s: Source<R>; ts: number } | undefined;
    for (const topic of this.topics) {
      const s = this.sources.get(topic)!;
      if (s.head === s.queue.length) {
        if (!endOfInput && s.fetched < s.end) return undefined;
        continue;
      }
      const ts = Number(s.queue[s.head]!.timestamp);
      if (!best || ts < best.ts) best = { topic, s, ts };
    }
    if (!best) return undefined;
    const record = best.s.queue[best.s.head++]!;
    // Compact now and then: the queue is an array with a moving head.
    if (best.s.head > 4096 && best.s.head * 2 > best.s.queue.length) {
      best.s.queue = best.s.queue.slice(best.s.head);
      best.s.head = 0;
    }
    return { topic: best.topic, record };
  }

  /** Per topic, the offset to commit: the first unprocessed record, or everything fetched. */
  committable(): Map<string, bigint> {
    const out = new Map<string, bigint>();
    for (const [topic, s] of this.sources) out.set(topic, s.head < s.queue.length ? BigInt(s.queue[s.head]!.offset) : s.fetched);
    return out;
  }

  private source(topic: string): Source<R> {
    const s = this.sources.get(topic);
    if (!s) throw new Error(`topic ${topic} is not a source of this task`);
    return s;
  }
}

const min = (a: bigint, b: bigint | undefined) => (b !== undefined && b < a ? b : a);
