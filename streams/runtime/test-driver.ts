/**
 * Runs a Topology in-process without a broker, like Kafka Streams'
 * TopologyTestDriver: records piped in are partitioned by key exactly as the
 * Kafka producer does (murmur2, so stream time per partition matches the Kafka
 * path), processed by per-partition Tasks, and their outputs and dead letters
 * collected in order. Used by unit tests and the offline mode.
 *
 * With one source topic a record is processed as it is piped. With several,
 * records wait in the same timestamp merge the Kafka path uses
 * (PartitionInput) and are processed by `flush()` — called by `readOutput`,
 * `store` and `close` — as if every input topic had been read to its end:
 * exactly what a replay of recorded topics does.
 */
import { partitionForKey } from './kafka.ts';
import { Task, type OutputRecord, type TaskRejection } from './task.ts';
import { PartitionInput } from './partition-input.ts';
import type { Topology } from './topology.ts';
import type { StateStore } from './stores.ts';

export interface TestDriverOptions {
  /** Partitions of the source topics (default 1). */
  partitions?: number;
  graceMs?: number;
}

export class TopologyTestDriver {
  private readonly tasks = new Map<number, Task>();
  private readonly outputs = new Map<string, OutputRecord[]>();
  private readonly rejected: (TaskRejection & { partition: number })[] = [];
  private readonly offsets = new Map<string, number>();
  private readonly partitions: number;
  private readonly inputs = new Map<number, PartitionInput<{ offset: string; timestamp: string; key: string; value: unknown }>>();
  private readonly sourceTopics: string[];
  private sinceDrain = 0;

  constructor(private readonly topology: Topology, private readonly opts: TestDriverOptions = {}) {
    this.partitions = opts.partitions ?? 1;
    this.sourceTopics = topology.sources().map((s) => s.topic);
  }

  /** The partition Kafka's default partitioner picks for this key. */
  partitionOf(_topic: string, key: string): number {
    return partitionForKey(key, this.partitions);
  }

  pipeInput(topic: string, key: string, value: unknown, timestamp: number): void {
    if (!this.sourceTopics.includes(topic)) throw new Error(`topic ${topic} is not a source of this topology (sources: ${this.sourceTopics.join(', ')})`);
    const partition = this.partitionOf(topic, key);
    const offsetKey = `${topic}/${partition}`;
    const offset = this.offsets.get(offsetKey) ?? 0;
    this.offsets.set(offsetKey, offset + 1);
    if (this.sourceTopics.length === 1) {
      this.run(partition, topic, offset, key, value, timestamp);
      return;
    }
    let input = this.inputs.get(partition);
    if (!input) {
      input = new PartitionInput(partition, this.sourceTopics, new Map(), new Map());
      this.inputs.set(partition, input);
    }
    input.append(topic, [{ offset: String(offset), timestamp: String(timestamp), key, value }], BigInt(offset), BigInt(offset + 1));
  }

  /** Processes every piped record, merged by timestamp per partition (input read to its end). */
  flush(): void {
    for (const [partition, input] of [...this.inputs].sort(([a], [b]) => a - b)) {
      for (let next = input.next(true); next; next = input.next(true)) {
        const r = next.record;
        this.run(partition, next.topic, Number(r.offset), r.key, r.value, Number(r.timestamp));
      }
    }
  }

  private run(partition: number, topic: string, offset: number, key: string, value: unknown, timestamp: number): void {
    const task = this.task(partition);
    const result = task.process(topic, offset, key, value, timestamp);
    // No changelog topic here: drop the state writes as the runtime sends them, every few thousand records.
    if (++this.sinceDrain >= 5000) {
      this.sinceDrain = 0;
      for (const t of this.tasks.values()) t.drainChangelog();
    }
    for (const o of result.outputs) {
      const list = this.outputs.get(o.topic) ?? [];
      list.push(o);
      this.outputs.set(o.topic, list);
    }
    for (const r of result.rejections) this.rejected.push({ ...r, partition });
  }

  /** Forgets the outputs and rejections collected so far (long in-process runs: memory). */
  clearOutputs(): void {
    this.flush();
    this.outputs.clear();
    this.rejected.length = 0;
  }

  /** Records rejected so far (dead letters), in processing order. */
  get rejections(): readonly (TaskRejection & { partition: number })[] {
    this.flush();
    return this.rejected;
  }

  /** Everything written to `topic` so far, in production order. */
  readOutput(topic: string): OutputRecord[] {
    this.flush();
    return this.outputs.get(topic) ?? [];
  }

  store<S extends StateStore>(name: string, partition = 0): S {
    this.flush();
    return this.task(partition).store(name) as S;
  }

  close(): void {
    this.flush();
    for (const t of this.tasks.values()) t.close();
  }

  private task(partition: number): Task {
    let t = this.tasks.get(partition);
    if (!t) {
      t = new Task(this.topology, partition, { graceMs: this.opts.graceMs });
      this.tasks.set(partition, t);
    }
    return t;
  }
}
