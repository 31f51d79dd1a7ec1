/**
 * The TimescaleDB sink: topics → hypertables. Each consumed batch is written
 * as one multi-row upsert per table together with the consumed offsets, in
 * one database transaction, so the database holds exactly what was consumed
 * (DESIGN §7). On start the group's Kafka offsets are set to the ones stored in
 * the database; records below them are skipped if Kafka redelivers anyway.
 * The upsert key is a second guard. Undecodable records go to dlq.v1, and so
 * do rows the database refuses (a constraint or data exception): the batch is
 * then written row by row, each in a savepoint, so one bad row costs no others.
 *
 * When the database goes away (down, restarting, unreachable) the sink pauses
 * every partition, reconnects with backoff, re-reads the offsets the database
 * holds and resumes from them: nothing is lost (the failed transaction rolled
 * back, its records are fetched again) and nothing is written twice (a
 * transaction that committed before the connection dropped moved the stored
 * offsets past its records). Slow writes are backpressure by themselves: a
 * partition is fetched again only after its batch committed.
 *
 * One pg client (SinkDatabase): the embedded TimescaleDB accepts a single connection.
 */
import type pg from 'pg';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { committedOffsets, type Admin, type Consumer, type EachBatchPayload, type Producer } from '../../streams/runtime/kafka.ts';
import type { AvroSerde } from '../../streams/runtime/serde.ts';
import { DecodeError, InputError, SepError, UnavailableError } from '../../streams/runtime/errors.ts';
import { deadLetterOf, DLQ_TOPIC } from '../../streams/runtime/dead-letter.ts';
import { sinkBatchSeconds, sinkDatabaseOutages, sinkPaused, sinkRows } from '../../streams/runtime/metrics.ts';
import { rowsOf, TABLES, upsertSql, type TableMapping } from './tables.ts';
import { classifyDatabaseError, type SinkDatabase } from './database.ts';

/** Short, so a crashed sink's group is free again quickly (ms). */
const SESSION_TIMEOUT_MS = 10_000;

/** `paused`: the database is unreachable; every partition waits for it. */
export type SinkState = 'idle' | 'starting' | 'running' | 'paused' | 'stopping' | 'stopped' | 'failed';

export interface SinkOptions {
  kafka: Kafka;
  serde: AvroSerde;
  database: SinkDatabase;
  /** Producer for dead letters. */
  producer: Producer;
  topics: readonly string[];
  groupId: string;
  /** run_id stamped on every row ('live' for the live pipeline). */
  runId: string;
  /** Rows per INSERT statement (default 1000). */
  rowsPerStatement?: number;
  /** Reconnect backoff while the database is down: first and longest wait, ms (default 500 and 10 000). */
  reconnectMs?: { first: number; max: number };
  log?: (line: string) => void;
}

/** A decoded row and the message it came from (for a dead letter if the database refuses it). */
interface PendingRow { row: unknown[]; message: KafkaMessage }

export class TimescaleSink {
  state: SinkState = 'idle';
  private consumer: Consumer | undefined;
  /** `${topic}/${partition}` → next offset to write, as stored in the database. */
  private readonly stored = new Map<string, bigint>();
  /** `${topic}/${partition}` → how far the sink has read, counting transaction markers past the last row. */
  private readonly reached = new Map<string, bigint>();
  rowsWritten = 0;
  /** Rows written per table. */
  readonly rowsByTable = new Map<string, number>();
  /** Times the database went away while the sink ran. */
  outages = 0;
  private recovery: Promise<void> | undefined;

  constructor(private readonly opts: SinkOptions) {
    for (const t of opts.topics) if (!TABLES[t]) throw new Error(`no table mapping for topic ${t}; add one to connectors/sink/tables.ts`);
  }

  async start(): Promise<void> {
    this.state = 'starting';
    const rows = await this.loadStoredOffsets(await this.opts.database.client());
    await this.opts.database.release();
    // The database says where we are: align the group's Kafka offsets with it before joining
    // (the group is ours and not running yet), instead of racing a seek against the join.
    // Only where Kafka's copy differs (a crash between the database commit and Kafka's): each
    // alignment is a group join, ~3 s, and a clean stop leaves the two equal.
    const kafkaOffsets = await committedOffsets(this.opts.kafka, this.opts.groupId, [...this.opts.topics]);
    const admin = this.opts.kafka.admin();
    await admin.connect();
    try {
      for (const topic of this.opts.topics) {
        const partitions = rows.filter((r) => r.topic === topic).map((r) => ({ partition: r.partition, offset: r.next_offset }));
        if (partitions.every((p) => kafkaOffsets.get(`${topic}/${p.partition}`) === BigInt(p.offset))) continue;
        await this.setOffsetsWhenIdle(admin, topic, partitions);
      }
    } finally {
      await admin.disconnect();
    }
    // maxWaitTimeInMs as the stream apps': stop() waits for the pending fetch (kafkajs' default 5 s).
    const consumer = this.opts.kafka.consumer({ groupId: this.opts.groupId, readUncommitted: false, allowAutoTopicCreation: false, sessionTimeout: SESSION_TIMEOUT_MS, maxWaitTimeInMs: 1000 });
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
    await this.recovery;
    await this.consumer?.disconnect();
    this.state = 'stopped';
  }

