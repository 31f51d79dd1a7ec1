/**
 * Markouts and cost calibration on the real stack with the bundled day's
 * fills, orders, ticks and candles: `sep import` → `sep run`. Every fill gets
 * exactly one markout per horizon (except the (fill, horizon) pairs whose
 * t0 + h + grace lies beyond the day's last record: they wait for a watermark
 * that never comes); markout.v1 equals the offline driver run; the rows in
 * TimescaleDB equal the topic; the markout metrics equal an aggregation of the
 * stored rows; a replay in a fresh consumer group is byte-identical.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { createServer } from 'node:net';
import path from 'node:path';
import avro from 'avsc';
import pg from 'pg';
import { createNamespace, readTopic, ROOT, sep, urls, readNdjson } from './helpers.ts';
import { TopologyTestDriver } from '../../streams/runtime/test-driver.ts';
import { loadSchema, TOPICS } from '../../streams/runtime/topics.ts';
import { InstrumentCatalog } from '../../streams/model/instruments.ts';
import { resolvePipelineConfig } from '../../src/pipeline/run.ts';
import { pipelineTopology } from '../../streams/execution/topology.ts';
import type { Markout } from '../../streams/markout/markout.ts';

const DAY = path.join(ROOT, 'data/recorded/2026-11-13');
const FILES = [[TOPICS.candles.name, 'candles.ndjson'], [TOPICS.ticks.name, 'ticks.ndjson.gz'], [TOPICS.fills.name, 'fills.ndjson'], [TOPICS.orders.name, 'orders.ndjson']] as const;
const ns = createNamespace('exec');
// The embedded TimescaleDB serves one connection: ours is opened only while no `sep run` is live.
const db = new pg.Client({ connectionString: urls.DATABASE_URL });
after(() => db.end().catch(() => {}));

const inputs = Promise.all(FILES.map(async ([topic, file]) => ({ topic, records: await readNdjson(path.join(DAY, file)) })));
const config = resolvePipelineConfig({});

async function offline(): Promise<{ markouts: Markout[]; calibrations: unknown[] }> {
  const d = new TopologyTestDriver(pipelineTopology(InstrumentCatalog.fromEnv({}), config), { partitions: 3 });
  for (const { topic, records } of await inputs) for (const r of records) d.pipeInput(topic, r.instrument as string, r, Date.parse(r.ts as string));
  assert.deepEqual(d.rejections.map((r) => r.error.message), [], 'the bundled day is clean');
  return { markouts: d.readOutput(TOPICS.markouts.name).map((o) => o.value as Markout), calibrations: d.readOutput(TOPICS.costCalibration.name).map((o) => o.value) };
}

const markoutType = avro.Type.forSchema(JSON.parse(loadSchema(TOPICS.markouts)));
const calibrationType = avro.Type.forSchema(JSON.parse(loadSchema(TOPICS.costCalibration)));
const key = (m: Pick<Markout, 'cid' | 'horizon_ms'>) => `${m.cid}/${m.horizon_ms}`;
const plain = (m: Markout) => JSON.parse(JSON.stringify(m)) as Markout;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

test('sep import loads the bundled day: candles, ticks, orders, fills', { timeout: 240_000 }, async () => {
  const r = await sep(['import', DAY], ns.env);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
});

test('every fill gets exactly one markout per horizon, equal to the offline run; TimescaleDB holds them; the metrics equal the stored rows', { timeout: 300_000 }, async () => {
  const { markouts: expected, calibrations } = await offline();
  const fills = (await inputs).find((i) => i.topic === TOPICS.fills.name)!.records;
  let last = -Infinity;
  for (const i of await inputs) for (const r of i.records) last = Math.max(last, Date.parse(r.ts as string));
  // Pairs whose t0 + h + grace is before the last record are final by the end of the day.
  const final = fills.flatMap((f) => config.markout.horizonsMs.filter((h) => Date.parse(f.ts as string) + h + config.markout.graceMs < last).map((h) => `${f.cid as string}/${h}`));
  assert.deepEqual(expected.map(key).sort(), [...final].sort(), 'offline: one markout per final (fill, horizon)');

  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/sep.mjs'), 'run', '--run-id', ns.runId], { cwd: ROOT, env: { ...process.env, CI: '1', ...ns.env, SEP_HTTP_PORT: String(port) } });
  let out = '';
  child.stdout.on('data', (x) => (out += x));
  child.stderr.on('data', (x) => (out += x));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  let metrics = '';
  try {
    const started = Date.now();
    let got: Markout[] = [];
    while (Date.now() - started < 240_000) {
      got = (await readTopic(`${ns.prefix}markout.v1`)).map((m) => plain(markoutType.fromBuffer(m.value!.subarray(5)) as Markout));
      if (got.length >= expected.length) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const order = (xs: Markout[]) => [...xs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    assert.equal(got.length, expected.length, `markouts on the topic\n${out}`);
    assert.deepEqual(order(got), order(expected.map(plain)), 'the Kafka path equals the offline run');
    // calib.cost.v1 is compacted (latest per instrument is the contract; old event timestamps make the
    // broker roll and compact segments within minutes): every record still there must be one the offline
    // run produced, and the latest per instrument must be the offline latest.
    const offlineByKeyTs = new Map((calibrations as { instrument: string; ts: number }[]).map((c) => [`${c.instrument}/${c.ts}`, JSON.stringify(c)]));
    const latest = (xs: { instrument: string; ts: number }[]) => Object.fromEntries([...xs].sort((a, b) => a.ts - b.ts).map((x) => [x.instrument, JSON.stringify(x)]));
    const expectedLatest = latest(calibrations as { instrument: string; ts: number }[]);
    let calib: { instrument: string; ts: number }[] = [];
    while (Date.now() - started < 240_000) {
      calib = (await readTopic(`${ns.prefix}calib.cost.v1`)).map((m) => JSON.parse(JSON.stringify(calibrationType.fromBuffer(m.value!.subarray(5)))) as { instrument: string; ts: number });
      if (JSON.stringify(Object.entries(latest(calib)).sort()) === JSON.stringify(Object.entries(expectedLatest).sort())) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.deepEqual(latest(calib), expectedLatest, 'latest calibration per instrument equals the offline run');
    for (const c of calib) assert.equal(JSON.stringify(c), offlineByKeyTs.get(`${c.instrument}/${c.ts}`), `${c.instrument}@${c.ts} is one the offline run produced`);
    // The sink is a separate consumer, and the embedded database takes one connection (the run's):
    // wait on the sink's own row counter, scrape, stop the run, then query.
    const sunk = (text: string) => Number(text.match(/^sep_sink_rows_total\{table="markouts"\} (\d+)/m)?.[1] ?? 0);
    do {
      metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      if (sunk(metrics) >= expected.length) break;
      await new Promise((r) => setTimeout(r, 1000));
    } while (Date.now() - started < 240_000);
    assert.equal(sunk(metrics), expected.length, 'the sink wrote one row per markout');
  } finally {
    child.kill('SIGTERM');
    await exited; // the next step needs the database connection the run holds
  }
  assert.equal(await exited, 0, out);

  await db.connect();
  try {
  const stored = await db.query<{ n: string }>('SELECT count(*) AS n FROM markouts WHERE run_id = $1', [ns.runId]);
  assert.equal(Number(stored.rows[0]!.n), expected.length, 'one row per markout in TimescaleDB');
  const { rows } = await db.query<{ instrument: string; horizon_ms: number; color: string; n: string; up: string; down: string; avg: number }>(`
    SELECT instrument, horizon_ms, color, count(*) AS n, count(*) FILTER (WHERE markout_bps > 0) AS up,
           count(*) FILTER (WHERE markout_bps < 0) AS down,
           -- the processor's mean is exact over its fixed-point sum (bps·1e4 per markout), then 6 dp
           round(sum(round((markout_bps * 1e4)::numeric)) / count(*) / 1e4, 6)::float8 AS avg
    FROM markouts WHERE run_id = $1 GROUP BY 1, 2, 3`, [ns.runId]);
  assert.ok(rows.length > 0);
  const sample = (name: string, r: (typeof rows)[number]) => {
    const m = metrics.match(new RegExp(`^${name}\\{horizon_ms="${r.horizon_ms}",color="${r.color}",symbol="${r.instrument}"\\} (\\S+)$`, 'm'));
    return m ? Number(m[1]) : 0;
  };
  for (const r of rows) {
    const at = `${r.instrument} ${r.horizon_ms} ms ${r.color}`;
    assert.equal(sample('markout_up_total', r), Number(r.up), `${at}: up`);
    assert.equal(sample('markout_down_total', r), Number(r.down), `${at}: down`);
    // One unit in the 6th decimal: the float8 → numeric cast may round a value that sits on a half.
    assert.ok(Math.abs(sample('markout_avg_bps', r) - r.avg) <= 1.01e-6, `${at}: avg ${sample('markout_avg_bps', r)} vs SQL ${r.avg}`);
  }
  const adverse = await db.query<{ instrument: string; color: string; rate: number }>(`
    SELECT instrument, color, (count(*) FILTER (WHERE markout_bps < 0))::float8 / count(*) AS rate
    FROM markouts WHERE run_id = $1 AND horizon_ms = 5000 GROUP BY 1, 2`, [ns.runId]);
  for (const r of adverse.rows) {
    const m = metrics.match(new RegExp(`^markout_adverse_fill_rate\\{color="${r.color}",symbol="${r.instrument}"\\} (\\S+)$`, 'm'));
    assert.ok(m && Math.abs(Number(m[1]) - r.rate) < 1e-12, `${r.instrument} ${r.color}: adverse fill rate ${m?.[1]} vs SQL ${r.rate}`);
  }
  const delta = await db.query<{ instrument: string; horizon_ms: number; delta: number }>(`
    SELECT instrument, horizon_ms,
           round((sum(round((markout_bps * 1e4)::numeric)) FILTER (WHERE color = 'green') / count(*) FILTER (WHERE color = 'green')
                - sum(round((markout_bps * 1e4)::numeric)) FILTER (WHERE color = 'blue') / count(*) FILTER (WHERE color = 'blue')) / 1e4, 6)::float8 AS delta
    FROM markouts WHERE run_id = $1 GROUP BY 1, 2
    HAVING count(*) FILTER (WHERE color = 'green') > 0 AND count(*) FILTER (WHERE color = 'blue') > 0`, [ns.runId]);
  assert.ok(delta.rows.length > 0, 'both colours traded');
  for (const r of delta.rows) {
    const m = metrics.match(new RegExp(`^markout_canary_delta_bps\\{horizon_ms="${r.horizon_ms}",symbol="${r.instrument}"\\} (\\S+)$`, 'm'));
    assert.ok(m && Math.abs(Number(m[1]) - r.delta) <= 1.01e-6, `${r.instrument} ${r.horizon_ms} ms: canary delta ${m?.[1]} vs SQL ${r.delta}`);
  }
  assert.match(metrics, /^markout_gate\{symbol="EUR_USD",status="(pass|breach|insufficient_sample)"\} 1$/m);
  const calib = await db.query<{ n: string; k: number | null }>('SELECT count(*) AS n, max(k_eff) AS k FROM cost_calibrations WHERE run_id = $1', [ns.runId]);
  assert.ok(Number(calib.rows[0]!.n) > 0, 'cost calibrations stored');
  assert.match(metrics, /^cost_fillrate_ewma\{symbol="EUR_USD"\} 0\.\d+/m);
  } finally {
    await db.end();
  }
});

test('replaying the day in a fresh consumer group gives byte-identical markouts and the same calibrations', { timeout: 300_000 }, async () => {
  const markouts = `${ns.prefix}markout.v1`;
  const before = await readTopic(markouts);
  const r = await sep(['run', '--run-id', `${ns.runId}-replay`, '--until-caught-up'], ns.env);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const all = await readTopic(markouts);
  assert.equal(all.length, 2 * before.length);
  const byKey = new Map<string, string[]>();
  for (const x of all.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))) byKey.set(x.key!, [...(byKey.get(x.key!) ?? []), x.value!.subarray(5).toString('base64')]);
  for (const [k, list] of byKey) assert.deepEqual(list.slice(list.length / 2), list.slice(0, list.length / 2), `${k}: the replay's markouts differ`);
  // The run is recorded in runs: completed (it caught up), its kind and the hash of the resolved configuration.
  const rdb = new pg.Client({ connectionString: urls.DATABASE_URL });
  await rdb.connect();
  try {
    const { rows } = await rdb.query<{ run_id: string; kind: string; status: string; config_hash: string; finished: boolean; written: string }>(
      `SELECT run_id, kind, status, config_hash, finished_at IS NOT NULL AS finished, summary->>'rows_written' AS written FROM runs WHERE run_id = $1`, [`${ns.runId}-replay`]);
    assert.equal(rows.length, 1);
    assert.deepEqual({ ...rows[0]!, config_hash: /^[0-9a-f]{64}$/.test(rows[0]!.config_hash), written: Number(rows[0]!.written) > 0 },
      { run_id: `${ns.runId}-replay`, kind: 'live', status: 'completed', config_hash: true, finished: true, written: true });
  } finally {
    await rdb.end();
  }
  // Compacted: the replay's last calibration per instrument is the newest record of each key; it equals the offline latest.
  const { calibrations } = await offline();
  const latest = (xs: { instrument: string; ts: number }[]) => Object.fromEntries([...xs].sort((a, b) => a.ts - b.ts).map((x) => [x.instrument, JSON.stringify(x)]));
  const calib = (await readTopic(`${ns.prefix}calib.cost.v1`)).map((m) => JSON.parse(JSON.stringify(calibrationType.fromBuffer(m.value!.subarray(5)))) as { instrument: string; ts: number });
  assert.deepEqual(latest(calib), latest(calibrations as { instrument: string; ts: number }[]));
});

test('sep calib: a snapshot of a run\'s calibration state verifies, loads into a new run and snapshots back byte for byte; a corrupt file and a run with state are refused', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sep-calib-'));
  const a = path.join(dir, 'a.json');
  const b = path.join(dir, 'b.json');
  const snap = await sep(['calib', 'snapshot', '--run-id', ns.runId, '--out', a], ns.env);
  assert.equal(snap.code, 0, `${snap.stdout}\n${snap.stderr}`);
  assert.match(snap.stdout, /10 instruments/);
  const verified = await sep(['calib', 'verify', a], ns.env);
  assert.equal(verified.code, 0, verified.stderr);
  assert.match(verified.stdout, /checksum ok/);
  const load = await sep(['calib', 'load', a, '--run-id', `${ns.runId}-seeded`], ns.env);
  assert.equal(load.code, 0, `${load.stdout}\n${load.stderr}`);
  const back = await sep(['calib', 'snapshot', '--run-id', `${ns.runId}-seeded`, '--out', b], ns.env);
  assert.equal(back.code, 0, back.stderr);
  assert.ok(readFileSync(a).equals(readFileSync(b)), 'snapshot → load → snapshot is byte-identical');

  const bytes = readFileSync(a);
  const at = bytes.indexOf('"samples"') >= 0 ? bytes.indexOf('"samples"') : 200;
  bytes[at + 12] = bytes[at + 12] === 0x31 ? 0x32 : 0x31; // one digit changed inside the payload
  writeFileSync(a, bytes);
  const corrupt = await sep(['calib', 'verify', a], ns.env);
  assert.equal(corrupt.code, 1, corrupt.stdout);
  assert.match(corrupt.stderr, /refused \((bad_checksum|invalid_structure)\)/);
  const missing = await sep(['calib', 'verify', path.join(dir, 'missing.json')], ns.env);
  assert.equal(missing.code, 2, missing.stdout);
  assert.match(missing.stderr, /missing\.json is not a file/);
  const again = await sep(['calib', 'load', b, '--run-id', ns.runId], ns.env);
  assert.equal(again.code, 2, again.stdout);
  assert.match(again.stderr, /already has calibration state/);
});
