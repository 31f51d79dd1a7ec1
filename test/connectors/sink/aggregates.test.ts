/**
 * The continuous aggregates over the bundled recorded day (candles, fills and
 * orders from data/recorded/2026-11-13; features, gates, allocations and
 * markouts synthesized from them, test/connectors/sink/fixtures.ts), refreshed
 * with CALL refresh_aggregates(), against the same aggregation computed
 * directly from the raw rows.
 *
 * Exact equality everywhere except the allocation averages: counts, integer
 * and fixed-point sums, first/last, max/min are exact, and so are the volume
 * sums (the day's volumes are whole numbers, so every double sum is exact in
 * any order). avg(weight) adds doubles in storage order, which the aggregate
 * and the direct query need not share: compared within 1e-12 relative.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { migrate } from '../../../connectors/sink/migrate.ts';
import { TABLES } from '../../../connectors/sink/tables.ts';
import { TOPICS } from '../../../streams/runtime/topics.ts';
import { addMarkout, aggregateRows, deltaBps, emptyAggregate, type InstrumentAggregate } from '../../../streams/markout/aggregate.ts';
import type { Color } from '../../../streams/model/records.ts';
import { openTimescale } from './pglite.ts';
import { DAY_DIR, loadDay, writeRecords } from './fixtures.ts';

const t = await openTimescale();
await migrate(t.client);
const counts = await loadDay(t);
await t.client.query('CALL refresh_aggregates()');
after(() => t.close());

const QUERIES_DIR = path.resolve(import.meta.dirname, '..', '..', '..', 'docs', 'queries');
const manifest = JSON.parse(readFileSync(path.join(DAY_DIR, 'manifest.json'), 'utf8')) as { files: Record<string, { records: number }> };

/** Rows of `sql` as canonical JSON lines, sorted, for exact comparison. */
async function lines(sql: string, values?: unknown[]): Promise<string[]> {
  return (await t.rows(sql, values)).map((r) => JSON.stringify(r)).sort();
}

const OHLCV = 'first(open, ts) AS open, max(high) AS high, min(low) AS low, last(close, ts) AS close, sum(volume) AS volume, count(*) AS bars';

test('the bundled day is loaded through the sink mappings', () => {
  assert.equal(counts.candles, manifest.files['candles.ndjson']!.records);
  assert.equal(counts.fills, manifest.files['fills.ndjson']!.records);
  assert.equal(counts.orders, manifest.files['orders.ndjson']!.records);
  assert.ok(counts.markouts > 5 * counts.fills - 100, `markouts ${counts.markouts}`);
  assert.ok(counts.decisions > 250 && counts.allocations > counts.decisions, `allocations ${counts.allocations} of ${counts.decisions} decisions`);
});

test('candles_1m holds each M1 bar as it is', async () => {
  assert.deepEqual(
    await lines('SELECT run_id, instrument, period_end, open, high, low, close, volume, bars FROM candles_1m'),
    await lines("SELECT run_id, instrument, ts AS period_end, open, high, low, close, volume, 1 AS bars FROM candles WHERE granularity = 'M1'"));
  const [row] = await t.rows<{ n: string; aligned: boolean }>("SELECT count(*) AS n, bool_and(bucket = period_end AND period_start = period_end - interval '1 minute') AS aligned FROM candles_1m");
  assert.deepEqual(row, { n: counts.candles, aligned: true });
});

test('candles_1h equals the hourly OHLCV of the raw bars (bars closing in (H, H+1h])', async () => {
  const agg = await lines('SELECT run_id, instrument, period_start, period_end, open, high, low, close, volume, bars FROM candles_1h');
  const direct = await lines(`
    SELECT run_id, instrument, date_trunc('hour', ts - interval '1 minute') AS period_start,
           date_trunc('hour', ts - interval '1 minute') + interval '1 hour' AS period_end, ${OHLCV}
    FROM candles WHERE granularity = 'M1' GROUP BY 1, 2, 3`);
  assert.equal(agg.length, direct.length);
  assert.deepEqual(agg, direct);
  // The bar closing at 01:00 belongs to 00:00–01:00, not to the next hour.
  const [first] = await t.rows<{ bars: number }>("SELECT bars FROM candles_1h WHERE instrument = 'EUR_USD' AND period_start = '2026-11-13T00:00Z'");
  assert.equal(first!.bars, 60);
});

