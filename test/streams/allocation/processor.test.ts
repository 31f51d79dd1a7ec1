/**
 * Allocator-lite on the runtime, through the blob stage's topology in the
 * test driver: a decision per new blob, interval decisions only when blobs
 * stop (then stale, with the previous weights held), the kill switch as live
 * input, and the same decisions after a restart from the changelog.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TopologyTestDriver } from '../../../streams/runtime/test-driver.ts';
import { Task } from '../../../streams/runtime/task.ts';
import { TOPICS } from '../../../streams/runtime/topics.ts';
import { gatesBlobTopology } from '../../../streams/gates/blob-processor.ts';
import type { GatesPartial } from '../../../streams/gates/processor.ts';
import { resolveAllocatorConfig } from '../../../streams/allocation/config.ts';
import type { AllocationDecision } from '../../../streams/allocation/allocator.ts';
import type { AllocationOverlay } from '../../../streams/allocation/overlay.ts';

const T0 = Date.UTC(2026, 10, 13, 9);
const MIN = 60_000;
const config = resolveAllocatorConfig({ ALLOC_INTERVAL_SEC: 60, ALLOC_TOP_K: 2, GATES_BLOB_MAX_AGE_SEC: 180, PM_RAMP_STEP_PCT: 1 }, {});

/** One evaluation's partials from partitions 0 and 1: A and B eligible, C not. */
function partials(ts: number): GatesPartial[] {
  const d = (instrument: string, eligible: boolean, calmar: number) => ({ instrument, eligible, buf: 0, repetition: 1, hazard: 0.1, calmar, span_ok: true, cooldown_until: null });
  return [
    { ts, partition: 0, decisions: [d('AAA_USD', true, 2), d('CCC_USD', false, 9)] },
    { ts, partition: 1, decisions: [d('BBB_USD', true, 1)] },
  ];
}

function driver(killSwitch?: () => boolean) {
  return new TopologyTestDriver(gatesBlobTopology({ expectedPartitions: [0, 1], allocator: { config, killSwitch } }));
}
// Two sources (partials, overlay): the driver merges by timestamp on flush, so flush to process now.
const pipe = (d: TopologyTestDriver, ps: GatesPartial[]) => { for (const p of ps) d.pipeInput(TOPICS.gatesPartial.name, String(p.partition), p, p.ts); d.flush(); };
const decisions = (d: TopologyTestDriver) => d.readOutput(TOPICS.allocations.name).map((o) => ({ ...(o.value as AllocationDecision), key: o.key, timestamp: o.timestamp }));

test('a decision per new blob, keyed by portfolio, in seq order; no extra interval decision while blobs keep coming', () => {
  const d = driver();
  for (let k = 0; k < 4; k++) pipe(d, partials(T0 + k * MIN));
  const got = decisions(d);
  assert.deepEqual(got.map((a) => [a.seq, a.ts, a.gates_ts, a.key]), [0, 1, 2, 3].map((k) => [k + 1, T0 + k * MIN, T0 + k * MIN, 'main']));
  const first = got[0]!;
  assert.equal(first.stale, false);
  assert.deepEqual(first.weights.map((w) => [w.instrument, w.weight > 0]), [['AAA_USD', true], ['BBB_USD', true]]);
  assert.ok(first.weights[0]!.reasons.includes('top_k'));
});

test('decisions are made at blob times only: partials of one partition running ahead decide nothing', () => {
  const d = driver();
  pipe(d, partials(T0));
  // Partition 0 runs ahead by five evaluations (as a replay's tasks may): no blob completes, nothing is decided.
  for (let k = 1; k <= 5; k++) pipe(d, [partials(T0 + k * MIN)[0]!]);
  assert.deepEqual(decisions(d).map((a) => a.seq), [1]);
  // Partition 1 catches up: one decision per blob, at the blob's time, whatever the interleaving was.
  for (let k = 1; k <= 5; k++) pipe(d, [partials(T0 + k * MIN)[1]!]);
  assert.deepEqual(decisions(d).map((a) => [a.seq, a.ts, a.gates_ts, a.stale]), [0, 1, 2, 3, 4, 5].map((k) => [k + 1, T0 + k * MIN, T0 + k * MIN, false]));
});

test('a gap between blobs gets the interval decisions on the previous blob, stale past the max age, then the rest of the gap is skipped', () => {
  const d = driver();
  pipe(d, partials(T0));
  pipe(d, partials(T0 + 10 * MIN));
  const got = decisions(d);
  // Interval 1 min, max age 3 min: +1, +2, +3 fresh on the old blob, +4 stale (and the gap's rest skipped), then the blob at +10.
  assert.deepEqual(got.map((a) => [a.seq, (a.ts - T0) / MIN, a.stale, a.stale_age_sec, (a.gates_ts! - T0) / MIN]), [
    [1, 0, false, 0, 0], [2, 1, false, 60, 0], [3, 2, false, 120, 0], [4, 3, false, 180, 0], [5, 4, true, 240, 0], [6, 10, false, 0, 10],
  ]);
  // Stale: the weights in force are held, each with the reason.
  const held = got[4]!;
  assert.deepEqual(held.weights.map((w) => [w.instrument, w.weight, w.reasons]), got[3]!.weights.filter((w) => w.weight > 0).map((w) => [w.instrument, w.weight, ['stale_hold']]));
});

