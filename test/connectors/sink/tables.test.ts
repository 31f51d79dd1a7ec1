/**
 * connectors/sink/tables.ts against the migrated schema: every topic the sink
 * may write has a mapping whose columns exist in its table; each mapping's
 * rows, written with upsertSql twice (a redelivery), land once; a changed
 * redelivery rewrites the row in place.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from '../../../connectors/sink/migrate.ts';
import { NO_INSTRUMENT, TABLES, rowsOf, upsertSql, type Allocation, type TableMapping } from '../../../connectors/sink/tables.ts';
import { TOPICS } from '../../../streams/runtime/topics.ts';
import { UsageError } from '../../../streams/runtime/errors.ts';
import { buildGatesBlob } from '../../../streams/gates/blob.ts';
import type { GateDecision } from '../../../streams/gates/evaluate.ts';
import type { Feature } from '../../../streams/features/features.ts';
import type { AllocationOverlay } from '../../../streams/allocation/overlay.ts';
import type { Markout } from '../../../streams/markout/markout.ts';
import type { CostCalibration } from '../../../streams/calibration/calibration.ts';
import { openTimescale } from './pglite.ts';
import { readRecords, writeRecords } from './fixtures.ts';

const t = await openTimescale();
await migrate(t.client);
after(() => t.close());

const RUN = 'replay-tables-test';
const T0 = Date.UTC(2026, 10, 13, 14, 0);

const decision = (instrument: string, eligible: boolean, over: Partial<GateDecision> = {}): GateDecision => ({
  instrument, ts: T0, eligible, raw_pass: eligible, trades: 14, calmar: eligible ? 0.42 : 0.05, buf: 0.1, repetition: 3, hazard: 0.21,
  span_ok: instrument !== 'NZD_USD', session_open: true, cooldown_until: eligible ? null : T0 + 7_200_000, consecutive_misses: eligible ? 0 : 4,
  reasons: eligible ? [] : ['calmar', 'cooldown'], ...over,
});
const feature: Feature = {
  instrument: 'EUR_USD', granularity: 'M1', ts: T0, bar_index: 839, close: 1.08412, log_return: -1.8e-5, ewma_vol: 7.1e-5, true_range: 0.00011,
  atr14: 0.000104, volume_usd: 9.1e6, spread_bps: 0.92, entropy: 0.61, coherence: 0.39, rupture: 0.47, stability: 0.53, hazard: 0.44, repetition: 2, signal: -1,
};
const markout: Markout = { cid: 'b-EUR_USD-000001', instrument: 'EUR_USD', fill_ts: T0 + 1234, horizon_ms: 5000, side: 'sell', price: 1.08411, mid: 1.08405, mid_ts: T0 + 6100, markout_bps: 0.5534494, color: 'blue' };
const calibration: CostCalibration = { instrument: 'EUR_USD', ts: T0 + 1234, spread_bps_ewma: 0.93, volume_usd_ewma: 8.7e6, slippage_bps_ewma: 0.61, fill_rate_ewma: 0.74, turnover_usd_ewma: 5.2e5, k_eff: 0.0021, cap_eff_bps: 2.4, samples: 57 };
const allocations: Allocation[] = [
  { portfolio: 'main', seq: 41, ts: T0, interval_sec: 60, weights: [{ instrument: 'USD_JPY', weight: 0.118, reasons: ['capped'] }, { instrument: 'EUR_USD', weight: 0.103, reasons: [] }],
    total: 0.221, stale: false, stale_age_sec: null, kill_switch: false, gates_ts: T0 - 20_000, config_hash: 'c0ffee' },
  { portfolio: 'main', seq: 42, ts: T0 + 60_000, interval_sec: 60, weights: [], total: 0, stale: true, stale_age_sec: 960, kill_switch: true, gates_ts: null, config_hash: 'c0ffee' },
];

const overlay: AllocationOverlay = {
  ts: T0, from: T0 - 90 * 86_400_000, timeframe: '1h', config_hash: 'c0ffee',
  budget: { fx_usd: { max_equity_risk: 0.06, scale: 0.8 }, other: { max_equity_risk: 0.04, scale: 1 } },
  instruments: [
    { instrument: 'EUR_USD', cluster: 'fx_usd', hrp_weight: 0.6, scale: 0.8, cvar: -0.0021, cvar_scope: 'symbol', max_weight: 2.38, dropped: null },
    { instrument: 'NZD_USD', cluster: 'other', hrp_weight: null, scale: 1, cvar: null, cvar_scope: 'none', max_weight: null, dropped: 'sparse' },
  ],
};

/** A few records per topic, as the sink decodes them (epoch-ms timestamps). */
async function samples(): Promise<Record<string, unknown[]>> {
  return {
    [TOPICS.candles.name]: await readRecords('candles.ndjson', 5),
    [TOPICS.ticks.name]: await readRecords('ticks.ndjson.gz', 50),
    [TOPICS.orders.name]: await readRecords('orders.ndjson', 5),
    [TOPICS.fills.name]: await readRecords('fills.ndjson', 5),
    [TOPICS.features.name]: [feature, { ...feature, instrument: 'USD_JPY', close: 151.332, log_return: null, spread_bps: null, repetition: null, signal: 0 }],
    [TOPICS.markouts.name]: [markout, { ...markout, horizon_ms: 60_000, markout_bps: -3.25, color: 'green' }],
    [TOPICS.costCalibration.name]: [calibration, { ...calibration, ts: calibration.ts + 5000, k_eff: null, cap_eff_bps: null, samples: 58 }],
    [TOPICS.gates.name]: [decision('EUR_USD', true), decision('NZD_USD', false)],
    [TOPICS.gatesBlob.name]: [buildGatesBlob(T0, [decision('EUR_USD', true), decision('USD_JPY', true), decision('NZD_USD', false)]), buildGatesBlob(T0 + 300_000, [])],
    [TOPICS.allocations.name]: allocations,
    [TOPICS.allocationOverlay.name]: [overlay],
  };
}

