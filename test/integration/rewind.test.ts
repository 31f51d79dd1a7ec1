/**
 * `sep rewind` on the real stack: the bundled day's candles through
 * `sep run --until-caught-up`, then
 * (a) a rewind while `sep run` of the run is running is refused, naming the
 *     groups and their members, and changes nothing;
 * (b) a dry run prints the plan and changes nothing (offsets, sink_offsets,
 *     changelog topics);
 * (c) a rewind to mid-day, then `sep run` again: features.v1 gains exactly the
 *     records from T on again — the same keys as the first pass, the values of
 *     a computation that starts clean at T (the reset tool's semantics: the
 *     state is deleted) — and the database holds no row twice and no stale
 *     one: before T what the first pass wrote, from T exactly what the re-run
 *     wrote. A second rewind to the same T finds nothing to do.
 *
 * Never a pg connection while a `sep` child runs: the embedded TimescaleDB
 * takes one connection.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { createNamespace, readTopic, ROOT, sep, urls, type CliResult } from './helpers.ts';
import { createKafka, type TopicRecord } from '../../streams/runtime/kafka.ts';
import { AvroSerde } from '../../streams/runtime/serde.ts';
import { TOPICS, type TopicSpec } from '../../streams/runtime/topics.ts';
import { TopologyTestDriver } from '../../streams/runtime/test-driver.ts';
import { pipelineTopology } from '../../streams/execution/topology.ts';
import { resolvePipelineConfig, SINK_TOPICS } from '../../src/pipeline/run.ts';
import { rowsOf, TABLES } from '../../connectors/sink/tables.ts';

const DAY = path.join(ROOT, 'data/recorded/2026-11-13');
// 5-minute evaluations as in gates.test.ts (the blob stage's partials of one pass stay far below a broker message).
const KNOBS = { EVAL_INTERVAL_SEC: '300', GATES_BLOB_MAX_AGE_SEC: '900' };
const ns = createNamespace('rewind');
const env = { ...ns.env, ...KNOBS };
const T = Date.parse('2026-11-13T12:00:00Z');
const T_ISO = new Date(T).toISOString();
const topic = (name: string) => `${ns.prefix}${name}`;
const featuresApp = `${ns.prefix}sep-features-${ns.runId}`;
const sinkGroup = `${ns.prefix}sep-sink-${ns.runId}`;

const kafka = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: 'it-rewind' });
const admin = kafka.admin();
const serde = new AvroSerde(urls.SCHEMA_REGISTRY_URL);
after(() => admin.disconnect());

/** `sep` again when the database was busy at connect (another client held the one connection): nothing had changed yet. */
async function sepOnce(args: string[], timeoutMs?: number): Promise<CliResult> {
  for (let attempt = 1; ; attempt++) {
    const r = await sep(args, env, timeoutMs);
    if (attempt >= 10 || !/cannot reach TimescaleDB .*(too many clients|timeout expired)/.test(r.stderr)) return r;
    await new Promise((res) => setTimeout(res, 5000));
  }
}

async function withDb<T>(fn: (db: pg.Client) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const db = new pg.Client({ connectionString: urls.DATABASE_URL, connectionTimeoutMillis: 10_000 });
    try {
      await db.connect();
    } catch (err) {
      await db.end().catch(() => {});
      if (attempt >= 10) throw err;
      await new Promise((res) => setTimeout(res, 5000));
      continue;
    }
    try {
      return await fn(db);
    } finally {
      await db.end();
    }
  }
}

const TABLE_TIME: Record<string, string> = { markouts: 'fill_ts' };
const timeColumn = (table: string) => TABLE_TIME[table] ?? 'ts';
const tables = [...new Set(SINK_TOPICS.map((t) => TABLES[t]!.table))];

/** Rows of the run per table, before T and at or after T. */
async function rowCounts(): Promise<Record<string, { before: number; after: number }>> {
  return withDb(async (db) => {
    const out: Record<string, { before: number; after: number }> = {};
    for (const t of tables) {
      const { rows } = await db.query<{ before: string; after: string }>(
        `SELECT count(*) FILTER (WHERE ${timeColumn(t)} < $2) AS before, count(*) FILTER (WHERE ${timeColumn(t)} >= $2) AS after FROM ${t} WHERE run_id = $1`, [ns.runId, T_ISO]);
      out[t] = { before: Number(rows[0]!.before), after: Number(rows[0]!.after) };
    }
    return out;
  });
}

