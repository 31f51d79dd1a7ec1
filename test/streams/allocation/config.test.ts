import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  ALLOCATION_CONFIG, ALLOCATOR_KNOBS, COST_KNOBS, DEFAULT_ALLOCATOR_CONFIG, PER_SYMBOL_FIELDS, allocatorConfigHash, costParamsFor, resolveAllocatorConfig,
} from '../../../streams/allocation/config.ts';
import { GATES_KNOBS, DEFAULT_GATES_CONFIG } from '../../../streams/gates/config.ts';
import { CALIBRATION_KNOBS } from '../../../streams/calibration/config.ts';
import { problemsOf } from '../../support/config-problems.ts';

test('defaults are the seeds\' values and the documented choices', () => {
  const { configHash, ...rest } = DEFAULT_ALLOCATOR_CONFIG;
  assert.deepEqual(rest, {
    portfolio: 'main', intervalSec: 60, topK: 3, scoreWeightHazard: 0.5, targetPct: 0.3, maxPerPosPct: 0.1, rampStepPct: 0.05,
    blobMaxAgeSec: 180, killSwitch: false, marginHystLow: 0.25, marginHystHigh: 0.3, budgetUsd: 10_000,
    sizing: { mode: 'equal', minWeight: 0.02, maxWeight: 0.5, manualWeights: {} },
    cost: {
      defaults: {
        feeBps: 1, slippageBpsBase: 0.5, slippageKBpsPerKusd: 0.1, costSensitivity: 0.5, useShadowSpread: true, useShadowVolume: true,
        minVolumeUsd: 1000, maxSlippageBpsCap: 50, fillRateFloor: 0.5, fillRateSensitivity: 0.5, liquidityDepthUsdTarget: 0,
        liquiditySensitivity: 0.5, liquidityMinFloor: 0.6, turnoverSensitivity: 0, turnoverFloor: 0.5, minGuardFactor: 0,
      },
      perSymbol: {},
    },
  });
  assert.match(configHash, /^[0-9a-f]{64}$/);
});

test('knobs shared with other processors are one declaration: GATES_BLOB_MAX_AGE_SEC (gates), MAX_SLIPPAGE_BPS_CAP (calibration)', () => {
  assert.equal(ALLOCATOR_KNOBS.GATES_BLOB_MAX_AGE_SEC, GATES_KNOBS.GATES_BLOB_MAX_AGE_SEC);
  assert.equal(COST_KNOBS.MAX_SLIPPAGE_BPS_CAP, CALIBRATION_KNOBS.MAX_SLIPPAGE_BPS_CAP);
  assert.equal(DEFAULT_ALLOCATOR_CONFIG.blobMaxAgeSec, DEFAULT_GATES_CONFIG.blobMaxAgeSec);
  // Every knob documents itself.
  for (const [key, knob] of Object.entries(ALLOCATION_CONFIG)) assert.ok(knob.doc.length > 10, key);
});

test('environment strings and explicit values resolve alike', () => {
  const env = resolveAllocatorConfig({}, {
    ALLOC_TOP_K: '5', RISK_ALLOC_TARGET_PCT: '0.2', KILL_SWITCH: 'on', ALLOC_SIZING_MODE: 'risk_parity', USE_SHADOW_SPREAD: 'false',
    ALLOC_MANUAL_WEIGHTS_JSON: '{"USD_JPY":1,"EUR_USD":2}', COST_PER_SYMBOL_JSON: '{"GBP_JPY":{"fee_bps":2.5,"turnover_floor":0.8}}',
  });
  assert.deepEqual([env.topK, env.targetPct, env.killSwitch, env.sizing.mode, env.cost.defaults.useShadowSpread], [5, 0.2, true, 'risk_parity', false]);
  assert.deepEqual(env.sizing.manualWeights, { EUR_USD: 2, USD_JPY: 1 });
  const explicit = resolveAllocatorConfig({
    ALLOC_TOP_K: 5, RISK_ALLOC_TARGET_PCT: 0.2, KILL_SWITCH: true, ALLOC_SIZING_MODE: 'risk_parity', USE_SHADOW_SPREAD: false,
    ALLOC_MANUAL_WEIGHTS_JSON: { EUR_USD: 2, USD_JPY: 1 }, COST_PER_SYMBOL_JSON: { GBP_JPY: { turnover_floor: 0.8, fee_bps: 2.5 } },
  }, {});
  assert.deepEqual(explicit, env);
  // COST_PER_SYMBOL_JSON over the globals, per instrument.
  assert.deepEqual(costParamsFor(env.cost, 'GBP_JPY'), { ...env.cost.defaults, feeBps: 2.5, turnoverFloor: 0.8 });
  assert.equal(costParamsFor(env.cost, 'EUR_USD'), env.cost.defaults);
});

