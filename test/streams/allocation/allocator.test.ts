import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import avro from 'avsc';
import {
  allocate, initialAllocatorState, nextMarginLatch, ALLOCATION_REASONS,
  type AllocationDecision, type AllocatorBlob, type AllocatorInput, type AllocatorState,
} from '../../../streams/allocation/allocator.ts';
import { resolveAllocatorConfig, costParamsFor, type AllocationKnob, type AllocatorConfig } from '../../../streams/allocation/config.ts';
import { applyCostChain } from '../../../streams/allocation/cost-chain.ts';
import type { CostCalibration } from '../../../streams/calibration/calibration.ts';
import { rng } from '../../support/random.ts';

const T0 = Date.UTC(2026, 0, 5, 12);
const SEC = 1000;
const MIN = 60 * SEC;

/** Cost chain neutral and ramp wide open unless a test says otherwise, so each rule is seen alone. */
const cfgOf = (o: Partial<Record<AllocationKnob, unknown>> = {}): AllocatorConfig =>
  resolveAllocatorConfig({ COST_SENSITIVITY: 0, FILL_RATE_SENSITIVITY: 0, PM_RAMP_STEP_PCT: 1, ...o }, {});
const CFG = cfgOf();

type Row = { calmar: number; hazard?: number; eligible?: boolean; cooldownUntil?: number };
/** A blob at `ts`; every instrument eligible with hazard 0 unless its row says otherwise. */
function blobOf(ts: number, rows: Record<string, Row>): AllocatorBlob {
  const b: AllocatorBlob = { ts, gates: {}, cooldowns: {}, calmar: {}, hazard: {} };
  for (const [i, r] of Object.entries(rows)) {
    b.gates[i] = r.eligible ?? true;
    b.calmar[i] = r.calmar;
    b.hazard[i] = r.hazard ?? 0;
    if (r.cooldownUntil !== undefined) b.cooldowns[i] = r.cooldownUntil;
  }
  return b;
}
const ABC = { AUD_USD: { calmar: 1 }, EUR_USD: { calmar: 2 }, USD_JPY: { calmar: 3 } };

const weightsOf = (d: AllocationDecision) => Object.fromEntries(d.weights.map((w) => [w.instrument, w.weight]));
const reasonsOf = (d: AllocationDecision, i: string) => d.weights.find((w) => w.instrument === i)?.reasons;
const near = (a: number | undefined, b: number, tol = 1e-12) => assert.ok(a !== undefined && Math.abs(a - b) <= tol, `${a} vs ${b}`);
const nearAll = (actual: Record<string, number>, expected: Record<string, number>, tol = 1e-12) => {
  assert.deepEqual(Object.keys(actual), Object.keys(expected));
  for (const k of Object.keys(expected)) near(actual[k], expected[k]!, tol);
};

/** Runs decisions in order from `state`; returns every step. */
function run(inputs: AllocatorInput[], cfg = CFG, state: AllocatorState = initialAllocatorState()) {
  const out = [];
  for (const input of inputs) {
    const s = allocate(state, input, cfg);
    out.push(s);
    state = s.state;
  }
  return out;
}

