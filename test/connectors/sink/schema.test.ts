/**
 * The TimescaleDB schema (sql/timescale, DESIGN §7) on an in-process PGlite
 * with timescaledb: migrations from empty and again as a no-op, and every
 * hypertable, continuous aggregate, policy, compression setting and view the
 * migrations promise, read back from timescaledb_information and the catalog.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadMigrations, migrate } from '../../../connectors/sink/migrate.ts';
import { openTimescale } from './pglite.ts';

const t = await openTimescale();
after(() => t.close());

/** Hypertable → time column. */
const HYPERTABLES: Record<string, string> = {
  candles: 'ts', features: 'ts', markouts: 'fill_ts', cost_calibrations: 'ts',
  ticks: 'ts', orders: 'ts', fills: 'ts', gate_decisions: 'ts', gates_blobs: 'ts', allocations: 'ts', allocation_overlays: 'ts',
};
/** Continuous aggregate → what it is built on. */
const AGGREGATES: Record<string, string> = {
  candles_1m: 'candles', candles_1h: 'candles_1m', candles_1d: 'candles_1h', markout_hourly: 'markouts', allocation_daily: 'allocations',
};
const COMPRESSED = ['ticks', 'candles', 'features', 'orders', 'fills', 'markouts', 'gate_decisions', 'allocations', 'gates_blobs'];
const VIEWS = ['eligibility_timeline', 'allocation_history', 'nav_proxy', 'nav_calmar_divergence', 'markout_by_horizon', 'markout_canary', 'cost_calibration_trend'];

interface Job { job_id: number; proc_name: string; hypertable_name: string; config: Record<string, unknown> }
const jobs = (proc: string) => t.rows<Job>('SELECT job_id, proc_name, hypertable_name, config FROM timescaledb_information.jobs WHERE proc_name = $1 ORDER BY hypertable_name', [proc]);