test('out-of-range scalars name the knob and their range', () => {
  const first = (env: NodeJS.ProcessEnv) => problemsOf(() => resolveAllocatorConfig({}, env))[0]!;
  assert.match(first({ ALLOC_TOP_K: '0' }), /^ALLOC_TOP_K ="0": must be ≥ 1; accepted range \[1, 1000\]/);
  assert.match(first({ ALLOC_TOP_K: '2.5' }), /^ALLOC_TOP_K ="2.5": must be a whole number/);
  assert.match(first({ RISK_ALLOC_TARGET_PCT: '30' }), /^RISK_ALLOC_TARGET_PCT ="30": must be ≤ 1; accepted range \[0, 1\]/);
  assert.match(first({ PM_RAMP_STEP_PCT: '0' }), /^PM_RAMP_STEP_PCT ="0": must be ≥ 0.000001/);
  assert.match(first({ GATES_BLOB_MAX_AGE_SEC: '0' }), /^GATES_BLOB_MAX_AGE_SEC ="0": must be ≥ 1/);
  assert.match(first({ ALLOC_SIZING_MODE: 'hrp' }), /^ALLOC_SIZING_MODE ="hrp": must be one of equal, inverse_vol, risk_parity, manual/);
  assert.match(first({ KILL_SWITCH: 'maybe' }), /^KILL_SWITCH ="maybe": must be one of 1\/0, true\/false/);
  assert.match(first({ COST_SENSITIVITY: '1.5' }), /^COST_SENSITIVITY ="1.5": must be ≤ 1/);
  assert.match(first({ LIQUIDITY_MIN_FLOOR: '-0.1' }), /^LIQUIDITY_MIN_FLOOR ="-0.1": must be ≥ 0/);
});

test('knobs that contradict each other are named with the knob they depend on and a value that works', () => {
  assert.deepEqual(problemsOf(() => resolveAllocatorConfig({}, { MARGIN_HYST_LOW: '0.3' })), [
    'MARGIN_HYST_LOW =0.3: must be < MARGIN_HYST_HIGH=0.3, else the pause has no hysteresis band; e.g. MARGIN_HYST_LOW=0.25',
  ]);
  assert.deepEqual(problemsOf(() => resolveAllocatorConfig({}, { MARGIN_HYST_LOW: '0.5', MARGIN_HYST_HIGH: '0.4' })), [
    'MARGIN_HYST_LOW =0.5: must be < MARGIN_HYST_HIGH=0.4, else the pause has no hysteresis band; e.g. MARGIN_HYST_LOW=0.35',
  ]);
  assert.deepEqual(problemsOf(() => resolveAllocatorConfig({}, { ALLOC_MIN_WEIGHT: '0.4' })), [
    'ALLOC_MIN_WEIGHT =0.4: ALLOC_TOP_K=3 × 0.4 > 1, so the shares cannot sum to 1; lower it to ≤ 0.333333 or lower ALLOC_TOP_K',
  ]);
  assert.deepEqual(problemsOf(() => resolveAllocatorConfig({}, { ALLOC_MIN_WEIGHT: '0.3', ALLOC_MAX_WEIGHT: '0.2' })), [
    'ALLOC_MIN_WEIGHT =0.3: must be ≤ ALLOC_MAX_WEIGHT=0.2',
  ]);
  assert.deepEqual(problemsOf(() => resolveAllocatorConfig({}, { ALLOC_SIZING_MODE: 'manual' })), [
    'ALLOC_MANUAL_WEIGHTS_JSON must give at least one instrument a weight > 0 when ALLOC_SIZING_MODE=manual, e.g. {"EUR_USD":0.6,"USD_JPY":0.4}',
  ]);
  assert.deepEqual(problemsOf(() => resolveAllocatorConfig({}, { ALLOC_PORTFOLIO: 'desk 1' })), [
    'ALLOC_PORTFOLIO ="desk 1": must be 1–64 of A–Z a–z 0–9 _ . - (it is a Kafka record key and a Redis key part)',
  ]);
  // K × max < 1 is allowed: fewer selected than 1/max is handled at run time (bounds_relaxed).
  assert.equal(resolveAllocatorConfig({}, { ALLOC_TOP_K: '1' }).topK, 1);
});

