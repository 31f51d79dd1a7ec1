/**
 * The TimescaleDB sink under faults, on the real broker and a private
 * embedded TimescaleDB (its own port and data dir, so stopping it does not
 * touch the shared stack). The bundled day's 210 972 ticks are sunk three
 * times under three run ids:
 *
 * - A: uninterrupted;
 * - B: the database is stopped while the sink writes, and started again;
 *   the sink pauses, reconnects and resumes;
 * - C: the sink is SIGKILLed while it writes and started again.
 *
 * The three runs' rows must be identical and complete (one per distinct
 * upsert key of the file), and each run's stored offsets must be the topic's
 * end offsets. B's sink must report every row written exactly once (rows of
 * a rolled-back transaction are not counted).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import pg from 'pg';
import { createNamespace, ROOT, sep } from './helpers.ts';
import { startPrivateTimescale, type PrivateTimescale } from '../../ops/stack/timescale.ts';

const TICKS = path.join(ROOT, 'data/recorded/2026-11-13/ticks.ndjson.gz');
const ns = createNamespace('sinkfault');
const topic = `${ns.prefix}md.ticks.v1`;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sep-sinkfault-db-'));
let port = 0;
let url = '';
let env: NodeJS.ProcessEnv = {};
let db: PrivateTimescale | undefined;

/** (Re)starts the private database on its port and data dir. */
async function startDatabase(): Promise<void> {
  db = await startPrivateTimescale(dataDir, port || undefined);
  port = db.port;
  url = db.url;
}

async function stopDatabase(): Promise<void> {
  const d = db;
  db = undefined;
  await d?.stop();
}

/** A `sep sink` child whose output lines are collected; `waitFor` resolves at the first line matching. */
function sinkProcess(runId: string, untilCaughtUp: boolean) {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/sep.mjs'), 'sink', '--run-id', runId, '--topics', topic, ...(untilCaughtUp ? ['--until-caught-up'] : [])],
    { cwd: ROOT, env: { ...process.env, CI: '1', ...env } });
  let out = '';
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  const onData = (d: Buffer) => {
    out += d;
    for (const w of [...waiters]) {
      const m = out.match(w.re);
      if (m) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m[0]); }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    exit,
    output: () => out,
    waitFor(re: RegExp, timeoutMs = 120_000): Promise<string> {
      const m = out.match(re);
      if (m) return Promise.resolve(m[0]);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms:\n${out}`)), timeoutMs);
        waiters.push({ re, resolve: (line) => { clearTimeout(timer); resolve(line); } });
      });
    },
  };
}

/** Distinct (instrument, ts) keys of the file: the ticks table's upsert key within a run. */
async function distinctTickKeys(): Promise<number> {
  const keys = new Set<string>();
  for await (const line of createInterface({ input: createReadStream(TICKS).pipe(createGunzip()), crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    const t = JSON.parse(line) as { instrument: string; ts: string };
    keys.add(`${t.instrument}|${Date.parse(t.ts)}`);
  }
  return keys.size;
}

before(async () => {
  await startDatabase();
  env = { ...ns.env, DATABASE_URL: url };
  const imported = await sep(['import', TICKS], env);
  assert.equal(imported.code, 0, imported.stdout + imported.stderr);
});

after(async () => {
  await stopDatabase();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(`${dataDir}.lock`, { force: true });
});

test('the sink rides out a database stop and a SIGKILL of itself: the rows equal an uninterrupted run, none lost, none twice', { timeout: 600_000 }, async () => {
  const expected = await distinctTickKeys();

  // A: uninterrupted.
  const a = sinkProcess(`${ns.runId}-a`, true);
  assert.equal(await a.exit, 0, a.output());

  // B: the database goes away while the sink writes, for a few seconds, then comes back.
  const b = sinkProcess(`${ns.runId}-b`, true);
  await b.waitFor(/sink: [1-9]\d* rows written/);
  await stopDatabase();
  await b.waitFor(/the database is unavailable/, 60_000);
  await new Promise((r) => setTimeout(r, 3000));
  await startDatabase();
  await b.waitFor(/the database is back after/, 60_000);
  assert.equal(await b.exit, 0, b.output());
  // Counted once per committed row: the rolled-back transaction's rows were written again, not twice.
  assert.match(b.output(), new RegExp(`sink: ${expected} rows written in [\\d.]+ s; 1 database outage\\(s\\) ridden out`), b.output());

  // C: the sink is killed while it writes, then started again.
  const c1 = sinkProcess(`${ns.runId}-c`, true);
  await c1.waitFor(/sink: [1-9]\d* rows written/);
  c1.child.kill('SIGKILL');
  await c1.exit;
  const c2 = sinkProcess(`${ns.runId}-c`, true);
  assert.equal(await c2.exit, 0, c2.output());

  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const counts = await client.query<{ run_id: string; n: string }>(
      'SELECT run_id, count(*) AS n FROM ticks WHERE run_id LIKE $1 GROUP BY run_id ORDER BY run_id', [`${ns.runId}-%`]);
    assert.deepEqual(counts.rows.map((r) => [r.run_id.slice(-1), Number(r.n)]), [['a', expected], ['b', expected], ['c', expected]]);
    for (const other of ['b', 'c']) {
      const diff = await client.query<{ n: string }>(`
        SELECT count(*) AS n FROM (
          (SELECT instrument, ts, bid, ask, bid_size, ask_size FROM ticks WHERE run_id = $1
           EXCEPT ALL SELECT instrument, ts, bid, ask, bid_size, ask_size FROM ticks WHERE run_id = $2)
          UNION ALL
          (SELECT instrument, ts, bid, ask, bid_size, ask_size FROM ticks WHERE run_id = $2
           EXCEPT ALL SELECT instrument, ts, bid, ask, bid_size, ask_size FROM ticks WHERE run_id = $1)) d`, [`${ns.runId}-a`, `${ns.runId}-${other}`]);
      assert.equal(Number(diff.rows[0]!.n), 0, `run ${other} differs from the uninterrupted run`);
    }
    // Every run's stored offsets are the topic's end: the same per partition for all three.
    const offsets = await client.query<{ consumer_group: string; partition: number; next_offset: string }>(
      'SELECT consumer_group, partition, next_offset FROM sink_offsets WHERE consumer_group LIKE $1 ORDER BY partition, consumer_group', [`%${ns.runId}-%`]);
    const byPartition = new Map<number, string[]>();
    for (const r of offsets.rows) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r.next_offset]);
    assert.ok(byPartition.size > 0);
    for (const [p, list] of byPartition) assert.deepEqual(list, [list[0], list[0], list[0]], `partition ${p}: ${list}`);
  } finally {
    await client.end();
  }
});