test('stale blob: previous weights kept, stale with the blob age, reasons stale_hold; seq still rises', () => {
  const [first, stale, edge] = run([
    { now: T0, blob: blobOf(T0, ABC) },
    // 181 s old (GATES_BLOB_MAX_AGE_SEC = 180) and saying nothing is eligible: it is not trusted.
    { now: T0 + 181 * SEC, blob: blobOf(T0, { AUD_USD: { calmar: 1, eligible: false } }) },
  ]);
  nearAll(weightsOf(first!.decision), { AUD_USD: 0.1, EUR_USD: 0.1, USD_JPY: 0.1 });
  assert.equal(edge, undefined);
  const d = stale!.decision;
  assert.deepEqual(weightsOf(d), weightsOf(first!.decision));
  assert.deepEqual([d.stale, d.stale_age_sec, d.gates_ts, d.seq], [true, 181, T0, 2]);
  assert.deepEqual(d.weights.map((w) => w.reasons), [['stale_hold'], ['stale_hold'], ['stale_hold']]);
  assert.deepEqual(stale!.state.weights, first!.state.weights);
  assert.equal(stale!.details.stale, true);

  // Exactly GATES_BLOB_MAX_AGE_SEC old is still fresh: the blob is followed (everything ineligible → 0).
  const fresh = allocate(first!.state, { now: T0 + 180 * SEC, blob: blobOf(T0, { AUD_USD: { calmar: 1, eligible: false } }) }, CFG).decision;
  assert.deepEqual([fresh.stale, fresh.stale_age_sec, fresh.total], [false, 180, 0]);
  assert.deepEqual(fresh.weights.map((w) => [w.instrument, w.weight, w.reasons]), [
    ['AUD_USD', 0, ['ineligible']], ['EUR_USD', 0, ['ineligible']], ['USD_JPY', 0, ['ineligible']],
  ]);

  // No blob at all: stale, no age, no gates_ts; the first decision ever holds nothing.
  const none = allocate(initialAllocatorState(), { now: T0, blob: null }, CFG).decision;
  assert.deepEqual([none.stale, none.stale_age_sec, none.gates_ts, none.weights, none.total, none.seq], [true, null, null, [], 0, 1]);
  // A shorter max age makes the same blob stale sooner.
  assert.equal(allocate(first!.state, { now: T0 + 61 * SEC, blob: blobOf(T0, ABC) }, cfgOf({ GATES_BLOB_MAX_AGE_SEC: 60 })).decision.stale, true);
});

test('score = calmar − ALLOC_SCORE_WEIGHT_HAZARD·hazard picks the Top-K; equal scores are ordered by name', () => {
  const rows = { EUR_USD: { calmar: 1.0, hazard: 0.9 }, USD_JPY: { calmar: 0.8, hazard: 0 }, GBP_USD: { calmar: 0.6, hazard: 0.2 } };
  const pick = (cfg: AllocatorConfig, r: Record<string, Row> = rows) => allocate(initialAllocatorState(), { now: T0, blob: blobOf(T0, r) }, cfg).details;
  // λ = 0.5: EUR 0.55, USD_JPY 0.8, GBP 0.5.
  const half = pick(cfgOf({ ALLOC_TOP_K: 2 }));
  assert.deepEqual(half.selected, ['USD_JPY', 'EUR_USD']);
  near(half.scores.EUR_USD, 0.55);
  // λ = 0: calmar alone.
  assert.deepEqual(pick(cfgOf({ ALLOC_TOP_K: 2, ALLOC_SCORE_WEIGHT_HAZARD: 0 })).selected, ['EUR_USD', 'USD_JPY']);
  // Ties by name (code-unit order: upper case before lower case would matter, underscores too).
  const tie = { USD_JPY: { calmar: 0.5 }, AUD_USD: { calmar: 0.5 }, EUR_USD: { calmar: 0.5 }, NZD_USD: { calmar: 0.9 } };
  const d = allocate(initialAllocatorState(), { now: T0, blob: blobOf(T0, tie) }, cfgOf({ ALLOC_TOP_K: 3 }));
  assert.deepEqual(d.details.selected, ['NZD_USD', 'AUD_USD', 'EUR_USD']);
  assert.deepEqual(d.decision.weights.map((w) => w.instrument), ['AUD_USD', 'EUR_USD', 'NZD_USD']); // output sorted by name
  assert.deepEqual(pick(cfgOf({ ALLOC_TOP_K: 1 }), tie).selected, ['NZD_USD']);
  assert.deepEqual(pick(cfgOf({ ALLOC_TOP_K: 2 }), { B_USD: { calmar: 0.5 }, A_USD: { calmar: 0.5 }, C_USD: { calmar: 0.5 } }).selected, ['A_USD', 'B_USD']);
});