test('candles_1d (over candles_1h over candles_1m) equals the daily OHLCV of the raw bars', async () => {
  const agg = await lines('SELECT run_id, instrument, period_start, period_end, open, high, low, close, volume, bars FROM candles_1d');
  const direct = await lines(`
    SELECT run_id, instrument, date_trunc('day', ts - interval '1 minute') AS period_start,
           date_trunc('day', ts - interval '1 minute') + interval '1 day' AS period_end, ${OHLCV}
    FROM candles WHERE granularity = 'M1' GROUP BY 1, 2, 3`);
  assert.deepEqual(agg, direct);
  // Friday and the Sunday re-open, per instrument (Saturday is closed).
  assert.deepEqual((await t.rows<{ d: string }>("SELECT DISTINCT to_char(period_start, 'Dy') AS d FROM candles_1d ORDER BY 1")).map((r) => r.d), ['Fri', 'Sun']);
});

test('markout_hourly equals the raw markouts per hour, instrument, horizon and colour', async () => {
  const agg = await lines('SELECT run_id, instrument, horizon_ms, color, bucket, markouts, sum_bps_int, avg_bps, up, down, min_bps, max_bps FROM markout_hourly');
  const direct = await lines(`
    SELECT run_id, instrument, horizon_ms, color, date_trunc('hour', fill_ts) AS bucket, count(*) AS markouts,
           sum(bps_to_int(markout_bps)) AS sum_bps_int,
           round(round(sum(bps_to_int(markout_bps)) * 100 / count(*)) / 1000000, 6) AS avg_bps,
           count(*) FILTER (WHERE markout_bps > 0) AS up, count(*) FILTER (WHERE markout_bps < 0) AS down,
           min(markout_bps) AS min_bps, max(markout_bps) AS max_bps
    FROM markouts GROUP BY 1, 2, 3, 4, 5`);
  assert.deepEqual(agg, direct);
});

/** streams/markout/aggregate.ts over every stored markout of the run. */
async function streamAggregates(): Promise<Map<string, InstrumentAggregate>> {
  const aggs = new Map<string, InstrumentAggregate>();
  const rows = await t.rows<{ instrument: string; horizon_ms: number; color: Color; markout_bps: number }>(
    "SELECT instrument, horizon_ms, color, markout_bps FROM markouts WHERE run_id = 'live'");
  for (const r of rows) {
    const agg = aggs.get(r.instrument) ?? aggs.set(r.instrument, emptyAggregate()).get(r.instrument)!;
    addMarkout(agg, r);
  }
  return aggs;
}

test('markout_by_horizon gives the stream aggregates digit for digit (streams/markout/aggregate.ts)', async () => {
  const expected = aggregateRows(await streamAggregates());
  const got = await t.rows<{ instrument: string; horizon_ms: number; color: Color; markouts: string; sum_bps_int: string; avg_bps: string; up: string; down: string }>(
    "SELECT instrument, horizon_ms, color, markouts, sum_bps_int, avg_bps, up, down FROM markout_by_horizon WHERE run_id = 'live'");
  const byKey = new Map(got.map((r) => [`${r.instrument}/${r.horizon_ms}/${r.color}`, r]));
  assert.equal(got.length, expected.length);
  for (const e of expected) {
    const r = byKey.get(`${e.instrument}/${e.horizon_ms}/${e.color}`);
    assert.ok(r, `${e.instrument} ${e.horizon_ms} ${e.color}`);
    assert.deepEqual(
      { count: Number(r.markouts), sum_bps_int: r.sum_bps_int, avg_bps: Number(r.avg_bps), up: Number(r.up), down: Number(r.down) },
      { count: e.count, sum_bps_int: e.sum_bps_int, avg_bps: e.avg_bps, up: e.up, down: e.down });
  }
});

