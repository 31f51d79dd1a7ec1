/**
 * The TimescaleDB sink: topics → hypertables. Each consumed batch is written
 * as one multi-row upsert per table together with the consumed offsets, in
 * one database transaction, so the database holds exactly what was consumed
 * (DESIGN §7). On start and on every assignment the sink seeks to the offsets
 * stored in the database; records below them are skipped if Kafka redelivers.
 * The upsert key is a second guard. Undecodable records go to dlq.v1.
 *
 * One pg client: the embedded TimescaleDB accepts a single connection.
 */
import type pg from 'pg';
import type { Kafka } from 'kafkajs';
import type { Consumer, EachBatchPayload, Producer } from '../../streams/runtime/kafka.ts';
import type { AvroSerde } from '../../streams/runtime/serde.ts';
import { DecodeError, UnavailableError } from '../../streams/runtime/errors.ts';
import { deadLetterOf, DLQ_TOPIC } from '../../streams/runtime/dead-letter.ts';
import { sinkBatchSeconds, sinkRows } from '../../streams/runtime/metrics.ts';
import { TABLES, upsertSql, type TableMapping } from './tables.ts';

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
  rowsWritten = 0;

  constructor(private readonly opts: SinkOptions) {
    for (const t of opts.topics) if (!TABLES[t]) throw new Error(`no table mapping for topic ${t}; add one to connectors/sink/tables.ts`);
  }

  async start(): Promise<void> {
    this.state = 'starting';
    const { rows } = await this.opts.db.query<{ topic: string; partition: number; next_offset: string }>(
      'SELECT topic, partition, next_offset FROM sink_offsets WHERE consumer_group = $1', [this.opts.groupId]);
    for (const r of rows) this.stored.set(`${r.topic}/${r.partition}`, BigInt(r.next_offset));
    const consumer = this.opts.kafka.consumer({ groupId: this.opts.groupId, readUncommitted: false, allowAutoTopicCreation: false });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: [...this.opts.topics], fromBeginning: true });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      // The database, not Kafka's committed offset, says where we are.
      for (const [topic, partitions] of Object.entries(payload.memberAssignment)) {
        for (const partition of partitions) {
          const next = this.stored.get(`${topic}/${partition}`);
          if (next !== undefined) consumer.seek({ topic, partition, offset: next.toString() });
        }
      }
    });
    await consumer.run({ eachBatchAutoResolve: false, autoCommit: true, eachBatch: (p) => this.onBatch(p) });
    this.state = 'running';
  }

  /** True when every partition of the sink's topics is written up to `ends` (topic → partition → high watermark). */
  caughtUp(ends: Map<string, Map<number, bigint>>): boolean {
    for (const [topic, parts] of ends) {
      for (const [partition, high] of parts) {
        if (high > 0n && (this.stored.get(`${topic}/${partition}`) ?? 0n) < high) return false;
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

  private async onBatch({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale()) return;
    const { topic, partition } = batch;
    const mapping = TABLES[topic]!;
    const skipBelow = this.stored.get(`${topic}/${partition}`) ?? 0n;
    const rows: unknown[][] = [];
    const dead = [];
    let last: string | undefined;
    for (const m of batch.messages) {
      last = m.offset;
      if (BigInt(m.offset) < skipBelow) continue; // already in the database
      try {
        rows.push(mapping.row(await this.opts.serde.decode(topic, m.value), this.opts.runId));
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        const letter = deadLetterOf(err, { topic, partition, offset: Number(m.offset), key: m.key, value: m.value, ts: Number(m.timestamp) });
        dead.push({ key: topic, value: this.opts.serde.encode(DLQ_TOPIC, letter), timestamp: m.timestamp });
      }
    }
    if (last === undefined) return;
    if (dead.length) await this.opts.producer.send({ topic: DLQ_TOPIC, messages: dead, acks: -1 });
    const next = BigInt(last) + 1n;
    if (next > skipBelow) await this.write(mapping, rows, topic, partition, next);
    resolveOffset(last);
    await heartbeat();
    await commitOffsetsIfNecessary();
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