test('candidates: gate true, no cooldown at the blob\'s ts, finite calmar and hazard; dropped weights say why', () => {
  const c3 = cfgOf({ ALLOC_TOP_K: 2, PM_MAX_PER_POS_PCT: 0.15 });
  const [held] = run([{ now: T0, blob: blobOf(T0, { AUD_USD: { calmar: 3 }, EUR_USD: { calmar: 2 }, USD_JPY: { calmar: 1 } }) }], c3);
  nearAll(weightsOf(held!.decision), { AUD_USD: 0.15, EUR_USD: 0.15 });
  const t = T0 + MIN;
  const d = allocate(held!.state, {
    now: t,
    blob: blobOf(t, {
      AUD_USD: { calmar: 3, cooldownUntil: t + 7200 * SEC },     // a cooldown runs (even with the gate true)
      EUR_USD: { calmar: 0.1 },                                   // eligible, ranked out by the two below
      USD_JPY: { calmar: 1, cooldownUntil: t },                   // its cooldown ended at ts: no bar
      USD_CHF: { calmar: 5, eligible: false },                    // gate false
      USD_CAD: { calmar: NaN },                                   // no score
      NZD_USD: { calmar: 0.5 },
    }),
  }, c3);
  assert.deepEqual(d.details.eligible, ['EUR_USD', 'NZD_USD', 'USD_JPY']);
  assert.deepEqual(d.details.cooldown, ['AUD_USD']);
  assert.deepEqual(d.details.selected, ['USD_JPY', 'NZD_USD']);
  assert.deepEqual(d.decision.weights.map((w) => [w.instrument, w.reasons]), [
    ['AUD_USD', ['cooldown']], ['EUR_USD', ['not_top_k']], ['NZD_USD', ['top_k']], ['USD_JPY', ['top_k']],
  ]);
  assert.deepEqual(d.state.weights, { NZD_USD: 0.15, USD_JPY: 0.15 });
  // Not in the blob at all: ineligible.
  const gone = allocate(held!.state, { now: t, blob: blobOf(t, { USD_JPY: { calmar: 1 } }) }, c3).decision;
  assert.deepEqual(reasonsOf(gone, 'AUD_USD'), ['ineligible']);
});

test('caps: each weight at most min(RISK_ALLOC_TARGET_PCT/K, PM_MAX_PER_POS_PCT); what a cap removes stays unallocated', () => {
  const blob = blobOf(T0, ABC);
  const one = (cfg: AllocatorConfig, input: Partial<AllocatorInput> = {}) => allocate(initialAllocatorState(), { now: T0, blob, ...input }, cfg).decision;
  // Equal, K = 3: 0.30/3 each, the total is the target.
  const eq = one(CFG);
  nearAll(weightsOf(eq), { AUD_USD: 0.1, EUR_USD: 0.1, USD_JPY: 0.1 });
  near(eq.total, 0.3);
  // PM_MAX_PER_POS_PCT below total/K binds.
  const pm = one(cfgOf({ PM_MAX_PER_POS_PCT: 0.08 }));
  nearAll(weightsOf(pm), { AUD_USD: 0.08, EUR_USD: 0.08, USD_JPY: 0.08 });
  assert.deepEqual(reasonsOf(pm, 'AUD_USD'), ['top_k', 'capped']);
  near(pm.total, 0.24);
  // inverse_vol 4/7, 2/7, 1/7 of 0.30: the largest is capped at 0.10, the others keep theirs.
  const iv = one(cfgOf({ ALLOC_SIZING_MODE: 'inverse_vol', ALLOC_MAX_WEIGHT: 1 }), { vols: { AUD_USD: 0.1, EUR_USD: 0.2, USD_JPY: 0.4 } });
  nearAll(weightsOf(iv), { AUD_USD: 0.1, EUR_USD: 0.3 * 2 / 7, USD_JPY: 0.3 * 1 / 7 });
  assert.deepEqual(reasonsOf(iv, 'AUD_USD'), ['top_k', 'capped']);
  // Fewer eligible than K: each still at most total/K (no hold, no redistribution).
  const two = allocate(initialAllocatorState(), { now: T0, blob: blobOf(T0, { EUR_USD: { calmar: 1 }, USD_JPY: { calmar: 2 } }) }, CFG).decision;
  nearAll(weightsOf(two), { EUR_USD: 0.1, USD_JPY: 0.1 });
  // … and when n·ALLOC_MAX_WEIGHT < 1 the share bound becomes 1/n, said in the reasons.
  const relaxed = allocate(initialAllocatorState(), { now: T0, blob: blobOf(T0, { EUR_USD: { calmar: 1 }, USD_JPY: { calmar: 2 } }) }, cfgOf({ ALLOC_MAX_WEIGHT: 0.4 }));
  assert.equal(relaxed.details.sizing.boundsRelaxed, true);
  assert.deepEqual(reasonsOf(relaxed.decision, 'EUR_USD'), ['top_k', 'bounds_relaxed', 'capped']);
  // Nothing eligible: flat.
  assert.deepEqual(allocate(initialAllocatorState(), { now: T0, blob: blobOf(T0, {}) }, CFG).decision.weights, []);
});

