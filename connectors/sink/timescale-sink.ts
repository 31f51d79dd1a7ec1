/**
 * The TimescaleDB sink: topics → hypertables. Each consumed batch is written
 * as one multi-row upsert per table together with the consumed offsets, in
 * one database transaction, so the database holds exactly what was consumed
 * (DESIGN §7). On start the group's Kafka offsets are set to the ones stored in
 * the database; records below them are skipped if Kafka redelivers anyway.
 * The upsert key is a second guard. Undecodable records go to dlq.v1.
 *
 * One pg client: the embedded TimescaleDB accepts a single connection.
 */
import type pg from 'pg';
import type { Kafka } from 'kafkajs';
import type { Admin, Consumer, EachBatchPayload, Producer } from '../../streams/runtime/kafka.ts';
import type { AvroSerde } from '../../streams/runtime/serde.ts';
import { DecodeError, UnavailableError } from '../../streams/runtime/errors.ts';
import { deadLetterOf, DLQ_TOPIC } from '../../streams/runtime/dead-letter.ts';
import { sinkBatchSeconds, sinkRows } from '../../streams/runtime/metrics.ts';
import { TABLES, upsertSql, type TableMapping } from './tables.ts';

/** Short, so a crashed sink's group is free again quickly (ms). */
const SESSION_TIMEOUT_MS = 10_000;

export type SinkState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface SinkOptions {
  kafka: Kafka;
  serde: AvroSerde;
  db: pg.ClientBase;
  /** Producer for dead letters. */
  producer: Producer;
  topics: readonly string[];
  groupId: string;
  /** run_id stamped on every row ('live' for the live pipeline). */
  runId: string;
  /** Rows per INSERT statement (default 1000). */
  rowsPerStatement?: number;
  log?: (line: string) => void;
}

export class TimescaleSink {
  state: SinkState = 'idle';
  private consumer: Consumer | undefined;
  /** `${topic}/${partition}` → next offset to write, as stored in the database. */
  private readonly stored = new Map<string, bigint>();
  /** `${topic}/${partition}` → how far the sink has read, counting transaction markers past the last row. */
  private readonly reached = new Map<string, bigint>();
  rowsWritten = 0;

  constructor(private readonly opts: SinkOptions) {
    for (const t of opts.topics) if (!TABLES[t]) throw new Error(`no table mapping for topic ${t}; add one to connectors/sink/tables.ts`);
  }