test('markout_canary: green − blue exactly as the stream computes it (deltaBps)', async () => {
  const aggs = await streamAggregates();
  const got = await t.rows<{ instrument: string; horizon_ms: number; delta_bps: string | null; samples_blue: string; samples_green: string }>(
    "SELECT instrument, horizon_ms, delta_bps, samples_blue, samples_green FROM markout_canary WHERE run_id = 'live'");
  assert.ok(got.length >= 40);
  for (const r of got) {
    const cells = aggs.get(r.instrument)!.cells[String(r.horizon_ms)]!;
    assert.equal(r.delta_bps === null ? null : Number(r.delta_bps), deltaBps(cells.green, cells.blue), `${r.instrument} ${r.horizon_ms}`);
    assert.equal(Number(r.samples_blue), cells.blue?.count ?? 0);
  }
});

test('allocation_daily equals the raw allocation rows per day, portfolio and instrument (averages within 1e-12)', async () => {
  const cols = 'run_id, portfolio, instrument, bucket, decisions, selected, min_weight, max_weight, last_weight, first_seq, last_seq, stale_decisions, kill_switch_decisions';
  const agg = await t.rows<Record<string, unknown> & { avg_weight: number; sum_weight: number }>(`SELECT ${cols}, avg_weight, sum_weight FROM allocation_daily ORDER BY portfolio, instrument, bucket`);
  const direct = await t.rows<Record<string, unknown> & { avg_weight: number; sum_weight: number }>(`
    SELECT run_id, portfolio, instrument, date_trunc('day', ts) AS bucket, count(*) AS decisions, count(*) FILTER (WHERE weight > 0) AS selected,
           min(weight) AS min_weight, max(weight) AS max_weight, (array_agg(weight ORDER BY seq DESC))[1] AS last_weight,
           min(seq) AS first_seq, max(seq) AS last_seq, count(*) FILTER (WHERE stale) AS stale_decisions,
           count(*) FILTER (WHERE kill_switch) AS kill_switch_decisions, avg(weight) AS avg_weight, sum(weight) AS sum_weight
    FROM allocations GROUP BY 1, 2, 3, 4 ORDER BY portfolio, instrument, bucket`);
  assert.equal(agg.length, direct.length);
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));
  for (let i = 0; i < agg.length; i++) {
    const { avg_weight: aa, sum_weight: as, ...a } = agg[i]!;
    const { avg_weight: da, sum_weight: ds, ...d } = direct[i]!;
    assert.deepEqual(a, d);
    assert.ok(close(aa, da) && close(as, ds), `${JSON.stringify(a)}: avg ${aa} vs ${da}, sum ${as} vs ${ds}`);
  }
  const kill = await t.rows<{ n: string }>("SELECT sum(kill_switch_decisions) AS n FROM allocation_daily WHERE instrument <> ''");
  assert.ok(Number(kill[0]!.n) > 0, 'the synthesized kill-switch hour shows');
});