test('ramp: increases at most PM_RAMP_STEP_PCT per ALLOC_INTERVAL_SEC (pro rata), decreases at once', () => {
  const cfg = cfgOf({ PM_RAMP_STEP_PCT: 0.03 });
  const b = (t: number) => blobOf(t, { EUR_USD: { calmar: 1 } });
  const steps = run([
    { now: T0, blob: b(T0) },                      // first decision: a full step
    { now: T0 + MIN, blob: b(T0 + MIN) },          // one interval later: another
    { now: T0 + 90 * SEC, blob: b(T0 + 90 * SEC) }, // half an interval: half a step
    { now: T0 + 90 * SEC, blob: b(T0 + 90 * SEC) }, // no time passed: nothing
    { now: T0 + 150 * SEC, blob: b(T0 + 150 * SEC) }, // 0.025 short of the target, within one step
  ], cfg);
  const w = steps.map((s) => s.decision.weights[0]!);
  [0.03, 0.06, 0.075, 0.075, 0.1].forEach((x, i) => near(w[i]!.weight, x));
  assert.deepEqual(w.map((x) => x.reasons.includes('ramp')), [true, true, true, true, false]);
  near(steps[2]!.details.rampFraction, 0.5);
  // Decreases are immediate: the instrument leaves, its weight is 0 at once; a lower cap applies at once.
  const last = steps[4]!.state;
  assert.deepEqual(allocate(last, { now: T0 + 151 * SEC, blob: blobOf(T0 + 151 * SEC, {}) }, cfg).decision.weights, [{ instrument: 'EUR_USD', weight: 0, reasons: ['ineligible'] }]);
  near(allocate(last, { now: T0 + 151 * SEC, blob: b(T0 + 151 * SEC) }, cfgOf({ PM_RAMP_STEP_PCT: 0.03, PM_MAX_PER_POS_PCT: 0.02 })).decision.weights[0]!.weight, 0.02);
});