const sinkOffsets = () => withDb(async (db) => (await db.query('SELECT topic, partition, next_offset FROM sink_offsets WHERE consumer_group = $1 ORDER BY topic, partition', [sinkGroup])).rows);

async function committed(groupId: string, topics: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of await admin.fetchOffsets({ groupId, topics })) for (const p of t.partitions) out[`${t.topic}/${p.partition}`] = p.offset;
  return out;
}

const changelogs = async () => (await admin.listTopics()).filter((t) => t.startsWith(`${ns.prefix}sep-`) && t.endsWith('-changelog')).sort();
const inputTopics = [TOPICS.ticks, TOPICS.candles, TOPICS.fills, TOPICS.orders].map((s) => topic(s.name));

/** End offset per partition of each sink topic: where the first pass ended. */
async function ends(): Promise<Map<string, Map<number, bigint>>> {
  return new Map(await Promise.all(SINK_TOPICS.map(async (t) => [t, new Map((await admin.fetchTopicOffsets(topic(t))).map((o) => [o.partition, BigInt(o.high)]))] as const)));
}

async function decodeAll(name: string, records: TopicRecord[]): Promise<unknown[]> {
  const spec = Object.values(TOPICS).find((s) => s.name === name) as TopicSpec;
  serde.readAs(topic(name), spec);
  const out: unknown[] = [];
  // One at a time: the first fetches the writer schema, the rest use it.
  for (const r of records) out.push(serde.decodeCached(topic(name), r.value) ?? await serde.decode(topic(name), r.value));
  return out;
}

/** Avro gives logical timestamps as Dates; compare as epoch ms. */
const plain = (x: unknown) => JSON.parse(JSON.stringify(x, (_k, v) => (v instanceof Date ? v.getTime() : v))) as unknown;