  /** The database's offsets for this group replace what the sink believed (the database is the truth). */
  private async loadStoredOffsets(db: pg.ClientBase): Promise<{ topic: string; partition: number; next_offset: string }[]> {
    const { rows } = await db.query<{ topic: string; partition: number; next_offset: string }>(
      'SELECT topic, partition, next_offset FROM sink_offsets WHERE consumer_group = $1', [this.opts.groupId]);
    for (const r of rows) this.stored.set(`${r.topic}/${r.partition}`, BigInt(r.next_offset));
    return rows;
  }

  /** The database went away: pause every partition and reconnect in the background. */
  private pauseForDatabase(err: unknown): void {
    this.opts.database.broken();
    if (this.state !== 'running') return;
    this.state = 'paused';
    this.outages++;
    sinkDatabaseOutages.inc();
    sinkPaused.set(1);
    this.consumer!.pause(this.opts.topics.map((topic) => ({ topic })));
    this.opts.log?.(`sink: the database is unavailable (${(err as Error).message}); every partition paused, reconnecting`);
    this.recovery = this.recover();
  }

  private async recover(): Promise<void> {
    const { first, max } = this.opts.reconnectMs ?? { first: 500, max: 10_000 };
    const since = Date.now();
    for (let wait = first; this.state === 'paused'; wait = Math.min(wait * 2, max)) {
      await new Promise((r) => setTimeout(r, wait));
      if (this.state !== 'paused') return;
      try {
        await this.loadStoredOffsets(await this.opts.database.client());
      } catch (err) {
        this.opts.database.broken();
        if (classifyDatabaseError(err) !== 'connection' && !(err instanceof UnavailableError)) {
          this.state = 'failed';
          this.opts.log?.(`sink: reconnected but cannot read sink_offsets: ${(err as Error).message}`);
          return;
        }
        continue;
      }
      this.state = 'running';
      sinkPaused.set(0);
      this.consumer!.resume(this.opts.topics.map((topic) => ({ topic })));
      this.opts.log?.(`sink: the database is back after ${((Date.now() - since) / 1000).toFixed(1)} s; resuming from the offsets it holds`);
    }
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    // Paused for the database: leave the batch unresolved, it is fetched again on resume.
    if (!isRunning() || isStale() || this.state !== 'running') return;
    const { topic, partition } = batch;
    const mapping = TABLES[topic]!;
    const skipBelow = this.stored.get(`${topic}/${partition}`) ?? 0n;
    // Keyed by the upsert key: one statement may not touch a row twice, and the last record wins.
    const rows = new Map<string, PendingRow>();
    const keyIdx = mapping.conflictKey.map((k) => mapping.columns.indexOf(k));
    const letters: { error: DecodeError | InputError; message: KafkaMessage }[] = [];
    let last: string | undefined;
    for (const m of batch.messages) {
      last = m.offset;
      if (BigInt(m.offset) < skipBelow) continue; // already in the database
      try {
        for (const row of rowsOf(mapping, await this.opts.serde.decode(topic, m.value), this.opts.runId)) {
          rows.set(keyIdx.map((i) => String(row[i])).join('\u0000'), { row, message: m });
        }
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        letters.push({ error: err, message: m });
      }
    }
    if (last === undefined) return;
    const next = BigInt(last) + 1n;
    if (next > skipBelow) {
      const ticker = setInterval(() => { heartbeat().catch(() => {}); }, 3000);
      try {
        // Dead letters go out inside the transaction, before its commit: a crash in between re-sends them rather than losing them.
        await this.write(mapping, [...rows.values()], topic, partition, next, (rejected) => this.sendDeadLetters(topic, partition, [...letters, ...rejected]));
      } catch (err) {
        if (err instanceof UnavailableError) {
          this.pauseForDatabase(err.cause ?? err);
          return;
        }
        this.state = 'failed';
        throw err;
      } finally {
        clearInterval(ticker);
      }
    }
    resolveOffset(last);
    // Kafka's copy of the offsets (for lag monitoring) follows the database, never leads it.
    await this.consumer!.commitOffsets([{ topic, partition, offset: next.toString() }]);
    await heartbeat();
  }