test('kill switch (KILL_SWITCH or Redis ops:kill_switch) blocks every increase and lets reductions through', () => {
  const cfg = cfgOf({ PM_RAMP_STEP_PCT: 0.05 });
  const [start] = run([{ now: T0, blob: blobOf(T0, { AUD_USD: { calmar: 2 }, EUR_USD: { calmar: 1 } }) }], cfg);
  nearAll(start!.state.weights, { AUD_USD: 0.05, EUR_USD: 0.05 });
  const t = T0 + MIN;
  const blob = blobOf(t, { AUD_USD: { calmar: 2 }, USD_JPY: { calmar: 1 } }); // EUR_USD leaves, USD_JPY enters
  const killed = allocate(start!.state, { now: t, blob, killSwitch: true }, cfg);
  assert.equal(killed.decision.kill_switch, true);
  assert.deepEqual(killed.decision.weights.map((w) => [w.instrument, w.weight, w.reasons]), [
    ['AUD_USD', 0.05, ['top_k', 'capped', 'kill_switch']], // would ramp to 0.10 (two of K = 3 selected: capped at 0.30/3): held
    ['EUR_USD', 0, ['ineligible']],                        // reduction applies
    ['USD_JPY', 0, ['top_k', 'capped', 'kill_switch']],    // no new position
  ]);
  // The environment's KILL_SWITCH alone does the same, and Redis cannot release it.
  const env = allocate(start!.state, { now: t, blob, killSwitch: false }, cfgOf({ PM_RAMP_STEP_PCT: 0.05, KILL_SWITCH: true })).decision;
  assert.deepEqual(weightsOf(env), weightsOf(killed.decision));
  assert.equal(env.kill_switch, true);
  // A lower target still reduces under the kill switch.
  near(weightsOf(allocate(start!.state, { now: t, blob, killSwitch: true, overlay: { AUD_USD: 0.2 } }, cfg).decision).AUD_USD, 0.02);
  // Released: increases resume at the ramp.
  const back = allocate(killed.state, { now: t + MIN, blob: blobOf(t + MIN, { AUD_USD: { calmar: 2 }, USD_JPY: { calmar: 1 } }), killSwitch: false }, cfg).decision;
  nearAll(weightsOf(back), { AUD_USD: 0.1, USD_JPY: 0.05 });
  assert.equal(back.kill_switch, false);
});

test('margin hysteresis: increases pause at utilisation ≥ MARGIN_HYST_HIGH and resume only below MARGIN_HYST_LOW', () => {
  const cfg = cfgOf({ PM_RAMP_STEP_PCT: 0.01 }); // LOW 0.25, HIGH 0.30
  const seq = [0.2999, 0.3, 0.27, 0.25, null, 0.2499, 0.31, undefined, 0.1];
  let state = initialAllocatorState();
  const seen: [boolean, number, boolean][] = [];
  seq.forEach((u, i) => {
    const t = T0 + i * MIN;
    const s = allocate(state, { now: t, blob: blobOf(t, { EUR_USD: { calmar: 1 } }), marginUtilisation: u }, cfg);
    const w = s.decision.weights[0]!;
    seen.push([s.state.marginPaused, Number(w.weight.toFixed(6)), w.reasons.includes('margin_pause')]);
    state = s.state;
  });
  assert.deepEqual(seen, [
    [false, 0.01, false], // just below HIGH: increases
    [true, 0.01, true],   // at HIGH: paused
    [true, 0.01, true],   // inside the band: stays paused
    [true, 0.01, true],   // at LOW: not below it, stays paused
    [true, 0.01, true],   // unknown: the latch holds
    [false, 0.02, false], // below LOW: resumed
    [true, 0.02, true],
    [true, 0.02, true],
    [false, 0.03, false],
  ]);
  // While paused, reductions apply.
  const paused = { ...state, marginPaused: true, weights: { EUR_USD: 0.1 } };
  const t = T0 + 20 * MIN;
  near(allocate(paused, { now: t, blob: blobOf(t, { EUR_USD: { calmar: 1 } }), marginUtilisation: 0.5 }, cfgOf({ PM_MAX_PER_POS_PCT: 0.04 })).decision.weights[0]!.weight, 0.04);
  assert.deepEqual(allocate(paused, { now: t, blob: blobOf(t, {}), marginUtilisation: 0.5 }, cfg).state.weights, {});
  // The latch alone.
  const band = { marginHystLow: 0.25, marginHystHigh: 0.3 };
  assert.deepEqual([nextMarginLatch(false, 0.3, band), nextMarginLatch(true, 0.25, band), nextMarginLatch(true, 0.2499, band), nextMarginLatch(false, 0.28, band)], [true, true, false, false]);
  assert.throws(() => nextMarginLatch(false, NaN, band), /marginUtilisation NaN must be finite/);
});