test('the kill switch, read live at each decision, blocks increases and is recorded in the decision', () => {
  let on = true;
  const d = driver(() => on);
  pipe(d, partials(T0));
  pipe(d, partials(T0 + MIN));
  on = false;
  pipe(d, partials(T0 + 2 * MIN));
  const got = decisions(d);
  assert.deepEqual(got.map((a) => [a.kill_switch, a.total > 0]), [[true, false], [true, false], [false, true]]);
  assert.ok(got[0]!.weights.every((w) => w.weight === 0 && w.reasons.includes('kill_switch')));
});

test('a task restored from the changelog decides on exactly as the uninterrupted one (seq continues, ramp and weights carried)', () => {
  const topology = () => gatesBlobTopology({ expectedPartitions: [0, 1], allocator: { config: resolveAllocatorConfig({ ALLOC_INTERVAL_SEC: 60, PM_RAMP_STEP_PCT: 0.01 }, {}) } });
  const input = Array.from({ length: 8 }, (_, k) => partials(T0 + k * MIN)).flat();
  const whole = new Task(topology(), 0);
  const all = input.flatMap((p, i) => whole.process(TOPICS.gatesPartial.name, i, String(p.partition), p, p.ts).outputs);

  const first = new Task(topology(), 0);
  const out = input.slice(0, 7).flatMap((p, i) => first.process(TOPICS.gatesPartial.name, i, String(p.partition), p, p.ts).outputs);
  const log = first.drainChangelog();
  const second = new Task(topology(), 0);
  for (const { store, writes } of log) for (const w of writes) second.store(store).restore(w.key, w.value);
  out.push(...input.slice(7).flatMap((p, i) => second.process(TOPICS.gatesPartial.name, i + 7, String(p.partition), p, p.ts).outputs));
  assert.deepEqual(out, all);
  const seqs = all.filter((o) => o.topic === TOPICS.allocations.name).map((o) => (o.value as AllocationDecision).seq);
  assert.deepEqual(seqs, Array.from({ length: 8 }, (_, k) => k + 1));
});

test('the partials\' vols and calibrations reach the allocator: inverse_vol sizes by them, a calibrated k_eff attenuates through the cost chain', () => {
  const withInputs = (ts: number, vols: boolean, calibrated: boolean): GatesPartial[] => partials(ts).map((p) => ({
    ...p,
    decisions: p.decisions.map((d) => ({
      ...d,
      vol: vols ? (d.instrument === 'AAA_USD' ? 0.001 : 0.003) : null,
      calibration: calibrated ? { spread_bps_ewma: 2, volume_usd_ewma: 1e6, fill_rate_ewma: 0.9, turnover_usd_ewma: 5e4, k_eff: 50, cap_eff_bps: 80 } : null,
    })),
  }));
  const cfg = resolveAllocatorConfig({ ALLOC_SIZING_MODE: 'inverse_vol', ALLOC_TOP_K: 2, PM_MAX_PER_POS_PCT: 1, PM_RAMP_STEP_PCT: 1, ALLOC_MAX_WEIGHT: 1, ALLOC_MIN_WEIGHT: 0 }, {});
  const run = (vols: boolean, calibrated: boolean) => {
    const d = new TopologyTestDriver(gatesBlobTopology({ expectedPartitions: [0, 1], allocator: { config: cfg } }));
    pipe(d, withInputs(T0, vols, calibrated));
    return decisions(d)[0]!;
  };
  const weight = (a: AllocationDecision, i: string) => a.weights.find((w) => w.instrument === i)!.weight;
  // 1/σ: BBB (σ 0.003) gets a quarter of the 0.30 total, 0.075, AAA three quarters, capped at 0.30/K = 0.15.
  // Without vols both fall back alike: 0.15 each (before the cost chain's ~1 % here).
  const sized = run(true, false);
  const blind = run(false, false);
  assert.ok(weight(sized, 'BBB_USD') < 0.6 * weight(blind, 'BBB_USD'), `${weight(sized, 'BBB_USD')} vs ${weight(blind, 'BBB_USD')}`);
  assert.ok(!sized.weights.some((w) => w.reasons.includes('vol_missing')));
  assert.ok(Math.abs(weight(blind, 'AAA_USD') - weight(blind, 'BBB_USD')) < 1e-12);
  assert.ok(blind.weights.every((w) => w.reasons.includes('vol_missing')));
  // k_eff 50 bps per $1k (vs the static 0.1) makes the slippage hit its calibrated cap: smaller weights.
  const calibrated = run(true, true);
  for (const i of ['AAA_USD', 'BBB_USD']) assert.ok(weight(calibrated, i) < weight(sized, i), `${i}: ${weight(calibrated, i)} < ${weight(sized, i)}`);
});