test('migrations apply from empty, then again as a no-op, each recorded with its checksum', async () => {
  const all = loadMigrations();
  assert.deepEqual(all.map((m) => m.version), all.map((_, i) => i + 1), 'versions 001… without gaps');
  assert.deepEqual(await migrate(t.client), all.map((m) => m.name));
  assert.deepEqual(await migrate(t.client), []);
  const recorded = await t.rows<{ version: number; name: string; checksum: string }>('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
  assert.deepEqual(recorded, all.map(({ version, name, checksum }) => ({ version, name, checksum })));
});

test('an applied migration that was edited is refused, naming the next free version', async () => {
  const edited = loadMigrations().map((m) => (m.version === 7 ? { ...m, checksum: 'edited' } : m));
  await assert.rejects(migrate(t.client, edited), (err: Error & { code?: string }) =>
    err.code === 'MIGRATION_FAILED' && /007_continuous_aggregates\.sql changed/.test(err.message) && /008_\*\.sql/.test(err.message));
});

test('hypertables: one per table, run_id defaulting to live, a primary key holding the time column', async () => {
  const dims = await t.rows<{ hypertable_name: string; column_name: string }>(
    "SELECT hypertable_name, column_name FROM timescaledb_information.dimensions WHERE hypertable_schema = 'public'");
  assert.deepEqual(Object.fromEntries(dims.map((d) => [d.hypertable_name, d.column_name])), HYPERTABLES);
  for (const [table, time] of Object.entries(HYPERTABLES)) {
    const [col] = await t.rows<{ column_default: string; is_nullable: string }>(
      "SELECT column_default, is_nullable FROM information_schema.columns WHERE table_name = $1 AND column_name = 'run_id'", [table]);
    assert.deepEqual(col, { column_default: "'live'::text", is_nullable: 'NO' }, `${table}.run_id`);
    const key = (await t.rows<{ col: string }>(
      `SELECT a.attname AS col FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
       WHERE i.indrelid = $1::regclass AND i.indisprimary`, [table])).map((r) => r.col);
    assert.ok(key.includes('run_id') && key.includes(time), `${table} primary key (${key}) holds run_id and ${time}`);
  }
});

test('continuous aggregates: candles stacked 1m → 1h → 1d, markouts hourly, allocations daily; real-time, each with a refresh policy', async () => {
  const caggs = await t.rows<{ view_name: string; materialized_only: boolean; finalized: boolean; view_definition: string }>(
    'SELECT view_name, materialized_only, finalized, view_definition FROM timescaledb_information.continuous_aggregates ORDER BY view_name');
  assert.deepEqual(caggs.map((c) => c.view_name), Object.keys(AGGREGATES).sort());
  for (const c of caggs) {
    assert.equal(c.materialized_only, false, `${c.view_name} is real-time`);
    assert.equal(c.finalized, true);
    assert.match(c.view_definition, new RegExp(`FROM ${AGGREGATES[c.view_name]}\\b`), `${c.view_name} reads ${AGGREGATES[c.view_name]}`);
  }
  const policies = await jobs('policy_refresh_continuous_aggregate');
  assert.deepEqual(policies.map((p) => [p.hypertable_name, p.config.start_offset, p.config.end_offset]), [
    ['allocation_daily', null, '1 day'],
    ['candles_1d', null, '1 day'],
    ['candles_1h', null, '01:00:00'],
    ['candles_1m', null, '00:01:00'],
    ['markout_hourly', null, '01:00:00'],
  ]);
});

test('compression: segmented by instrument (and run_id), ordered by time, with a policy on each big table', async () => {
  const settings = await t.rows<{ hypertable_name: string; attname: string; segmentby_column_index: number | null; orderby_column_index: number | null; orderby_asc: boolean | null }>(
    "SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index, orderby_asc FROM timescaledb_information.compression_settings WHERE hypertable_schema = 'public'");
  const enabled = await t.rows<{ hypertable_name: string }>("SELECT hypertable_name FROM timescaledb_information.hypertables WHERE compression_enabled AND hypertable_schema = 'public' ORDER BY 1");
  assert.deepEqual(enabled.map((h) => h.hypertable_name), [...COMPRESSED].sort());
  for (const table of COMPRESSED) {
    const mine = settings.filter((s) => s.hypertable_name === table);
    const segmentby = mine.filter((s) => s.segmentby_column_index !== null).map((s) => s.attname);
    assert.deepEqual(segmentby.includes('run_id'), true, `${table} segments by run_id`);
    if (table !== 'gates_blobs') assert.equal(segmentby[0], 'instrument', `${table} segments by instrument first`);
    const time = HYPERTABLES[table]!;
    assert.ok(mine.some((s) => s.attname === time && s.orderby_column_index !== null && s.orderby_asc === false), `${table} ordered by ${time} DESC`);
  }
  const policies = await jobs('policy_compression');
  const after = Object.fromEntries(policies.map((p) => [p.hypertable_name, p.config.compress_after]));
  assert.deepEqual(Object.keys(after).sort(), [...COMPRESSED, 'candles_1m'].sort());
  assert.equal(after.ticks, '2 days');
  assert.equal(after.candles_1m, '30 days');
  for (const table of COMPRESSED.filter((x) => x !== 'ticks')) assert.equal(after[table], '7 days', table);
  const caggs = await t.rows<{ view_name: string }>('SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE compression_enabled');
  assert.deepEqual(caggs.map((c) => c.view_name), ['candles_1m'], 'the one aggregate as large as its source is compressed');
});

test('ticks retention: 30 days by default; set_ticks_retention replaces it, NULL removes it, under a day is refused', async () => {
  const retention = async () => (await jobs('policy_retention')).map((j) => [j.hypertable_name, j.config.drop_after]);
  assert.deepEqual(await retention(), [['ticks', '30 days']]);
  await t.rows("SELECT set_ticks_retention('14 days')");
  assert.deepEqual(await retention(), [['ticks', '14 days']]);
  await t.rows('SELECT set_ticks_retention(NULL)');
  assert.deepEqual(await retention(), []);
  await assert.rejects(t.rows("SELECT set_ticks_retention('2 hours')"), /shorter than one chunk/);
  await t.rows("SELECT set_ticks_retention('30 days')");
  assert.deepEqual(await retention(), [['ticks', '30 days']]);
});

test('ticks retention from the setting sep.ticks_retention at first migration: an interval, off, or a refusal naming the fix', async () => {
  const fresh = await openTimescale();
  try {
    await fresh.client.query("SET sep.ticks_retention = 'a fortnight'");
    await assert.rejects(migrate(fresh.client), (err: Error) => /008_compression_retention\.sql failed: sep\.ticks_retention = 'a fortnight' is not an interval/.test(err.message));
    await fresh.client.query("SET sep.ticks_retention = '14 days'");
    assert.deepEqual(await migrate(fresh.client), loadMigrations().filter((m) => m.version >= 8).map((m) => m.name), 'resumes at 008');
    assert.deepEqual((await fresh.rows<{ d: string }>("SELECT config->>'drop_after' AS d FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'")).map((r) => r.d), ['14 days']);
  } finally {
    await fresh.close();
  }
  const off = await openTimescale();
  try {
    await off.client.query("SET sep.ticks_retention = 'off'");
    await migrate(off.client);
    assert.deepEqual(await off.rows("SELECT 1 FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"), []);
  } finally {
    await off.close();
  }
});

test('views for the runbooks exist and answer on an empty database', async () => {
  const views = await t.rows<{ table_name: string }>("SELECT table_name FROM information_schema.views WHERE table_schema = 'public' ORDER BY 1");
  for (const v of VIEWS) {
    assert.ok(views.some((r) => r.table_name === v), `view ${v}`);
    assert.deepEqual(await t.rows(`SELECT * FROM ${v}`), [], `${v} is empty without data`);
  }
});

test('runs: lifecycle status, canary pairing and elapsed time; bad values refused', async () => {
  await t.rows(`INSERT INTO runs (run_id, kind, range_from, range_to, canary_id, color, started_at)
                VALUES ('canary-1-green', 'canary', '2026-11-13', '2026-11-14', 'canary-1', 'green', '2026-11-22 10:00Z')`);
  const [run] = await t.rows<{ status: string; elapsed: string | null }>("SELECT status, elapsed FROM runs WHERE run_id = 'canary-1-green'");
  assert.deepEqual(run, { status: 'running', elapsed: null });
  await t.rows("UPDATE runs SET status = 'completed', finished_at = '2026-11-22 10:02:30Z' WHERE run_id = 'canary-1-green'");
  assert.equal((await t.rows<{ elapsed: string }>("SELECT elapsed::text AS elapsed FROM runs WHERE run_id = 'canary-1-green'"))[0]!.elapsed, '00:02:30');
  await assert.rejects(t.rows("UPDATE runs SET status = 'done' WHERE run_id = 'canary-1-green'"), /runs_status_check/);
  await assert.rejects(t.rows("UPDATE runs SET color = 'red' WHERE run_id = 'canary-1-green'"), /runs_color_check/);
  await assert.rejects(t.rows("UPDATE runs SET range_to = '2026-11-12' WHERE run_id = 'canary-1-green'"), /runs_range_check/);
});