test('overlay hook: a per-instrument multiplier on the capped target, before the cost chain', () => {
  const cfg = cfgOf({ COST_SENSITIVITY: 0.5 });
  const s = allocate(initialAllocatorState(), { now: T0, blob: blobOf(T0, ABC), overlay: { EUR_USD: 0.5, USD_JPY: 0 } }, cfg);
  near(s.details.preOverlay.EUR_USD, 0.1);
  near(s.details.cost.EUR_USD!.targetUsd, 500, 1e-9); // the chain prices the overlaid target: 0.05 · 10 000
  near(s.details.targets.EUR_USD, 0.05 * (1 - 0.5 * (1 + 0.5 + 0.1 * 0.5) / 100));
  assert.deepEqual(reasonsOf(s.decision, 'EUR_USD'), ['top_k', 'overlay', 'cost']);
  assert.deepEqual([weightsOf(s.decision).USD_JPY, reasonsOf(s.decision, 'USD_JPY')], [0, ['top_k', 'overlay']]);
  assert.throws(() => allocate(initialAllocatorState(), { now: T0, blob: blobOf(T0, ABC), overlay: { EUR_USD: 1.5 } }, cfg), /overlay multiplier 1.5 of EUR_USD must be in \[0, 1\]/);
});

test('calibrations and depth reach each instrument\'s cost chain, with its COST_PER_SYMBOL_JSON overrides', () => {
  const cfg = resolveAllocatorConfig({ PM_RAMP_STEP_PCT: 1, COST_PER_SYMBOL_JSON: { USD_JPY: { fee_bps: 20 } }, LIQUIDITY_DEPTH_USD_TARGET: 50_000 }, {});
  const cal = (fill: number): CostCalibration => ({ instrument: 'AUD_USD', ts: T0, spread_bps_ewma: 1, volume_usd_ewma: 1e6, slippage_bps_ewma: 0.4, fill_rate_ewma: fill, turnover_usd_ewma: 100, k_eff: 0.2, cap_eff_bps: 5, samples: 50 });
  const input: AllocatorInput = { now: T0, blob: blobOf(T0, ABC), calibrations: { AUD_USD: cal(0.1) }, depthUsd: { EUR_USD: 25_000 } };
  const s = allocate(initialAllocatorState(), input, cfg);
  for (const i of ['AUD_USD', 'EUR_USD', 'USD_JPY']) {
    const direct = applyCostChain(costParamsFor(cfg.cost, i), { weight: 0.1, budgetUsd: 10_000, calibration: i === 'AUD_USD' ? cal(0.1) : null, depthUsd: i === 'EUR_USD' ? 25_000 : null });
    near(weightsOf(s.decision)[i], direct.weight, 1e-15);
  }
  assert.deepEqual(reasonsOf(s.decision, 'AUD_USD'), ['top_k', 'cost', 'fill_rate']);
  assert.deepEqual(reasonsOf(s.decision, 'EUR_USD'), ['top_k', 'cost', 'liquidity']);
  assert.equal(s.details.cost.AUD_USD!.calibratedK, true);
  assert.equal(s.details.cost.USD_JPY!.costBps, 20 + 0.5 + 0.1);
});