test('JSON knobs: every bad entry named', () => {
  assert.deepEqual(problemsOf(() => resolveAllocatorConfig({}, { ALLOC_MANUAL_WEIGHTS_JSON: '{"EURUSD":1,"EUR_USD":-1,"USD_JPY":"2"}' })), [
    'ALLOC_MANUAL_WEIGHTS_JSON key "EURUSD" is not an instrument name like EUR_USD',
    'ALLOC_MANUAL_WEIGHTS_JSON entry "EUR_USD" must be a number ≥ 0, got -1',
    'ALLOC_MANUAL_WEIGHTS_JSON entry "USD_JPY" must be a number ≥ 0, got "2"',
  ]);
  assert.match(problemsOf(() => resolveAllocatorConfig({}, { ALLOC_MANUAL_WEIGHTS_JSON: '[1]' }))[0]!, /^ALLOC_MANUAL_WEIGHTS_JSON =\[1\]: must be a JSON object/);
  assert.match(problemsOf(() => resolveAllocatorConfig({}, { COST_PER_SYMBOL_JSON: '{bad' }))[0]!, /^COST_PER_SYMBOL_JSON ="\{bad": must be valid JSON/);
  assert.deepEqual(problemsOf(() => resolveAllocatorConfig({}, {
    COST_PER_SYMBOL_JSON: '{"GBPJPY":{},"GBP_JPY":{"fee":1,"cost_sensitivity":2,"fee_bps":"1"},"EUR_USD":3}',
  })), [
    'COST_PER_SYMBOL_JSON key "GBPJPY" is not an instrument name like EUR_USD',
    `COST_PER_SYMBOL_JSON entry "GBP_JPY" field "fee" is not one of ${Object.keys(PER_SYMBOL_FIELDS).join(', ')}`,
    'COST_PER_SYMBOL_JSON entry "GBP_JPY"."cost_sensitivity" must be a number in [0, 1] (as COST_SENSITIVITY), got 2',
    'COST_PER_SYMBOL_JSON entry "GBP_JPY"."fee_bps" must be a number in [0, 10000] (as FEE_BPS_DEFAULT), got "1"',
    'COST_PER_SYMBOL_JSON entry "EUR_USD" must be an object of field → number, e.g. {"fee_bps":2}, got 3',
  ]);
});

test('every problem is reported at once', () => {
  const problems = problemsOf(() => resolveAllocatorConfig({}, {
    ALLOC_TOP_K: 'three', ALLOC_MIN_WEIGHT: '2', FEE_BPS_DEFAULT: '-1', COST_PER_SYMBOL_JSON: '{"x":1}', MARGIN_HYST_LOW: '0.9',
  }));
  assert.deepEqual(problems.map((p) => p.split(' ')[0]), ['ALLOC_TOP_K', 'ALLOC_MIN_WEIGHT', 'FEE_BPS_DEFAULT', 'COST_PER_SYMBOL_JSON']);
  // MARGIN_HYST_LOW=0.9 is in range; its cross check waits until its group (the allocator knobs) resolves: ALLOC_TOP_K is bad.
  const cross = problemsOf(() => resolveAllocatorConfig({}, { ALLOC_MIN_WEIGHT: '0.5', MARGIN_HYST_LOW: '0.9', FEE_BPS_DEFAULT: 'x' }));
  assert.deepEqual(cross.map((p) => p.split(' ')[0]), ['FEE_BPS_DEFAULT', 'MARGIN_HYST_LOW', 'ALLOC_MIN_WEIGHT']);
});