  private async sendDeadLetters(topic: string, partition: number, letters: { error: DecodeError | InputError; message: KafkaMessage }[]): Promise<void> {
    if (letters.length === 0) return;
    const messages = letters.map(({ error, message: m }) => ({
      key: topic,
      value: this.opts.serde.encode(DLQ_TOPIC, deadLetterOf(error, { topic, partition, offset: Number(m.offset), key: m.key, value: m.value, ts: Number(m.timestamp) })),
      timestamp: m.timestamp,
    }));
    await this.opts.producer.send({ topic: DLQ_TOPIC, messages, acks: -1 });
  }

  /**
   * Writes the rows and the next offset in one transaction. When the database
   * refuses the batch for its data, writes it again row by row, each in a
   * savepoint; the refused rows' dead letters are sent (`deadLetters`) before
   * the commit, so a crash in between re-sends them rather than losing them.
   * Throws UnavailableError when the connection failed; other errors keep
   * their SQLSTATE.
   */
  private async write(mapping: TableMapping, rows: PendingRow[], topic: string, partition: number, next: bigint,
    deadLetters: (rejected: { error: InputError; message: KafkaMessage }[]) => Promise<void>): Promise<void> {
    const stop = sinkBatchSeconds.startTimer();
    try {
      const rejected: { error: InputError; message: KafkaMessage }[] = [];
      try {
        await this.transaction(async (db) => {
          const per = this.opts.rowsPerStatement ?? 1000;
          for (let i = 0; i < rows.length; i += per) {
            const chunk = rows.slice(i, i + per);
            await db.query(upsertSql(mapping, chunk.length), chunk.flatMap((r) => r.row));
          }
          await this.storeOffset(db, topic, partition, next);
          await deadLetters([]);
        });
      } catch (err) {
        if (err instanceof SepError || classifyDatabaseError(err) !== 'data') throw err;
        await this.transaction(async (db) => {
          for (const r of rows) {
            await db.query('SAVEPOINT sink_row');
            try {
              await db.query(upsertSql(mapping, 1), r.row);
              await db.query('RELEASE SAVEPOINT sink_row');
            } catch (rowErr) {
              if (classifyDatabaseError(rowErr) !== 'data') throw rowErr;
              await db.query('ROLLBACK TO SAVEPOINT sink_row');
              const e = rowErr as { code?: string; message: string };
              rejected.push({ error: new InputError('rejected_by_database', undefined, `${mapping.table} refused the row (SQLSTATE ${e.code}): ${e.message}`), message: r.message });
            }
          }
          await this.storeOffset(db, topic, partition, next);
          await deadLetters(rejected);
        });
        this.opts.log?.(`sink: ${rejected.length} of ${rows.length} rows refused by ${mapping.table}, sent to ${DLQ_TOPIC}`);
      }
      this.stored.set(`${topic}/${partition}`, next);
      const written = rows.length - rejected.length;
      this.rowsWritten += written;
      this.rowsByTable.set(mapping.table, (this.rowsByTable.get(mapping.table) ?? 0) + written);
      sinkRows.inc({ table: mapping.table }, written);
    } finally {
      stop();
    }
  }

  /** BEGIN … COMMIT on the sink's connection; a connection failure becomes UnavailableError, other errors keep their SQLSTATE. */
  private async transaction(body: (db: pg.ClientBase) => Promise<void>): Promise<void> {
    let db: pg.ClientBase;
    try {
      db = await this.opts.database.client();
    } catch (err) {
      throw new UnavailableError('DATABASE_UNAVAILABLE', `cannot reach the database: ${(err as Error).message}`, { cause: err });
    }
    try {
      await db.query('BEGIN');
      await body(db);
      await db.query('COMMIT');
      await this.opts.database.release();
    } catch (err) {
      await db.query('ROLLBACK').catch(() => {});
      const kind = err instanceof SepError ? 'fatal' : classifyDatabaseError(err);
      if (kind === 'connection') throw new UnavailableError('DATABASE_UNAVAILABLE', `writing to the database failed: ${(err as Error).message}`, { cause: err });
      throw err;
    }
  }

  private async storeOffset(db: pg.ClientBase, topic: string, partition: number, next: bigint): Promise<void> {
    await db.query(
      `INSERT INTO sink_offsets (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
       ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
      [this.opts.groupId, topic, partition, next.toString()]);
  }
}