test('the decision is a valid alloc.weights.v1 record with every field of the schema', () => {
  const schema = JSON.parse(readFileSync(path.join(import.meta.dirname, '../../../schemas/avro/allocation.avsc'), 'utf8'));
  const type = avro.Type.forSchema(schema);
  const [a, b] = run([
    { now: T0, blob: blobOf(T0, ABC), killSwitch: true },
    { now: T0 + 10 * MIN, blob: blobOf(T0, ABC) },
  ]);
  for (const d of [a!.decision, b!.decision]) {
    assert.ok(type.isValid(d, { errorHook: (p) => assert.fail(`invalid at ${p.join('.')}`) }));
    assert.deepEqual(Object.keys(d).sort(), schema.fields.map((f: { name: string }) => f.name).sort());
    assert.equal(d.config_hash, CFG.configHash);
    assert.equal(d.portfolio, 'main');
    assert.equal(d.interval_sec, 60);
    for (const w of d.weights) for (const r of w.reasons) assert.ok((ALLOCATION_REASONS as readonly string[]).includes(r));
  }
});

test('seq rises by one per decision; the state is plain JSON and a replay is bit-identical', () => {
  const next = rng(42);
  const names = ['AUD_USD', 'EUR_JPY', 'EUR_USD', 'GBP_USD', 'NZD_USD', 'USD_CAD', 'USD_CHF', 'USD_JPY'];
  const inputs: AllocatorInput[] = [];
  let blobTs = T0;
  for (let i = 0; i < 60; i++) {
    const now = T0 + i * 30 * SEC;
    if (i < 20 || i > 30) blobTs = now; // the evaluator stalls for 5 minutes: the blob goes stale
    inputs.push({
      now,
      blob: blobOf(blobTs, Object.fromEntries(names.map((n) => [n, { calmar: next() * 2 - 0.2, hazard: next(), eligible: next() < 0.6 }]))),
      vols: Object.fromEntries(names.map((n) => [n, 1e-4 + next() * 1e-3])),
      killSwitch: next() < 0.1,
      marginUtilisation: next() < 0.3 ? null : next() * 0.4,
    });
  }
  const cfg = cfgOf({ ALLOC_SIZING_MODE: 'risk_parity', PM_RAMP_STEP_PCT: 0.04, ALLOC_TOP_K: 4 });
  const live = run(inputs, cfg);
  assert.deepEqual(live.map((s) => s.decision.seq), Array.from({ length: 60 }, (_, i) => i + 1));
  // A restart at every step from the JSON of the stored state gives the same bytes.
  let state = initialAllocatorState();
  inputs.forEach((input, i) => {
    const restored = JSON.parse(JSON.stringify(state)) as AllocatorState;
    const s = allocate(restored, input, cfg);
    assert.equal(JSON.stringify(s.decision), JSON.stringify(live[i]!.decision), `decision ${i}`);
    state = s.state;
  });
  assert.ok(live.some((s) => s.decision.stale) && live.some((s) => !s.decision.stale), 'the script covers both');
});

