/**
 * The runbook views (sql/timescale/009_runbook_views.sql) on small hand-made
 * runs whose answers are known: eligibility intervals, allocation changes
 * including exits and unknown predecessors, the NAV proxy against a direct
 * evaluation of its formula, the NAV vs Calmar flag, the calibration trend.
 * Each scenario has its own run_id, which also checks that views keep runs apart.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from '../../../connectors/sink/migrate.ts';
import { TABLES, type Allocation } from '../../../connectors/sink/tables.ts';
import { TOPICS } from '../../../streams/runtime/topics.ts';
import type { GateDecision } from '../../../streams/gates/evaluate.ts';
import type { Feature } from '../../../streams/features/features.ts';
import type { CostCalibration } from '../../../streams/calibration/calibration.ts';
import { openTimescale } from './pglite.ts';
import { writeRecords } from './fixtures.ts';

const t = await openTimescale();
await migrate(t.client);
after(() => t.close());

const T0 = Date.UTC(2026, 10, 13, 9, 0);
const MIN = 60_000;

const gate = (instrument: string, ts: number, eligible: boolean, calmar = 0.4, reasons: GateDecision['reasons'] = eligible ? [] : ['calmar']): GateDecision => ({
  instrument, ts, eligible, raw_pass: eligible, trades: 12, calmar, buf: 0.1, repetition: 3, hazard: 0.2, span_ok: true, session_open: true,
  cooldown_until: null, consecutive_misses: eligible ? 0 : 1, reasons,
});
const decision = (seq: number, ts: number, weights: Record<string, number>, portfolio = 'p'): Allocation => ({
  portfolio, seq, ts, interval_sec: 60, weights: Object.entries(weights).map(([instrument, weight]) => ({ instrument, weight, reasons: [] })),
  total: Object.values(weights).reduce((a, b) => a + b, 0), stale: false, stale_age_sec: null, kill_switch: false, gates_ts: ts, config_hash: 'h',
});
const bar = (instrument: string, ts: number, close: number, signal: number, spread_bps: number | null): Feature => ({
  instrument, granularity: 'M1', ts, bar_index: 0, close, log_return: null, ewma_vol: null, true_range: null, atr14: null, volume_usd: 1e6,
  spread_bps, entropy: null, coherence: null, rupture: null, stability: null, hazard: null, repetition: null, signal,
});

test('eligibility_timeline: runs of equal decisions become intervals, with the reasons that started them', async () => {
  const ts = [0, 5, 10, 15, 20].map((m) => T0 + m * MIN);
  await writeRecords(t, TABLES[TOPICS.gates.name]!, [
    gate('EUR_USD', ts[0]!, true), gate('EUR_USD', ts[1]!, true), gate('EUR_USD', ts[2]!, false, 0.1, ['calmar', 'echo_hazard']),
    gate('EUR_USD', ts[3]!, false, 0.1, ['cooldown']), gate('EUR_USD', ts[4]!, true), gate('USD_JPY', ts[0]!, false),
  ], 'elig');
  const rows = await t.rows<Record<string, unknown>>(
    "SELECT instrument, eligible, from_ts, until_ts, last_ts, duration::text AS duration, evaluations::int AS evaluations, reasons FROM eligibility_timeline WHERE run_id = 'elig' ORDER BY instrument, from_ts");
  const d = (ms: number) => new Date(ms);
  assert.deepEqual(rows, [
    { instrument: 'EUR_USD', eligible: true, from_ts: d(ts[0]!), until_ts: d(ts[2]!), last_ts: d(ts[1]!), duration: '00:10:00', evaluations: 2, reasons: [] },
    { instrument: 'EUR_USD', eligible: false, from_ts: d(ts[2]!), until_ts: d(ts[4]!), last_ts: d(ts[3]!), duration: '00:10:00', evaluations: 2, reasons: ['calmar', 'echo_hazard'] },
    { instrument: 'EUR_USD', eligible: true, from_ts: d(ts[4]!), until_ts: null, last_ts: d(ts[4]!), duration: '00:00:00', evaluations: 1, reasons: [] },
    { instrument: 'USD_JPY', eligible: false, from_ts: d(ts[0]!), until_ts: null, last_ts: d(ts[0]!), duration: '00:00:00', evaluations: 1, reasons: ['calmar'] },
  ]);
});

test('allocation_history: entered, resized, held, exited (also to an empty decision), and first after a gap in seq', async () => {
  await writeRecords(t, TABLES[TOPICS.allocations.name]!, [
    decision(1, T0, { A_X: 0.1, B_X: 0.2 }),
    decision(2, T0 + MIN, { A_X: 0.15 }),
    decision(3, T0 + 2 * MIN, {}),
    decision(5, T0 + 4 * MIN, { B_X: 0.1 }), // seq 4 never arrived (compaction)
    decision(6, T0 + 5 * MIN, { B_X: 0.1, A_X: 0.05 }),
  ], 'hist');
  const rows = await t.rows<{ seq: number; instrument: string; weight: number; prev_weight: number | null; delta: number; change: string }>(
    "SELECT seq::int AS seq, instrument, weight, prev_weight, delta, change FROM allocation_history WHERE run_id = 'hist' ORDER BY seq, instrument");
  assert.deepEqual(rows.map((r) => [r.seq, r.instrument, r.weight, r.prev_weight, r.change]), [
    [1, 'A_X', 0.1, null, 'first'],
    [1, 'B_X', 0.2, null, 'first'],
    [2, 'A_X', 0.15, 0.1, 'resized'],
    [2, 'B_X', 0, 0.2, 'exited'],
    [3, 'A_X', 0, 0.15, 'exited'],
    [5, 'B_X', 0.1, null, 'first'],
    [6, 'A_X', 0.05, 0, 'entered'],
    [6, 'B_X', 0.1, 0.1, 'held'],
  ]);
  assert.deepEqual(rows.map((r) => r.delta), [0.1, 0.2, 0.15 - 0.1, -0.2, -0.15, 0.1, 0.05, 0]);
});

/** The NAV proxy's formula (009_runbook_views.sql) evaluated directly. */
function navDirect(bars: Feature[], decisions: Allocation[]): { ts: number; bar_return: number; nav: number }[] {
  const held = (ts: number, instrument: string) => {
    const d = decisions.filter((x) => x.ts <= ts).sort((a, b) => b.seq - a.seq)[0];
    return d?.weights.find((w) => w.instrument === instrument)?.weight ?? 0;
  };
  const perTs = new Map<number, number>();
  for (const instrument of new Set(bars.map((b) => b.instrument))) {
    let prevPos = 0;
    let prevClose = NaN;
    let spread = 0;
    for (const b of bars.filter((x) => x.instrument === instrument).sort((x, y) => x.ts - y.ts)) {
      if (b.spread_bps !== null && b.spread_bps >= 0) spread = b.spread_bps;
      const pos = held(b.ts, instrument) * Math.sign(b.signal);
      const r = (Number.isNaN(prevClose) ? 0 : prevPos * (b.close / prevClose - 1)) - (spread / 2 / 1e4) * Math.abs(pos - prevPos);
      perTs.set(b.ts, (perTs.get(b.ts) ?? 0) + r);
      prevPos = pos;
      prevClose = b.close;
    }
  }
  let nav = 1;
  return [...perTs.entries()].sort(([a], [b]) => a - b).map(([ts, r]) => ({ ts, bar_return: r, nav: (nav *= 1 + r) }));
}

