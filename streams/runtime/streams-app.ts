/**
 * Runs a Topology on Kafka. One Task per input partition (source topics are
 * co-partitioned); with `exactly_once`, each task has its own transactional
 * producer whose id is stable per input partition (`<app>-task-<p>`): kafkajs
 * implements only KIP-98 fencing (its sendOffsets carries no group generation,
 * so KIP-447's single producer is not an option), and a stable id per
 * partition lets a new owner fence the old one.
 *
 * Fetched batches join the task's PartitionInput, which hands records out in
 * timestamp order across the source topics. Per processing run, in one
 * transaction: the outputs, the state writes (stamped with the input record
 * that made them), the stream-time checkpoint, the dead letters, and the
 * input offsets of every source up to the first record not yet processed.
 *
 * State is restored from the compacted changelog topics
 * (`<app>-<store>-changelog`, one partition per task) when a task is created
 * (on first assignment, after a rebalance, after a failure) and before it
 * processes anything; a failed run is aborted, the task and its buffered input
 * dropped, and the sources re-fetched from the committed offsets.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Kafka, Producer, Transaction } from 'kafkajs';
import type { Consumer, EachBatchPayload, KafkaMessage, Message } from './kafka.ts';
import { committedOffsets, createProducer, ensureTopics, type Admin } from './kafka.ts';
import type { AvroSerde } from './serde.ts';
import { DecodeError } from './errors.ts';
import { deadLetterOf, DLQ_TOPIC } from './dead-letter.ts';
import { STREAM_TIME_STORE, Task, type TaskOutput } from './task.ts';
import { PartitionInput } from './partition-input.ts';
import type { Topology } from './topology.ts';
import * as metrics from './metrics.ts';

export type Guarantee = 'exactly_once' | 'at_least_once';
export type AppState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface StreamsAppOptions {
  /** Consumer group, transactional-id prefix and changelog-topic prefix. */
  applicationId: string;
  topology: Topology;
  kafka: Kafka;
  admin: Admin;
  serde: AvroSerde;
  guarantee?: Guarantee;
  /** Lateness tolerated behind stream time before a record is dead-lettered as `late`, ms (default 300 000). */
  graceMs?: number;
  /** Outputs buffered before an intermediate send inside the batch's transaction (default 5 000). */
  maxBufferedRecords?: number;
  /** Fetched records waiting per input partition before it is paused (backpressure; default 20 000). */
  maxQueuedRecords?: number;
  /**
   * A bounded run (`sep replay`): per `${topic}/${partition}`, the offset to stop
   * before. Records from there on are not processed, a source fetched up to its
   * stop counts as at its end (the timestamp merge goes on without it) and is
   * paused; the group's offsets end exactly at the stops. Missing: unbounded.
   */
  stopAt?: ReadonlyMap<string, bigint>;
  /**
   * Per `${topic}/${partition}`, where to start when the group has committed
   * nothing there yet (a replay's first offset at or after its start time);
   * missing: the beginning. Committed offsets always win (a restart resumes).
   */
  startAt?: ReadonlyMap<string, bigint>;
  log?: (line: string) => void;
}

const INPUT_TOPIC_HEADER = 'sep.input.topic';
/** Longest a state restore may go without finishing before the batch fails and is retried (ms). */
const RESTORE_TIMEOUT_MS = 60_000;
const INPUT_OFFSET_HEADER = 'sep.input.offset';
/** Output bytes buffered before an intermediate send (half the broker's default message.max.bytes). */
const MAX_BUFFERED_BYTES = 512 * 1024;