test('an overlay record on alloc.overlay.v1 applies from its timestamp on: the cluster scale and the CVaR cap shrink targets, reason overlay', () => {
  const cfg = resolveAllocatorConfig({ ALLOC_TOP_K: 2, PM_RAMP_STEP_PCT: 1 }, {});
  const d = new TopologyTestDriver(gatesBlobTopology({ expectedPartitions: [0, 1], allocator: { config: cfg } }));
  const overlay: AllocationOverlay = {
    ts: T0 + MIN / 2, from: T0 - 90 * 86_400_000, timeframe: '1h', config_hash: 'x',
    budget: { a: { max_equity_risk: 0.05, scale: 0.5 }, other: { max_equity_risk: 0.05, scale: 1 } },
    instruments: [
      { instrument: 'AAA_USD', cluster: 'a', hrp_weight: 0.5, scale: 0.5, cvar: -0.01, cvar_scope: 'symbol', max_weight: 0.5, dropped: null },
      { instrument: 'BBB_USD', cluster: 'other', hrp_weight: 0.5, scale: 1, cvar: -0.5, cvar_scope: 'symbol', max_weight: 0.01, dropped: null },
    ],
  };
  pipe(d, partials(T0));
  d.pipeInput(TOPICS.allocationOverlay.name, 'overlay', overlay, overlay.ts);
  pipe(d, partials(T0 + MIN));
  const [before, after] = decisions(d);
  const w = (a: AllocationDecision, i: string) => a.weights.find((x) => x.instrument === i)!;
  // Before the overlay: equal 0.10 each (cap min(0.30/2, PM_MAX 0.10)), less the cost chain's ~1 %.
  assert.ok(w(before!, 'AAA_USD').weight > 0.09 && !w(before!, 'AAA_USD').reasons.includes('overlay'));
  // After: AAA × its cluster's scale 0.5; BBB capped by its CVaR at 0.01 (before the cost chain).
  assert.ok(Math.abs(w(after!, 'AAA_USD').weight / w(before!, 'AAA_USD').weight - 0.5) < 0.01, `${w(after!, 'AAA_USD').weight}`);
  assert.ok(w(after!, 'BBB_USD').weight <= 0.01 && w(after!, 'BBB_USD').weight > 0.009, `${w(after!, 'BBB_USD').weight}`);
  assert.ok(w(after!, 'AAA_USD').reasons.includes('overlay') && w(after!, 'BBB_USD').reasons.includes('overlay'));
});

test('margin utilisation read live gates increases with hysteresis (≥ HIGH pauses, < LOW resumes, in between keeps) and never blocks reductions', () => {
  let margin: number | null = 0.35;
  const cfg = resolveAllocatorConfig({ ALLOC_TOP_K: 2, PM_RAMP_STEP_PCT: 1, MARGIN_HYST_LOW: 0.25, MARGIN_HYST_HIGH: 0.3 }, {});
  const d = new TopologyTestDriver(gatesBlobTopology({ expectedPartitions: [0, 1], allocator: { config: cfg, marginUtilisation: () => margin } }));
  const step = (k: number, m: number | null) => { margin = m; pipe(d, partials(T0 + k * MIN)); };
  step(0, 0.35); // paused from the start: nothing may increase
  step(1, 0.27); // between LOW and HIGH: still paused
  step(2, null); // unknown: the latch stays
  step(3, 0.2); // below LOW: increases resume
  const got = decisions(d);
  assert.deepEqual(got.map((a) => [a.total > 0, a.weights.some((w) => w.reasons.includes('margin_pause'))]), [[false, true], [false, true], [false, true], [true, false]]);
});

test('a bad overlay record is rejected naming the field (dead-lettered by the runtime); the allocator keeps deciding without it', () => {
  const d = driver();
  pipe(d, partials(T0));
  const bad = { ts: T0 + 1, from: T0 - 1, timeframe: '1h', config_hash: 'x', budget: {}, instruments: [{ instrument: 'AAA_USD', cluster: 'a', hrp_weight: null, scale: Number.NaN, cvar: null, cvar_scope: 'none', max_weight: null, dropped: null }] };
  d.pipeInput(TOPICS.allocationOverlay.name, 'overlay', bad, bad.ts);
  pipe(d, partials(T0 + MIN));
  assert.deepEqual(d.rejections.map((r) => [r.topic, r.error.reason, (r.error as { field?: string }).field]), [[TOPICS.allocationOverlay.name, 'invalid_value', 'instruments[0].scale']]);
  const got = decisions(d);
  assert.equal(got.length, 2);
  assert.ok(got[1]!.weights.every((w) => !w.reasons.includes('overlay')));
});