test('nav_proxy equals its formula evaluated directly; nav_calmar_divergence flags a falling NAV under positive Calmar', async () => {
  const bars = [
    ...[100, 99, 98.5, 99, 97, 96].map((c, i) => bar('A_X', T0 + (i + 1) * MIN, c, [1, 1, 1, -1, -1, 0][i]!, [1, null, 2, 2, null, 1][i]!)),
    ...[50, 50.5, 50, 49, 49.5, 50].map((c, i) => bar('B_X', T0 + (i + 1) * MIN, c, [-1, -1, 1, 1, 1, 1][i]!, 0.5)),
  ];
  const decisions = [decision(1, T0 + MIN, { A_X: 0.2, B_X: 0.1 }), decision(2, T0 + 3.5 * MIN, { A_X: 0.1 }), decision(3, T0 + 5 * MIN, {})];
  await writeRecords(t, TABLES[TOPICS.features.name]!, bars, 'nav');
  await writeRecords(t, TABLES[TOPICS.allocations.name]!, decisions, 'nav');
  await writeRecords(t, TABLES[TOPICS.gates.name]!, [gate('A_X', T0, true, 0.5), gate('B_X', T0, true, 0.3)], 'nav');

  const got = await t.rows<{ ts: Date; bar_return: number; nav: number }>("SELECT ts, bar_return, nav FROM nav_proxy WHERE run_id = 'nav' AND portfolio = 'p' ORDER BY ts");
  const want = navDirect(bars, decisions);
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    assert.equal(got[i]!.ts.getTime(), want[i]!.ts);
    assert.ok(Math.abs(got[i]!.bar_return - want[i]!.bar_return) <= 1e-15, `bar ${i}: ${got[i]!.bar_return} vs ${want[i]!.bar_return}`);
    assert.ok(Math.abs(got[i]!.nav - want[i]!.nav) <= 1e-12, `nav ${i}`);
  }
  const final = want.at(-1)!.nav;
  assert.ok(final < 1, `the scenario loses (${final})`);

  const [hour] = await t.rows<Record<string, unknown>>(
    "SELECT hour, bars::int AS bars, nav, nav_return, nav_change_6h, calmar_selected, calmar_selected_6h, diverging FROM nav_calmar_divergence WHERE run_id = 'nav'");
  // Selected at seq 1: A (0.5), B (0.3); at seq 2: A (0.5); seq 3 selects nothing.
  assert.deepEqual(hour, {
    hour: new Date(T0), bars: 6, nav: got.at(-1)!.nav, nav_return: (hour as { nav_return: number }).nav_return,
    nav_change_6h: (hour as { nav_change_6h: number }).nav_change_6h, calmar_selected: (0.5 + 0.3 + 0.5) / 3, calmar_selected_6h: (0.5 + 0.3 + 0.5) / 3, diverging: true,
  });
  assert.ok(Math.abs((hour!.nav_return as number) - (final - 1)) <= 1e-12);
});