const countRows = async (m: TableMapping) => Number((await t.rows<{ n: string }>(`SELECT count(*) AS n FROM ${m.table} WHERE run_id = $1`, [RUN]))[0]!.n);

test('every topic the sink stores has a mapping; columns and conflict keys exist in the table, keys hold run_id and the time column', async () => {
  const internal = new Set<string>([TOPICS.gatesPartial.name, TOPICS.deadLetters.name]);
  const stored = Object.values(TOPICS).map((s) => s.name).filter((n) => !internal.has(n));
  assert.deepEqual(Object.keys(TABLES).sort(), stored.sort());
  for (const m of Object.values(TABLES)) {
    const cols = (await t.rows<{ column_name: string }>('SELECT column_name FROM information_schema.columns WHERE table_name = $1', [m.table])).map((c) => c.column_name);
    for (const c of m.columns) assert.ok(cols.includes(c), `${m.table}.${c}`);
    const [dim] = await t.rows<{ column_name: string }>('SELECT column_name FROM timescaledb_information.dimensions WHERE hypertable_name = $1', [m.table]);
    assert.ok(m.conflictKey.includes('run_id') && m.conflictKey.includes(dim!.column_name), `${m.topic} key ${m.conflictKey}`);
    assert.ok(m.conflictKey.every((k) => m.columns.includes(k)));
  }
});

test('each mapping: rows written twice with upsertSql land once, and read back as written', async () => {
  const byTopic = await samples();
  for (const m of Object.values(TABLES)) {
    const records = byTopic[m.topic];
    assert.ok(records && records.length > 0, `samples for ${m.topic}`);
    const rows = records.flatMap((r) => rowsOf(m, r, RUN));
    // Keyed like the sink's batch: one statement must not touch a row twice.
    const keyed = new Map(rows.map((row) => [m.conflictKey.map((k) => String(row[m.columns.indexOf(k)])).join('\u0000'), row]));
    await writeRecords(t, m, records, RUN);
    const once = await countRows(m);
    assert.equal(once, keyed.size, `${m.table}: one row per key`);
    await writeRecords(t, m, records, RUN);
    assert.equal(await countRows(m), once, `${m.table}: a redelivery adds nothing`);
    const back = await t.rows<Record<string, unknown>>(
      `SELECT ${m.columns.map((c) => `${c}::text AS ${c}`).join(', ')} FROM ${m.table} WHERE run_id = $1`, [RUN]);
    const expected = [...keyed.values()].map((row) => canonical(normalise(m, row)));
    assert.deepEqual(back.map((r) => canonical(normalise(m, m.columns.map((c) => r[c])))).sort(), expected.sort(), m.table);
  }
});