test('real-time: rows after the watermark show at every level before any refresh; an older range needs refresh_aggregates', async () => {
  const latest = { instrument: 'EUR_USD', granularity: 'M1', ts: Date.UTC(2026, 10, 16, 0, 1), open: 1.1, high: 1.2, low: 1.0, close: 1.15, volume: 1000, complete: true };
  await writeRecords(t, TABLES[TOPICS.candles.name]!, [latest]);
  for (const v of ['candles_1m', 'candles_1h', 'candles_1d']) {
    const rows = await t.rows<{ open: number }>(`SELECT open FROM ${v} WHERE run_id = 'live' AND instrument = 'EUR_USD' AND period_start = '2026-11-16T00:00Z'`);
    assert.deepEqual(rows, [{ open: 1.1 }], v);
  }
  // A replay writing an already-materialized day: invisible until refreshed (docs/timescale.md).
  const replayed = { ...latest, ts: Date.UTC(2026, 10, 13, 12, 1) };
  await writeRecords(t, TABLES[TOPICS.candles.name]!, [replayed], 'replay-1');
  const seen = async () => (await t.rows<{ v: string }>(
    "SELECT 'candles_1h' AS v FROM candles_1h WHERE run_id = 'replay-1' UNION ALL SELECT 'candles_1d' FROM candles_1d WHERE run_id = 'replay-1'")).map((r) => r.v);
  assert.deepEqual(await seen(), []);
  await t.client.query("CALL refresh_aggregates('2026-11-13T12:00Z', '2026-11-13T12:05Z')");
  assert.deepEqual(await seen(), ['candles_1h', 'candles_1d']);
});

test('policies run on demand: the compression policy compresses old chunks, and data, aggregates and upserts are unchanged', async () => {
  const before = await lines("SELECT instrument, ts, open, close FROM candles WHERE run_id = 'live'");
  const hourly = await lines("SELECT * FROM candles_1h WHERE run_id = 'live'");
  const [{ job_id: job }] = await t.rows<{ job_id: number }>("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression' AND hypertable_name = 'candles'") as [{ job_id: number }];
  await t.client.query(`CALL run_job(${job})`);
  const compressed = await t.rows("SELECT chunk_name FROM timescaledb_information.chunks WHERE hypertable_name = 'candles' AND is_compressed");
  assert.ok(compressed.length >= 1, 'the recorded day is older than compress_after (7 days)');
  assert.deepEqual(await lines("SELECT instrument, ts, open, close FROM candles WHERE run_id = 'live'"), before);
  // A redelivered bar lands in the compressed chunk without a duplicate.
  const bar = (await t.rows<Record<string, unknown>>("SELECT instrument, granularity, extract(epoch FROM ts) * 1000 AS ts, open, high, low, close, volume, complete FROM candles WHERE run_id = 'live' ORDER BY ts LIMIT 1"))[0]!;
  await writeRecords(t, TABLES[TOPICS.candles.name]!, [{ ...bar, ts: Number(bar.ts) }]);
  assert.deepEqual(await lines("SELECT instrument, ts, open, close FROM candles WHERE run_id = 'live'"), before);
  await t.client.query('CALL refresh_aggregates()');
  assert.deepEqual(await lines("SELECT * FROM candles_1h WHERE run_id = 'live'"), hourly);
});

test('the retention policy drops whole tick chunks older than its interval when it runs', async () => {
  const ticks = [0, 1, 2].map((d) => ({ instrument: 'EUR_USD', ts: Date.UTC(2026, 10, 13 + d, 12), bid: 1.08, ask: 1.0801, bid_size: null, ask_size: null }));
  await writeRecords(t, TABLES[TOPICS.ticks.name]!, ticks);
  const job = Number((await t.rows<{ j: number }>("SELECT set_ticks_retention('1 day') AS j"))[0]!.j);
  await t.client.query(`CALL run_job(${job})`);
  assert.deepEqual(await t.rows('SELECT count(*)::int AS n FROM ticks'), [{ n: 0 }], 'all three days are over a day old');
  await t.rows("SELECT set_ticks_retention('30 days')");
});

test('every docs/queries/*.sql runs against the loaded day and answers', async () => {
  const files = readdirSync(QUERIES_DIR).filter((f) => f.endsWith('.sql')).sort();
  assert.ok(files.length >= 5);
  for (const f of files) {
    const rows = await t.rows(readFileSync(path.join(QUERIES_DIR, f), 'utf8'));
    assert.ok(rows.length > 0, `${f} returns rows`);
  }
});