test("cost_calibration_trend: the calibration in force at each hour's end and its change from the hour before", async () => {
  const cal = (ts: number, k: number, slip: number): CostCalibration => ({
    instrument: 'EUR_USD', ts, spread_bps_ewma: 1, volume_usd_ewma: 1e6, slippage_bps_ewma: slip, fill_rate_ewma: 0.8, turnover_usd_ewma: 1e5, k_eff: k, cap_eff_bps: 2, samples: 10,
  });
  await writeRecords(t, TABLES[TOPICS.costCalibration.name]!, [cal(T0 + 10 * MIN, 0.1, 0.6), cal(T0 + 50 * MIN, 0.2, 0.7), cal(T0 + 80 * MIN, 0.5, 0.65)], 'calib');
  const rows = await t.rows<Record<string, unknown>>(
    "SELECT hour, updates::int AS updates, k_eff, k_eff_change, slippage_bps_ewma, slippage_over_half_spread_bps FROM cost_calibration_trend WHERE run_id = 'calib' ORDER BY hour");
  assert.deepEqual(rows, [
    { hour: new Date(T0), updates: 2, k_eff: 0.2, k_eff_change: null, slippage_bps_ewma: 0.7, slippage_over_half_spread_bps: 0.7 - 0.5 },
    { hour: new Date(T0 + 60 * MIN), updates: 1, k_eff: 0.5, k_eff_change: 0.5 - 0.2, slippage_bps_ewma: 0.65, slippage_over_half_spread_bps: 0.65 - 0.5 },
  ]);
});

test('views keep runs apart: a scenario run never shows under another run_id', async () => {
  const runs = await t.rows<{ v: string; runs: string[] }>(`
    SELECT 'eligibility_timeline' AS v, array_agg(DISTINCT run_id) AS runs FROM eligibility_timeline
    UNION ALL SELECT 'allocation_history', array_agg(DISTINCT run_id) FROM allocation_history
    UNION ALL SELECT 'nav_proxy', array_agg(DISTINCT run_id) FROM nav_proxy`);
  assert.deepEqual(runs, [
    { v: 'eligibility_timeline', runs: ['elig', 'nav'] },
    { v: 'allocation_history', runs: ['hist', 'nav'] },
    { v: 'nav_proxy', runs: ['nav'] },
  ]);
});