/** JSON with object keys sorted (jsonb does not keep key order). */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x)
    ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
    : x));
}

/** Compares what was sent with what PostgreSQL stored, both as text-ish values. */
function normalise(m: TableMapping, row: unknown[]): unknown[] {
  return row.map((v, i) => {
    const col = m.columns[i]!;
    if (v === null || v === undefined) return null;
    if (col === 'payload') return JSON.parse(String(v));
    if (Array.isArray(v)) return `{${v.join(',')}}`;
    if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v)) return Date.parse(v);
    if (typeof v === 'string' && /^\d{4}-\d\d-\d\d \d\d:/.test(v)) return Date.parse(v.replace(' ', 'T').replace(/\+00$/, 'Z'));
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && v !== '' && !Number.isNaN(Number(v)) && !['instrument', 'cid', 'portfolio', 'config_hash'].includes(col)) return Number(v);
    return v;
  });
}

test('a changed redelivery rewrites its row in place (the last write wins)', async () => {
  const m = TABLES[TOPICS.gates.name]!;
  await writeRecords(t, m, [decision('GBP_USD', true)], RUN);
  await writeRecords(t, m, [decision('GBP_USD', false)], RUN);
  const rows = await t.rows<{ eligible: boolean; reasons: string[] }>('SELECT eligible, reasons FROM gate_decisions WHERE run_id = $1 AND instrument = $2', [RUN, 'GBP_USD']);
  assert.deepEqual(rows, [{ eligible: false, reasons: ['calmar', 'cooldown'] }]);
});

test('gates blob row: the record as jsonb plus eligible, cooldowns and span integrity for the runbook checks', async () => {
  const [row] = await t.rows<Record<string, unknown>>('SELECT instruments, eligible, eligible_count, cooldowns, span_ok, payload FROM gates_blobs WHERE run_id = $1 AND ts = $2', [RUN, new Date(T0).toISOString()]);
  assert.deepEqual(row, {
    instruments: 3, eligible: ['EUR_USD', 'USD_JPY'], eligible_count: 2, cooldowns: ['NZD_USD'], span_ok: false,
    payload: buildGatesBlob(T0, [decision('EUR_USD', true), decision('USD_JPY', true), decision('NZD_USD', false)]),
  });
});

test('alloc.weights.v1 is long form: one row per weight, a decision without weights as one NO_INSTRUMENT row; row() refuses', async () => {
  const m = TABLES[TOPICS.allocations.name]!;
  assert.throws(() => m.row(allocations[0], RUN), (err: Error) => err instanceof UsageError && /rowsOf/.test(err.message));
  assert.equal(rowsOf(m, allocations[0], RUN).length, 2);
  const rows = await t.rows<Record<string, unknown>>('SELECT seq, instrument, weight, reasons, total, stale, kill_switch, gates_ts FROM allocations WHERE run_id = $1 ORDER BY seq, instrument', [RUN]);
  assert.deepEqual(rows, [
    { seq: 41, instrument: 'EUR_USD', weight: 0.103, reasons: [], total: 0.221, stale: false, kill_switch: false, gates_ts: new Date(T0 - 20_000) },
    { seq: 41, instrument: 'USD_JPY', weight: 0.118, reasons: ['capped'], total: 0.221, stale: false, kill_switch: false, gates_ts: new Date(T0 - 20_000) },
    { seq: 42, instrument: NO_INSTRUMENT, weight: 0, reasons: [], total: 0, stale: true, kill_switch: true, gates_ts: null },
  ]);
});

test('single-row mappings through rowsOf give [row()]', () => {
  const m = TABLES[TOPICS.markouts.name]!;
  assert.deepEqual(rowsOf(m, markout, RUN), [m.row(markout, RUN)]);
  assert.equal(upsertSql(m, 2).match(/\$\d+/g)!.length, 2 * m.columns.length);
});
