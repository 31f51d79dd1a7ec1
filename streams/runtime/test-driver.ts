/**
 * Runs a Topology in-process without a broker, like Kafka Streams'
 * TopologyTestDriver: records piped in are partitioned by key exactly as the
 * Kafka producer does (murmur2, so stream time per partition matches the Kafka
 * path), processed synchronously by per-partition Tasks, and their outputs and
 * dead letters collected in order. Used by unit tests and the offline mode.
 */
import { Partitioners } from 'kafkajs';
import { Task, type OutputRecord, type TaskRejection } from './task.ts';
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
  readonly rejections: (TaskRejection & { partition: number })[] = [];
  private readonly offsets = new Map<string, number>();
  private readonly partitions: number;
  private readonly partitioner = Partitioners.DefaultPartitioner();

  constructor(private readonly topology: Topology, private readonly opts: TestDriverOptions = {}) {
    this.partitions = opts.partitions ?? 1;
  }

  /** The partition Kafka's default partitioner picks for this key. */
  partitionOf(topic: string, key: string): number {
    const partitionMetadata = Array.from({ length: this.partitions }, (_, i) => ({ partitionId: i, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
    return this.partitioner({ topic, partitionMetadata, message: { key, value: null } });
  }

  pipeInput(topic: string, key: string, value: unknown, timestamp: number): void {
    const partition = this.partitionOf(topic, key);
    const offsetKey = `${topic}/${partition}`;
    const offset = this.offsets.get(offsetKey) ?? 0;
    this.offsets.set(offsetKey, offset + 1);
    const task = this.task(partition);
    const result = task.process(topic, offset, key, value, timestamp);
    for (const o of result.outputs) {
      const list = this.outputs.get(o.topic) ?? [];
      list.push(o);
      this.outputs.set(o.topic, list);
    }
    for (const r of result.rejections) this.rejections.push({ ...r, partition });
  }

  /** Everything written to `topic` so far, in production order. */
  readOutput(topic: string): OutputRecord[] {
    return this.outputs.get(topic) ?? [];
  }

  store<S extends StateStore>(name: string, partition = 0): S {
    return this.task(partition).store(name) as S;
  }

  close(): void {
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