  async start(): Promise<void> {
    this.state = 'starting';
    const { rows } = await this.opts.db.query<{ topic: string; partition: number; next_offset: string }>(
      'SELECT topic, partition, next_offset FROM sink_offsets WHERE consumer_group = $1', [this.opts.groupId]);
    for (const r of rows) this.stored.set(`${r.topic}/${r.partition}`, BigInt(r.next_offset));
    // The database says where we are: align the group's Kafka offsets with it before joining
    // (the group is ours and not running yet), instead of racing a seek against the join.
    const admin = this.opts.kafka.admin();
    await admin.connect();
    try {
      for (const topic of this.opts.topics) {
        const partitions = rows.filter((r) => r.topic === topic).map((r) => ({ partition: r.partition, offset: r.next_offset }));
        if (partitions.length) await this.setOffsetsWhenIdle(admin, topic, partitions);
      }
    } finally {
      await admin.disconnect();
    }
    const consumer = this.opts.kafka.consumer({ groupId: this.opts.groupId, readUncommitted: false, allowAutoTopicCreation: false, sessionTimeout: SESSION_TIMEOUT_MS });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: [...this.opts.topics], fromBeginning: true });
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      // Fires for marker-only batches too, which never reach eachBatch: the end of a transactional topic.
      if (payload.offsetLag === '0') this.reached.set(`${payload.topic}/${payload.partition}`, BigInt(payload.highWatermark));
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      this.opts.log?.(`sink consumer failed (${payload.restart ? 'restarting from the stored offsets' : 'giving up'}): ${payload.error.message}`);
      if (!payload.restart) this.state = 'failed';
    });
    await consumer.run({ eachBatchAutoResolve: false, autoCommit: false, eachBatch: (p) => this.onBatch(p) });
    this.state = 'running';
  }

  /**
   * Kafka refuses to move a group's offsets while it has members; after a crash
   * the dead member stays until its session times out, so wait for that.
   */
  private async setOffsetsWhenIdle(admin: Admin, topic: string, partitions: { partition: number; offset: string }[]): Promise<void> {
    const deadline = Date.now() + SESSION_TIMEOUT_MS + 15_000;
    for (let logged = false; ; ) {
      try {
        await admin.setOffsets({ groupId: this.opts.groupId, topic, partitions });
        return;
      } catch (err) {
        if (!/no running instances/.test((err as Error).message) || Date.now() > deadline) {
          throw new UnavailableError('KAFKA_UNAVAILABLE', `cannot align consumer group ${this.opts.groupId} with the database offsets: ${(err as Error).message}; is another sink with this run id running? Stop it first`, { cause: err });
        }
        if (!logged) this.opts.log?.(`sink: group ${this.opts.groupId} still has a member (a previous instance?); waiting for its session to expire`);
        logged = true;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Where the sink stands per `${topic}/${partition}`: rows written, or the partition end when only markers remained. */
  positions(): Map<string, bigint> {
    const out = new Map(this.stored);
    for (const [k, v] of this.reached) if (v > (out.get(k) ?? 0n)) out.set(k, v);
    return out;
  }

  /** True when every partition of the sink's topics is written up to `ends` (topic → partition → high watermark). */
  caughtUp(ends: Map<string, Map<number, bigint>>): boolean {
    for (const [topic, parts] of ends) {
      for (const [partition, high] of parts) {
        const key = `${topic}/${partition}`;
        const at = [this.stored.get(key), this.reached.get(key)].reduce<bigint>((a, b) => (b !== undefined && b > a ? b : a), 0n);
        if (high > 0n && at < high) return false;
      }
    }
    return true;
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'idle') return;
    this.state = 'stopping';
    await this.consumer?.disconnect();
    this.state = 'stopped';
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale()) return;
    const { topic, partition } = batch;
    const mapping = TABLES[topic]!;
    const skipBelow = this.stored.get(`${topic}/${partition}`) ?? 0n;
    // Keyed by the upsert key: one statement may not touch a row twice, and the last record wins.
    const rows = new Map<string, unknown[]>();
    const keyIdx = mapping.conflictKey.map((k) => mapping.columns.indexOf(k));
    const dead = [];
    let last: string | undefined;
    for (const m of batch.messages) {
      last = m.offset;
      if (BigInt(m.offset) < skipBelow) continue; // already in the database
      try {
        const row = mapping.row(await this.opts.serde.decode(topic, m.value), this.opts.runId);
        rows.set(keyIdx.map((i) => String(row[i])).join('\u0000'), row);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        const letter = deadLetterOf(err, { topic, partition, offset: Number(m.offset), key: m.key, value: m.value, ts: Number(m.timestamp) });
        dead.push({ key: topic, value: this.opts.serde.encode(DLQ_TOPIC, letter), timestamp: m.timestamp });
      }
    }
    if (last === undefined) return;
    if (dead.length) await this.opts.producer.send({ topic: DLQ_TOPIC, messages: dead, acks: -1 });
    const next = BigInt(last) + 1n;
    if (next > skipBelow) await this.write(mapping, [...rows.values()], topic, partition, next);
    resolveOffset(last);
    // Kafka's copy of the offsets (for lag monitoring) follows the database, never leads it.
    await this.consumer!.commitOffsets([{ topic, partition, offset: next.toString() }]);
    await heartbeat();
  }

  private async write(mapping: TableMapping, rows: unknown[][], topic: string, partition: number, next: bigint): Promise<void> {
    const db = this.opts.db;
    const per = this.opts.rowsPerStatement ?? 1000;
    const stop = sinkBatchSeconds.startTimer();
    try {
      await db.query('BEGIN');
      for (let i = 0; i < rows.length; i += per) {
        const chunk = rows.slice(i, i + per);
        await db.query(upsertSql(mapping, chunk.length), chunk.flat());
      }
      await db.query(
        `INSERT INTO sink_offsets (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
         ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
        [this.opts.groupId, topic, partition, next.toString()]);
      await db.query('COMMIT');
    } catch (err) {
      await db.query('ROLLBACK').catch(() => {});
      throw new UnavailableError('DATABASE_UNAVAILABLE', `writing ${rows.length} rows to ${mapping.table} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      stop();
    }
    this.stored.set(`${topic}/${partition}`, next);
    this.rowsWritten += rows.length;
    sinkRows.inc({ table: mapping.table }, rows.length);
  }
}