test('invariants on random inputs (seeded): total ≤ target, caps, ramp, kill switch, stale hold, state = decision', () => {
  const next = rng(20260105);
  const names = Array.from({ length: 12 }, (_, i) => `X${String.fromCharCode(65 + i)}_USD`);
  for (let c = 0; c < 40; c++) {
    const k = 1 + Math.floor(next() * 6);
    const mode = (['equal', 'inverse_vol', 'risk_parity', 'manual'] as const)[Math.floor(next() * 4)]!;
    const target = 0.05 + next() * 0.5;
    const cfg = resolveAllocatorConfig({
      ALLOC_TOP_K: k, ALLOC_SIZING_MODE: mode, RISK_ALLOC_TARGET_PCT: target, PM_MAX_PER_POS_PCT: next() * target,
      PM_RAMP_STEP_PCT: 0.001 + next() * 0.1, ALLOC_MIN_WEIGHT: next() / k / 2, ALLOC_MAX_WEIGHT: Math.min(1, 1 / k + next()),
      ALLOC_MANUAL_WEIGHTS_JSON: Object.fromEntries(names.filter((n, i) => i === 0 || next() < 0.5).map((n) => [n, next() + 0.01])),
      ALLOC_INTERVAL_SEC: 30 + Math.floor(next() * 90), COST_MIN_GUARD_FACTOR: next() < 0.5 ? 0 : next(),
      TURNOVER_SENSITIVITY: next(), LIQUIDITY_DEPTH_USD_TARGET: next() < 0.5 ? 0 : 1e5,
    }, {});
    const cap = Math.min(cfg.targetPct / cfg.topK, cfg.maxPerPosPct);
    let state = initialAllocatorState();
    let now = T0;
    for (let i = 0; i < 40; i++) {
      now += Math.floor(next() * 120) * SEC;
      const blobTs = now - Math.floor(next() * 240) * SEC;
      const input: AllocatorInput = {
        now,
        blob: next() < 0.05 ? null : blobOf(blobTs, Object.fromEntries(names.filter(() => next() < 0.8).map((n) => [n, {
          calmar: next() * 3 - 1, hazard: next(), eligible: next() < 0.7, ...(next() < 0.1 ? { cooldownUntil: blobTs + 1 } : {}),
        }]))),
        vols: Object.fromEntries(names.filter(() => next() < 0.9).map((n) => [n, next() * 0.01])),
        correlations: { [names[0]!]: { [names[1]!]: 0.6 }, [names[2]!]: { [names[3]!]: -0.4 } },
        calibrations: Object.fromEntries(names.filter(() => next() < 0.5).map((n) => [n, {
          instrument: n, ts: now, spread_bps_ewma: next() * 5, volume_usd_ewma: next() * 5000, slippage_bps_ewma: 1,
          fill_rate_ewma: next(), turnover_usd_ewma: next() * 3000, k_eff: next() < 0.5 ? null : next(), cap_eff_bps: next() * 60, samples: 40,
        }])),
        depthUsd: Object.fromEntries(names.filter(() => next() < 0.5).map((n) => [n, next() * 2e5])),
        killSwitch: next() < 0.15,
        marginUtilisation: next() < 0.2 ? null : next() * 0.5,
        overlay: Object.fromEntries(names.filter(() => next() < 0.3).map((n) => [n, next()])),
      };
      const s = allocate(state, input, cfg);
      const d = s.decision;
      const what = `case ${c} step ${i}`;
      assert.equal(d.seq, state.seq + 1, what);
      assert.deepEqual(d.weights.map((w) => w.instrument), [...d.weights.map((w) => w.instrument)].sort(), what);
      assert.equal(d.total, d.weights.reduce((x, w) => x + w.weight, 0), what);
      assert.deepEqual(s.state.weights, Object.fromEntries(d.weights.filter((w) => w.weight > 0).map((w) => [w.instrument, w.weight])), what);
      if (d.stale) {
        assert.deepEqual(s.state.weights, state.weights, what);
      } else {
        assert.ok(d.total <= cfg.targetPct + 1e-9, `${what}: total ${d.total}`);
        const frac = state.lastTs === null ? 1 : Math.min(1, (now - state.lastTs) / (cfg.intervalSec * 1000));
        for (const w of d.weights) {
          const prev = state.weights[w.instrument] ?? 0;
          assert.ok(w.weight >= 0 && w.weight <= cap + 1e-12, `${what}: ${w.instrument} ${w.weight} > cap ${cap}`);
          assert.ok(w.weight - prev <= cfg.rampStepPct * frac + 1e-12, `${what}: ${w.instrument} rose ${w.weight - prev}`);
          if (d.kill_switch || s.state.marginPaused) assert.ok(w.weight <= prev, `${what}: ${w.instrument} rose while blocked`);
          assert.ok(w.reasons.length > 0, what);
        }
        assert.ok(s.details.selected.length <= k, what);
      }
      state = s.state;
    }
  }
});