/** The features of a computation that starts clean at T: the pipeline's topology over the candles from T, in the test driver. */
function offlineFeaturesFromT(): Map<string, unknown> {
  const config = resolvePipelineConfig(KNOBS);
  const d = new TopologyTestDriver(pipelineTopology(config.catalog, config), { partitions: 3 });
  for (const line of readFileSync(path.join(DAY, 'candles.ndjson'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { instrument: string; ts: string };
    if (Date.parse(r.ts) >= T) d.pipeInput(TOPICS.candles.name, r.instrument, r, Date.parse(r.ts));
  }
  return new Map(d.readOutput(TOPICS.features.name).map((o) => [`${o.key}/${o.timestamp}`, plain(o.value)]));
}

const first = {} as { ends: Map<string, Map<number, bigint>>; features: TopicRecord[]; rows: Record<string, { before: number; after: number }> };

test('the first pass: the bundled day\'s candles through sep run --until-caught-up', { timeout: 300_000 }, async () => {
  await admin.connect();
  const imported = await sep(['import', path.join(DAY, 'candles.ndjson')], env);
  assert.equal(imported.code, 0, imported.stdout + imported.stderr);
  const run = await sepOnce(['run', '--run-id', ns.runId, '--until-caught-up'], 300_000);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  first.ends = await ends();
  first.features = await readTopic(topic(TOPICS.features.name));
  first.rows = await rowCounts();
  assert.ok(first.rows.features!.after > 1000 && first.rows.features!.before > 1000, JSON.stringify(first.rows.features));
});

test('bad input: an unknown run id and a time in the future are refused (exit 1), a bad datetime is a usage error with an example (exit 2)', async () => {
  const unknown = await sep(['rewind', '--run-id', `${ns.runId}-nope`, '--to-datetime', T_ISO], env);
  assert.equal(unknown.code, 1, unknown.stdout + unknown.stderr);
  assert.match(unknown.stderr, new RegExp(`unknown run "${ns.runId}-nope": none of its consumer groups exists .*runs with groups under SEP_TOPIC_PREFIX=${ns.prefix.replace(/\./g, '\\.')}: ${ns.runId}`));
  const future = await sep(['rewind', '--run-id', ns.runId, '--to-datetime', '2999-01-01T00:00:00Z'], env);
  assert.equal(future.code, 1);
  assert.match(future.stderr, /is in the future/);
  const bad = await sep(['rewind', '--run-id', ns.runId, '--to-datetime', '2026-11-13 12:00'], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--to-datetime "2026-11-13 12:00": give an ISO-8601 time with its zone, e.g\. 2026-11-13T12:00:00Z/);
});

test('(a) refused while `sep run` of the run is running: the groups, their members and the fix are named; nothing changes', { timeout: 120_000 }, async () => {
  const before = await committed(featuresApp, inputTopics);
  const { child, exited, output } = await startRun();
  try {
    // By one of its groups: the whole run is checked.
    const r = await sep(['rewind', '--group', featuresApp, '--to-datetime', T_ISO], env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`group ${featuresApp.replace(/\./g, '\\.')} is a consumer of run ${ns.runId}`));
    assert.match(r.stderr, new RegExp(`run ${ns.runId} is running: \\d of its consumer groups have active members`));
    assert.match(r.stderr, new RegExp(`${featuresApp.replace(/\./g, '\\.')} \\((Stable|PreparingRebalance|CompletingRebalance)\\): sep-run on `));
    assert.match(r.stderr, new RegExp(`stop \`sep run --run-id ${ns.runId}\``));
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, output());
  assert.deepEqual(await committed(featuresApp, inputTopics), before);
});

test('(b) --dry-run prints the plan (group, topic, partition, committed → new; topics to delete; rows) and changes nothing', async () => {
  const offsets = await committed(featuresApp, inputTopics);
  const stored = await sinkOffsets();
  const topics = await changelogs();
  const r = await sepOnce(['rewind', '--run-id', ns.runId, '--to-datetime', T_ISO, '--dry-run']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /dry run: nothing is changed/);
  const atT = await admin.fetchTopicOffsetsByTimestamp(topic(TOPICS.candles.name), T);
  for (const { partition, offset } of atT) {
    assert.match(r.stdout, new RegExp(`${featuresApp.replace(/\./g, '\\.')} \\(features app\\)\\s+${topic(TOPICS.candles.name).replace(/\./g, '\\.')}\\s+${partition}\\s+${offsets[`${topic(TOPICS.candles.name)}/${partition}`]}\\s+→\\s+${offset}\\s+to T`));
  }
  assert.match(r.stdout, new RegExp(`${sinkGroup.replace(/\./g, '\\.')} \\(sink\\)\\s+${topic(TOPICS.features.name).replace(/\./g, '\\.')}\\s+0 `));
  assert.match(r.stdout, new RegExp(`${featuresApp.replace(/\./g, '\\.')}-stream-time-changelog \\(\\d+ records\\)`));
  assert.match(r.stdout, new RegExp(`features\\.ts ≥ T\\s+${first.rows.features!.after}\\n`));
  assert.deepEqual(await committed(featuresApp, inputTopics), offsets);
  assert.deepEqual(await sinkOffsets(), stored);
  assert.deepEqual(await changelogs(), topics);
  assert.deepEqual(await rowCounts(), first.rows);
});

test('(c) rewind to mid-day, sep run again: the records from T on once more, computed from a clean state at T; no row twice, none stale', { timeout: 360_000 }, async () => {
  const r = await sepOnce(['rewind', '--run-id', ns.runId, '--to-datetime', T_ISO]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`rewound run ${ns.runId} to ${T_ISO}: \\d+ offsets moved in \\d group\\(s\\), \\d+ changelog topic\\(s\\) deleted, \\d+ rows deleted`));
  // Rewound: the inputs at T, no state, no row at or after T.
  const atT = await admin.fetchTopicOffsetsByTimestamp(topic(TOPICS.candles.name), T);
  const offsets = await committed(featuresApp, [topic(TOPICS.candles.name)]);
  for (const { partition, offset } of atT) assert.equal(offsets[`${topic(TOPICS.candles.name)}/${partition}`], offset);
  assert.deepEqual(await changelogs(), []);
  const rewound = await rowCounts();
  for (const t of tables) assert.deepEqual(rewound[t], { before: first.rows[t]!.before, after: 0 }, t);

  const again = await sepOnce(['rewind', '--run-id', ns.runId, '--to-datetime', T_ISO]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /nothing to do: run .* is already rewound to/);

  const run = await sepOnce(['run', '--run-id', ns.runId, '--until-caught-up'], 300_000);
  assert.equal(run.code, 0, run.stdout + run.stderr);

  // features.v1: what the re-run appended = the first pass's records from T on, key for key …
  const all = await readTopic(topic(TOPICS.features.name));
  const isNew = (m: TopicRecord) => BigInt(m.offset) >= first.ends.get(TOPICS.features.name)!.get(m.partition)!;
  const added = all.filter(isNew);
  const firstFromT = first.features.filter((m) => Number(m.timestamp) >= T);
  assert.equal(added.length, firstFromT.length);
  const key = (m: TopicRecord) => `${m.key}/${m.timestamp}`;
  assert.deepEqual(added.map(key).sort(), firstFromT.map(key).sort());
  // … with the values of a computation that starts clean at T (bar_index from 0, EWMAs warming up again).
  const expected = offlineFeaturesFromT();
  const values = await decodeAll(TOPICS.features.name, added);
  assert.equal(expected.size, added.length);
  added.forEach((m, i) => assert.deepEqual(plain(values[i]), expected.get(key(m)), key(m)));
  const firstValues = await decodeAll(TOPICS.features.name, firstFromT);
  const byKey = new Map(firstFromT.map((m, i) => [key(m), firstValues[i] as { close: number; volume_usd: number; bar_index: number }]));
  for (const [i, m] of added.entries()) {
    const v = values[i] as { close: number; volume_usd: number; bar_index: number };
    const f = byKey.get(key(m))!;
    assert.deepEqual([v.close, v.volume_usd], [f.close, f.volume_usd], 'what depends on the bar alone is unchanged');
  }
  assert.ok(added.some((m, i) => (values[i] as { bar_index: number }).bar_index === 0), 'the state restarted at T');

  // The database: before T the first pass's rows; from T exactly the rows of what the re-run wrote (the
  // candles from T, the outputs appended), each once.
  const rows = await rowCounts();
  for (const t of SINK_TOPICS) {
    const table = TABLES[t]!.table;
    const records = (await readTopic(topic(t))).filter((m) => (TOPICS.candles.name === t ? Number(m.timestamp) >= T : isNewOn(t, m)));
    const mapping = TABLES[t]!;
    const at = mapping.columns.indexOf(timeColumn(table));
    const keyIdx = mapping.conflictKey.map((k) => mapping.columns.indexOf(k));
    const keys = new Set<string>();
    for (const value of await decodeAll(t, records)) {
      for (const row of rowsOf(mapping, value, ns.runId)) if (Date.parse(String(row[at])) >= T) keys.add(keyIdx.map((k) => String(row[k])).join('\u0000'));
    }
    assert.deepEqual(rows[table], { before: first.rows[table]!.before, after: keys.size }, table);
  }
  assert.deepEqual(rows.candles, first.rows.candles);
  assert.deepEqual(rows.features, first.rows.features, 'one features row per candle, as after the first pass');
});

/** `sep run --run-id ID` (no --until-caught-up) as a child, once it logs "pipeline running" (started again if the database was busy). */
async function startRun() {
  for (let attempt = 1; ; attempt++) {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/sep.mjs'), 'run', '--run-id', ns.runId], { cwd: ROOT, env: { ...process.env, CI: '1', ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const deadline = Date.now() + 60_000;
    while (!out.includes('pipeline running') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    if (out.includes('pipeline running')) return { child, exited, output: () => out };
    child.kill('SIGKILL');
    await exited;
    if (attempt >= 10 || !/cannot reach TimescaleDB .*(too many clients|timeout expired)/.test(out)) throw new Error(`sep run did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 5000));
  }
}

function isNewOn(t: string, m: TopicRecord): boolean {
  return BigInt(m.offset) >= (first.ends.get(t)!.get(m.partition) ?? 0n);
}