test('config hash: sha256 of the canonical resolved config — same knobs, same hash; any change, another hash', () => {
  const { configHash, ...body } = DEFAULT_ALLOCATOR_CONFIG;
  assert.equal(allocatorConfigHash(DEFAULT_ALLOCATOR_CONFIG), configHash);
  // Canonical: keys sorted at every level, whatever order the object was built in.
  const reordered = Object.fromEntries(Object.entries(body).reverse()) as typeof body;
  assert.equal(allocatorConfigHash(reordered), configHash);
  const canonical = (v: unknown): string => (Array.isArray(v) ? `[${v.map(canonical).join(',')}]`
    : v !== null && typeof v === 'object' ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`
      : JSON.stringify(v));
  assert.equal(configHash, createHash('sha256').update(canonical(body)).digest('hex'));
  // Spelling does not matter: env strings, explicit values, JSON key order.
  const a = resolveAllocatorConfig({}, { ALLOC_TOP_K: '4', COST_PER_SYMBOL_JSON: '{"USD_JPY":{"fee_bps":2,"turnover_floor":0.7},"EUR_USD":{"fee_bps":1.5}}' });
  const b = resolveAllocatorConfig({ ALLOC_TOP_K: 4, COST_PER_SYMBOL_JSON: { EUR_USD: { fee_bps: 1.5 }, USD_JPY: { turnover_floor: 0.7, fee_bps: 2 } } }, {});
  assert.equal(a.configHash, b.configHash);
  // Every knob is in it.
  const changed: Record<string, unknown> = {
    ALLOC_PORTFOLIO: 'desk2', ALLOC_INTERVAL_SEC: 30, ALLOC_TOP_K: 4, ALLOC_SCORE_WEIGHT_HAZARD: 0.4, RISK_ALLOC_TARGET_PCT: 0.25,
    PM_MAX_PER_POS_PCT: 0.09, PM_RAMP_STEP_PCT: 0.04, GATES_BLOB_MAX_AGE_SEC: 200, KILL_SWITCH: true, MARGIN_HYST_LOW: 0.2,
    MARGIN_HYST_HIGH: 0.35, ALLOC_BUDGET_USD: 20_000, ALLOC_SIZING_MODE: 'inverse_vol', ALLOC_MIN_WEIGHT: 0.01, ALLOC_MAX_WEIGHT: 0.6,
    FEE_BPS_DEFAULT: 2, SLIPPAGE_BPS_BASE: 0.6, SLIPPAGE_K_BPS_PER_KUSD: 0.2, COST_SENSITIVITY: 0.4, USE_SHADOW_SPREAD: false,
    USE_SHADOW_VOLUME: false, MIN_VOLUME_USD: 2000, MAX_SLIPPAGE_BPS_CAP: 40, FILL_RATE_FLOOR: 0.4, FILL_RATE_SENSITIVITY: 0.4,
    LIQUIDITY_DEPTH_USD_TARGET: 1, LIQUIDITY_SENSITIVITY: 0.4, LIQUIDITY_MIN_FLOOR: 0.5, TURNOVER_SENSITIVITY: 0.1, TURNOVER_FLOOR: 0.4,
    COST_MIN_GUARD_FACTOR: 0.1, ALLOC_MANUAL_WEIGHTS_JSON: { EUR_USD: 1 }, COST_PER_SYMBOL_JSON: { EUR_USD: { fee_bps: 2 } },
  };
  assert.deepEqual(Object.keys(changed).sort(), Object.keys(ALLOCATION_CONFIG).sort());
  const hashes = new Set([configHash]);
  for (const [key, value] of Object.entries(changed)) hashes.add(resolveAllocatorConfig({ [key]: value }, {}).configHash);
  assert.equal(hashes.size, Object.keys(changed).length + 1);
  // Pinned: a change to any default changes every published config_hash, so it must be deliberate.
  assert.equal(configHash, '956445b7d5fcd698373dbfd49d8b0503d4611736369c47f20a69ba90848a9a7d');
});