/** Messages in order, cut into sendBatch requests of at most `maxBytes` of keys and values (a larger single message goes alone). */
export function chunkBySize(byTopic: [string, Message[]][], maxBytes: number): { topic: string; messages: Message[] }[][] {
  const chunks: { topic: string; messages: Message[] }[][] = [];
  let chunk: { topic: string; messages: Message[] }[] = [];
  let bytes = 0;
  for (const [topic, messages] of byTopic) {
    for (const m of messages) {
      const size = (m.value ? (m.value as Buffer).length : 0) + (m.key ? Buffer.byteLength(String(m.key)) : 0);
      if (bytes > 0 && bytes + size > maxBytes) {
        chunks.push(chunk);
        chunk = [];
        bytes = 0;
      }
      const last = chunk.at(-1);
      if (last?.topic === topic) last.messages.push(m);
      else chunk.push({ topic, messages: [m] });
      bytes += size;
    }
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

export function changelogTopic(applicationId: string, store: string): string {
  return `${applicationId}-${store}-changelog`;
}

export class StreamsApp {
  state: AppState = 'created';
  private consumer: Consumer | undefined;
  private sharedProducer: Producer | undefined;
  private readonly producers = new Map<number, Producer>();
  private readonly tasks = new Map<number, Task>();
  /** Per partition: fetched records not yet processed, merged by timestamp across the source topics. */
  private readonly inputs = new Map<number, PartitionInput<KafkaMessage>>();
  /** Per partition: the tail of its serial work (batches, and kicks after marker-only fetches). */
  private readonly chains = new Map<number, Promise<void>>();
  private readonly paused = new Set<string>();
  private sources: string[] = [];
  /** `${topic}/${partition}` → next offset the app has finished with (committed, or past trailing markers). */
  readonly positions = new Map<string, bigint>();
  private readonly guarantee: Guarantee;
  private failure: Error | undefined;
  private readonly committedOnce = new Set<string>();
  private lastCommittedCheck = 0;

  constructor(private readonly opts: StreamsAppOptions) {
    this.guarantee = opts.guarantee ?? 'exactly_once';
  }

  private log(line: string): void {
    this.opts.log?.(`[${this.opts.applicationId}] ${line}`);
  }

  async start(): Promise<void> {
    this.state = 'starting';
    const { kafka, admin, topology, applicationId } = this.opts;
    const sources = topology.sources().map((s) => s.topic);
    this.sources = sources;
    const meta = await admin.fetchTopicMetadata({ topics: sources });
    const partitions = Math.max(...meta.topics.map((t) => t.partitions.length));
    const specs = [...topology.stores.keys(), STREAM_TIME_STORE].map((store) => ({ name: changelogTopic(applicationId, store), partitions, compacted: true }));
    await ensureTopics(admin, specs, partitions);
    if (this.guarantee === 'at_least_once') this.sharedProducer = await createProducer(kafka);

    const committed = await committedOffsets(kafka, applicationId, sources);
    for (const [k, v] of committed) this.positions.set(k, v);
    // Seeking is only an optimisation: records below a position are dropped by the PartitionInput anyway.
    const seekOnJoin = new Map([...this.opts.startAt ?? []].filter(([k]) => !committed.has(k)));
    for (const [k, v] of seekOnJoin) this.positions.set(k, v);

    // A short session: a crashed member blocks its partitions until it expires (ms).
    const consumer = kafka.consumer({ groupId: applicationId, readUncommitted: false, allowAutoTopicCreation: false, maxBytesPerPartition: 1024 * 1024, sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 1000 });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.onAssignment(payload.memberAssignment);
      for (const [topic, partitions] of Object.entries(payload.memberAssignment)) {
        for (const partition of partitions) {
          const k = `${topic}/${partition}`;
          // After a rebalance, where this instance got to (the group may not have committed yet).
          if (seekOnJoin.has(k)) consumer.seek({ topic, partition, offset: (this.positions.get(k) ?? seekOnJoin.get(k)!).toString() });
        }
      }
    });
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      // Also fires for fetches of only transaction markers or aborted records, which never reach eachBatch.
      const { topic, partition } = payload;
      metrics.consumerLag.set({ topic, partition: String(partition), group: applicationId }, Number(payload.offsetLag));
      const input = this.inputs.get(partition);
      if (!input || payload.lastOffset === null) return;
      input.observe(topic, BigInt(payload.lastOffset), BigInt(payload.highWatermark));
      if (input.atStop(topic)) this.pause(topic, partition);
      // Nothing waiting: everything up to here is finished with (committed, or markers).
      if (input.buffered() === 0) this.positions.set(`${topic}/${partition}`, input.committable().get(topic)!);
      // A source that just reached its end may unblock records of the others.
      else void this.serially(partition, () => this.runPartition(partition, async () => {})).catch(() => {});
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      this.log(`consumer crashed (${payload.restart ? 'restarting' : 'giving up'}): ${payload.error.message}`);
      if (!payload.restart) {
        this.failure = payload.error;
        this.state = 'failed';
      }
    });
    await consumer.connect();
    await consumer.subscribe({ topics: sources, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (p) => this.onBatch(p) });
    this.state = 'running';
    this.log(`running (${this.guarantee}) on ${sources.join(', ')}`);
  }

  /**
   * True when every source partition is finished up to `ends` (topic → partition →
   * high watermark) — by this instance, or by another member of the group (its
   * committed offsets are checked when ours fall short: a caught-up partition
   * sends no batches that would tell us).
   */
  async caughtUp(ends: Map<string, Map<number, bigint>>): Promise<boolean> {
    const behind = () => [...ends].some(([topic, parts]) => [...parts].some(([p, high]) => high > 0n && (this.positions.get(`${topic}/${p}`) ?? 0n) < high));
    if (!behind()) return true;
    // At most every 2 s, on the app's own admin connection: callers poll this in a tight loop.
    if (Date.now() - this.lastCommittedCheck < 2000) return false;
    this.lastCommittedCheck = Date.now();
    for (const t of await this.opts.admin.fetchOffsets({ groupId: this.opts.applicationId, topics: [...ends.keys()] })) {
      for (const p of t.partitions) {
        const k = `${t.topic}/${p.partition}`;
        if (Number(p.offset) >= 0 && BigInt(p.offset) > (this.positions.get(k) ?? 0n)) this.positions.set(k, BigInt(p.offset));
      }
    }
    return !behind();
  }

  error(): Error | undefined {
    return this.failure;
  }

  /** Finishes the batch in progress (its transaction commits), then leaves the group and closes. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopping';
    await this.consumer?.disconnect();
    await Promise.all(this.chains.values());
    for (const task of this.tasks.values()) task.close();
    this.tasks.clear();
    await Promise.all([...this.producers.values()].map((p) => p.disconnect()));
    this.producers.clear();
    await this.sharedProducer?.disconnect();
    this.state = 'stopped';
    this.log('stopped');
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    const owned = new Set(Object.values(assignment).flat());
    for (const p of this.inputs.keys()) if (!owned.has(p)) this.dropInput(p);
    for (const [p, task] of this.tasks) {
      if (owned.has(p)) continue;
      // Revoked: the next owner restores from the changelog; if it comes back to us, so do we.
      task.close();
      this.tasks.delete(p);
      this.dropInput(p);
      const producer = this.producers.get(p);
      this.producers.delete(p);
      void producer?.disconnect();
    }
  }

  private async taskFor(partition: number, heartbeat: () => Promise<void>): Promise<Task> {
    const existing = this.tasks.get(partition);
    if (existing) return existing;
    const task = new Task(this.opts.topology, partition, { graceMs: this.opts.graceMs });
    const started = Date.now();
    for (const store of task.storeNames()) await this.restoreStore(task, store, partition, heartbeat);
    metrics.restoreSeconds.observe({ application: this.opts.applicationId }, (Date.now() - started) / 1000);
    this.tasks.set(partition, task);
    return task;
  }

  /**
   * Reads the store's changelog partition from the beginning to its end with
   * read_committed; records stamped with an input offset at or beyond the
   * committed input offset are ignored (they can exist only without transactions).
   */
  private async restoreStore(task: Task, store: string, partition: number, heartbeat: () => Promise<void>): Promise<void> {
    const topic = changelogTopic(this.opts.applicationId, store);
    const offsets = await this.opts.admin.fetchTopicOffsets(topic);
    const bounds = offsets.find((o) => o.partition === partition);
    const end = BigInt(bounds?.high ?? '0');
    if (!bounds || end === BigInt(bounds.low)) return;
    const target = task.store(store);
    const consumer = this.opts.kafka.consumer({ groupId: `${this.opts.applicationId}-restore-${randomBytes(6).toString('hex')}`, readUncommitted: false, allowAutoTopicCreation: false });
    let applied = 0;
    let ignored = 0;
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setInterval(() => void heartbeat().catch(() => {}), 2000);
        // A restore that stops advancing fails the batch (it is retried with a fresh reader) instead of hanging.
        const deadline = setTimeout(() => finish(new Error(`restoring ${store} partition ${partition} did not reach offset ${end} of ${topic} within ${RESTORE_TIMEOUT_MS / 1000} s (${applied} records applied)`)), RESTORE_TIMEOUT_MS);
        const finish = (err?: Error) => { clearInterval(timer); clearTimeout(deadline); if (err) reject(err); else resolve(); };
        consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
          if (payload.partition === partition && BigInt(payload.lastOffset) + 1n >= end) finish();
        });
        consumer.run({
          eachBatch: async ({ batch }) => {
            if (batch.partition !== partition) {
              consumer.pause([{ topic, partitions: [batch.partition] }]);
              return;
            }
            for (const m of batch.messages) {
              const inTopic = m.headers?.[INPUT_TOPIC_HEADER]?.toString();
              const inOffset = m.headers?.[INPUT_OFFSET_HEADER]?.toString();
              const committed = inTopic ? this.positions.get(`${inTopic}/${partition}`) : undefined;
              if (committed !== undefined && inOffset !== undefined && BigInt(inOffset) >= committed) {
                ignored++;
                continue;
              }
              target.restore(m.key!.toString(), m.value ? m.value.toString() : null);
              applied++;
            }
          },
        }).catch(finish);
      });
    } finally {
      await consumer.disconnect();
    }
    this.log(`restored ${store} partition ${partition}: ${applied} changelog records${ignored ? `, ${ignored} beyond the committed input offset ignored` : ''}, ${target.size()} entries`);
  }

  /**
   * A fetched batch joins its partition's input; kafkajs may fetch on (its
   * position is resolved at once), while what is committed — through
   * sendOffsets, in the transaction — covers only processed records.
   */
  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale()) return;
    const { topic, partition } = batch;
    const input = this.inputs.get(partition) ?? await this.createInput(partition);
    input.append(topic, batch.messages, BigInt(batch.lastOffset()), BigInt(batch.highWatermark));
    resolveOffset(batch.lastOffset());
    if (input.atStop(topic) || input.buffered(topic) >= (this.opts.maxQueuedRecords ?? 20_000)) this.pause(topic, partition);
    await this.serially(partition, () => this.runPartition(partition, heartbeat));
  }

  private async createInput(partition: number): Promise<PartitionInput<KafkaMessage>> {
    const { admin, applicationId } = this.opts;
    // The group's committed offsets now (another member may have moved them) and
    // each source's end: a source read to its end does not hold the others back.
    for (const t of await admin.fetchOffsets({ groupId: applicationId, topics: this.sources })) {
      for (const p of t.partitions) if (p.partition === partition && Number(p.offset) >= 0) this.positions.set(`${t.topic}/${partition}`, BigInt(p.offset));
    }
    const positions = new Map<string, bigint>();
    const ends = new Map<string, bigint>();
    const stops = new Map<string, bigint>();
    for (const topic of this.sources) {
      positions.set(topic, this.positions.get(`${topic}/${partition}`) ?? 0n);
      const end = (await admin.fetchTopicOffsets(topic)).find((o) => o.partition === partition);
      ends.set(topic, BigInt(end?.high ?? '0'));
      const stop = this.opts.stopAt?.get(`${topic}/${partition}`);
      if (stop !== undefined) stops.set(topic, stop);
    }
    const input = new PartitionInput<KafkaMessage>(partition, this.sources, positions, ends, stops);
    this.inputs.set(partition, input);
    return input;
  }

  private dropInput(partition: number): void {
    this.inputs.delete(partition);
    for (const topic of this.sources) {
      metrics.bufferedRecords.remove({ application: this.opts.applicationId, topic, partition: String(partition) });
      this.resume(topic, partition);
    }
  }

  /** Runs `fn` after everything queued for the partition (one task is never processed concurrently). */
  private serially(partition: number, fn: () => Promise<void>): Promise<void> {
    const run = (this.chains.get(partition) ?? Promise.resolve()).then(fn);
    this.chains.set(partition, run.catch(() => {}));
    return run;
  }

  private pause(topic: string, partition: number): void {
    const k = `${topic}/${partition}`;
    if (this.paused.has(k)) return;
    this.paused.add(k);
    this.consumer!.pause([{ topic, partitions: [partition] }]);
    metrics.inputPauses.inc({ application: this.opts.applicationId, topic });
  }

  private resume(topic: string, partition: number): void {
    if (!this.paused.delete(`${topic}/${partition}`)) return;
    this.consumer!.resume([{ topic, partitions: [partition] }]);
  }

  /**
   * Processes what the partition's input can give in timestamp order, in one
   * transaction with the input offsets: outputs, changelog writes (stamped with
   * the input offset that produced them), dead letters, the stream-time checkpoint.
   */
  private async runPartition(partition: number, heartbeat: () => Promise<void>): Promise<void> {
    const input = this.inputs.get(partition);
    if (!input || this.state === 'stopped') return;
    let taken = input.next();
    if (!taken) return this.afterRun(input);
    const eos = this.guarantee === 'exactly_once';
    let txn: Transaction | undefined;
    let sender: Producer | Transaction = this.sharedProducer!;
    const out = new Map<string, Message[]>();
    let buffered = 0;
    let sinceFlush = 0;
    let task: Task | undefined;
    let lastInput: { topic: string; offset: string } | undefined;
    let bufferedBytes = 0;
    const push = (t: string, m: Message) => {
      const list = out.get(t);
      if (list) list.push(m); else out.set(t, [m]);
      buffered++;
      bufferedBytes += (m.value ? (m.value as Buffer).length : 0) + (m.key ? String(m.key).length : 0);
    };
    const flush = async () => {
      // State writes, one per key since the last send (the stores coalesce), stamped with the input that made them.
      for (const c of task?.drainChangelog() ?? []) {
        const clTopic = changelogTopic(this.opts.applicationId, c.store);
        for (const w of c.writes) {
          const headers = w.stamp ? { [INPUT_TOPIC_HEADER]: w.stamp.topic, [INPUT_OFFSET_HEADER]: String(w.stamp.offset) } : undefined;
          push(clTopic, { key: w.key, value: w.value === null ? null : Buffer.from(w.value), partition, ...(headers ? { headers } : {}) });
        }
      }
      sinceFlush = 0;
      if (buffered === 0) return;
      const all = [...out.entries()];
      out.clear();
      buffered = 0;
      bufferedBytes = 0;
      // The state writes are counted only now, and a backlog can make them large (a blob stage holding
      // thousands of partials): send in requests of at most MAX_BUFFERED_BYTES, so no partition's record
      // batch reaches the broker's message.max.bytes. Order per topic is kept; all in the one transaction.
      for (const topicMessages of chunkBySize(all, MAX_BUFFERED_BYTES)) await sender.sendBatch({ topicMessages, acks: -1 });
    };
    // Counted locally and added once per run: label lookups per record cost more than the counting.
    const counts = { in: new Map<string, number>(), out: new Map<string, number>() };
    const processing = metrics.processingSeconds.labels({ application: this.opts.applicationId });
    try {
      if (eos) {
        // Beginning the transaction first matters: its InitProducerId fences a crashed
        // predecessor and aborts its open transaction, whose changelog records would
        // otherwise hold the restore below (read_committed) until the transaction timeout.
        txn = await (await this.producerFor(partition)).transaction();
        sender = txn;
      }
      task = await this.taskFor(partition, heartbeat);
      for (; taken; taken = input.next()) {
        const { topic, record: m } = taken;
        lastInput = { topic, offset: m.offset };
        const started = performance.now();
        counts.in.set(topic, (counts.in.get(topic) ?? 0) + 1);
        let result: TaskOutput;
        try {
          const value = this.opts.serde.decodeCached(topic, m.value) ?? await this.opts.serde.decode(topic, m.value);
          result = task.process(topic, Number(m.offset), m.key?.toString() ?? '', value, Number(m.timestamp));
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err;
          result = { outputs: [], rejections: [{ error: err, topic, offset: Number(m.offset) }] };
        }
        for (const o of result.outputs) {
          push(o.topic, { key: o.key, value: this.opts.serde.encode(o.topic, o.value), timestamp: String(o.timestamp) });
          counts.out.set(o.topic, (counts.out.get(o.topic) ?? 0) + 1);
        }
        for (const r of result.rejections) {
          const letter = deadLetterOf(r.error, { topic, partition, offset: Number(m.offset), key: m.key, value: m.value, ts: Number(m.timestamp) });
          push(DLQ_TOPIC, { key: topic, value: this.opts.serde.encode(DLQ_TOPIC, letter), timestamp: m.timestamp });
        }
        processing.observe((performance.now() - started) / 1000);
        // Bytes too: a partition's record batch must stay under the broker's message.max.bytes (1 MiB by default).
        if (buffered >= (this.opts.maxBufferedRecords ?? 5000) || ++sinceFlush >= (this.opts.maxBufferedRecords ?? 5000) || bufferedBytes >= MAX_BUFFERED_BYTES) {
          await flush();
          // A long run must keep the session alive (10 s); a rebalance noticed here aborts the transaction.
          await heartbeat();
        }
      }
      await flush();
      const advanced = [...input.committable()].filter(([t, next]) => next > (this.positions.get(`${t}/${partition}`) ?? -1n));
      const topics = advanced.map(([t, next]) => ({ topic: t, partitions: [{ partition, offset: next.toString() }] }));
      if (txn) {
        if (topics.length) await txn.sendOffsets({ consumerGroupId: this.opts.applicationId, topics });
        await txn.commit();
      } else if (topics.length) {
        await this.consumer!.commitOffsets(topics.map((t) => ({ topic: t.topic, ...t.partitions[0]! })));
      }
      for (const [t, next] of advanced) {
        const k = `${t}/${partition}`;
        if (!this.committedOnce.has(k)) {
          this.committedOnce.add(k);
          this.log(`first batch committed on ${t}[${partition}] (up to offset ${next})`);
        }
        this.positions.set(k, next);
      }
    } catch (err) {
      if (txn) {
        metrics.transactionAborts.inc({ application: this.opts.applicationId });
        await txn.abort().catch(() => {});
      }
      // The task's in-memory state may be ahead of what committed: rebuild it from the
      // changelog, and fetch its inputs again from the committed offsets.
      this.tasks.get(partition)?.close();
      this.tasks.delete(partition);
      this.dropInput(partition);
      for (const t of this.sources) this.consumer?.seek({ topic: t, partition, offset: (this.positions.get(`${t}/${partition}`) ?? 0n).toString() });
      this.log(`processing partition ${partition} failed at ${lastInput ? `${lastInput.topic}@${lastInput.offset}` : 'start'}, transaction aborted, task will be restored: ${(err as Error).message}`);
      // Rethrown as is: kafkajs tells a rebalance or a retriable broker error from a fatal one by its type.
      throw err;
    }
    for (const [topic, n] of counts.in) metrics.recordsIn.inc({ topic, processor: this.opts.applicationId }, n);
    for (const [topic, n] of counts.out) metrics.recordsOut.inc({ topic }, n);
    this.afterRun(input);
    // After the commit: a rebalance noticed here costs nothing, the work is already done.
    await heartbeat().catch((err: Error) => this.log(`heartbeat after commit: ${err.message}`));
  }

  /** Resumes drained inputs and publishes what waits. */
  private afterRun(input: PartitionInput<KafkaMessage>): void {
    for (const topic of this.sources) {
      const waiting = input.buffered(topic);
      metrics.bufferedRecords.set({ application: this.opts.applicationId, topic, partition: String(input.partition) }, waiting);
      if (waiting < (this.opts.maxQueuedRecords ?? 20_000) / 2 && !input.atStop(topic)) this.resume(topic, input.partition);
    }
  }

  private async producerFor(partition: number): Promise<Producer> {
    const existing = this.producers.get(partition);
    if (existing) return existing;
    const producer = await createProducer(this.opts.kafka, { transactionalId: `${this.opts.applicationId}-task-${partition}` });
    this.producers.set(partition, producer);
    return producer;
  }
}
