import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyCostChain, costAttenuation, fillRateAttenuation, liquidityAttenuation, turnoverFactor, COST_STAGES,
  type CostInputs, type CostParams,
} from '../../../streams/allocation/cost-chain.ts';
import { DEFAULT_ALLOCATOR_CONFIG } from '../../../streams/allocation/config.ts';

/** The defaults with every stage neutral, so each test turns on the one it checks. */
const OFF: CostParams = {
  ...DEFAULT_ALLOCATOR_CONFIG.cost.defaults,
  costSensitivity: 0, fillRateSensitivity: 0, liquiditySensitivity: 0, turnoverSensitivity: 0, minGuardFactor: 0,
};
type Cal = NonNullable<CostInputs['calibration']>;
const NO_CAL: Cal = { spread_bps_ewma: null, volume_usd_ewma: null, fill_rate_ewma: null, turnover_usd_ewma: null, k_eff: null, cap_eff_bps: null };
/** weight 0.1 of a $10 000 budget: target_usd = 1000. */
const at = (calibration: Partial<Cal> | null = null, depthUsd: number | null = null): CostInputs => ({
  weight: 0.1, budgetUsd: 10_000, calibration: calibration && { ...NO_CAL, ...calibration }, depthUsd,
});
const near = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('L6 cost stage, static knobs: slippage = base + k·t/1000, cost = fee + slippage, attenuation = 1 − s·min(1, cost/100)', () => {
  const r = applyCostChain({ ...OFF, costSensitivity: 0.5 }, at());
  // fee 1.0 + (0.5 + 0.1 · 1000/1000) = 1.6 bps → 1 − 0.5 · 0.016 = 0.992
  assert.deepEqual([r.targetUsd, r.k, r.capBps, r.calibratedK, r.calibratedCap], [1000, 0.1, 50, false, false]);
  near(r.slippageBps, 0.6);
  near(r.costBps, 1.6);
  near(r.costAttenuation, 0.992);
  near(r.weight, 0.0992);
  // min(1, cost/100): beyond 100 bps the attenuation is 1 − sensitivity, never negative.
  assert.equal(costAttenuation(0.5, 250), 0.5);
  assert.equal(costAttenuation(1, 100), 0);
  assert.equal(costAttenuation(0, 1e6), 1);
  // A per-symbol fee (fee_bps) enters the cost (L6: fee_bps = override(sym).fee_bps | fee_bps_default).
  near(applyCostChain({ ...OFF, costSensitivity: 0.5, feeBps: 9.4 }, at()).costAttenuation, 0.95);
});

test('L6.1: half the calibrated spread floors the slippage (USE_SHADOW_SPREAD), low volume doubles k (USE_SHADOW_VOLUME)', () => {
  const p = { ...OFF, costSensitivity: 0.5 };
  near(applyCostChain(p, at({ spread_bps_ewma: 3 })).slippageBps, 1.5 + 0.1);
  near(applyCostChain(p, at({ spread_bps_ewma: 0.4 })).slippageBps, 0.5 + 0.1); // half-spread below the base
  near(applyCostChain({ ...p, useShadowSpread: false }, at({ spread_bps_ewma: 3 })).slippageBps, 0.6);
  near(applyCostChain(p, at({ volume_usd_ewma: 999 })).slippageBps, 0.5 + 0.2);
  near(applyCostChain(p, at({ volume_usd_ewma: 1000 })).slippageBps, 0.6); // "below" MIN_VOLUME_USD is strict
  near(applyCostChain({ ...p, useShadowVolume: false }, at({ volume_usd_ewma: 10 })).slippageBps, 0.6);
  near(applyCostChain(p, at()).slippageBps, 0.6); // unknown volume: no doubling
  // Capped at MAX_SLIPPAGE_BPS_CAP.
  near(applyCostChain({ ...p, slippageKBpsPerKusd: 100 }, at()).slippageBps, 50);
});

test('L6.2: calibrated k_eff and cap_eff_bps replace the static k and cap when present', () => {
  const p = { ...OFF, costSensitivity: 0.5 };
  const cal = applyCostChain(p, at({ k_eff: 0.35, cap_eff_bps: 60 }));
  assert.deepEqual([cal.k, cal.capBps, cal.calibratedK, cal.calibratedCap], [0.35, 60, true, true]);
  near(cal.slippageBps, 0.5 + 0.35);
  // min(max(base, spread/2) + k_eff·(t/1000)·vol_factor, cap_eff): a low cap_eff binds below MAX_SLIPPAGE_BPS_CAP.
  near(applyCostChain(p, at({ k_eff: 0.35, cap_eff_bps: 0.7, volume_usd_ewma: 10 })).slippageBps, 0.7);
  near(applyCostChain(p, at({ k_eff: 0.35, spread_bps_ewma: 2, volume_usd_ewma: 10 })).slippageBps, 1 + 0.7);
  // Only one of them calibrated (ETHUSDT in the seed's apply example): the other stays static.
  const kOnly = applyCostChain(p, at({ k_eff: 0.28 }));
  assert.deepEqual([kOnly.k, kOnly.capBps], [0.28, 50]);
  // null / non-finite fields are absent.
  assert.deepEqual([applyCostChain(p, at({ k_eff: NaN })).k, applyCostChain(p, at({ k_eff: null })).k], [0.1, 0.1]);
});

test('L6.3 fill-rate stage: 1 − sensitivity·max(0, floor − r); r = 1 when unknown', () => {
  near(fillRateAttenuation(0.2, 0.5, 0.5), 0.85);
  assert.equal(fillRateAttenuation(0.6, 0.5, 0.5), 1);
  assert.equal(fillRateAttenuation(null, 0.5, 1), 1);
  assert.equal(fillRateAttenuation(0, 1, 1), 0);
  const r = applyCostChain({ ...OFF, fillRateFloor: 0.5, fillRateSensitivity: 0.5 }, at({ fill_rate_ewma: 0.2 }));
  assert.equal(r.fillRate, 0.2);
  near(r.fillRateAttenuation, 0.85);
  near(r.weight, 0.085);
});

test('L6.4 worked example: depth 25 000 vs target 50 000, sensitivity 0.5, floor 0.6 → liquidity_factor 0.6, attenuation 0.8', () => {
  assert.deepEqual(liquidityAttenuation(25_000, 50_000, 0.5, 0.6), { factor: 0.6, attenuation: 0.8 });
  // target_usd is multiplied by 0.8.
  const r = applyCostChain({ ...OFF, liquidityDepthUsdTarget: 50_000, liquiditySensitivity: 0.5, liquidityMinFloor: 0.6 }, at(null, 25_000));
  assert.deepEqual([r.liquidityFactor, r.liquidityAttenuation], [0.6, 0.8]);
  near(r.weight, 0.08);
  // Above the floor: raw itself; at or above the target: 1; target 0 (off) or unknown depth: 1.
  assert.deepEqual(liquidityAttenuation(40_000, 50_000, 0.5, 0.6), { factor: 0.8, attenuation: 0.9 });
  assert.deepEqual(liquidityAttenuation(90_000, 50_000, 0.5, 0.6).attenuation, 1);
  assert.deepEqual(liquidityAttenuation(1, 0, 0.5, 0.6).attenuation, 1);
  assert.deepEqual(liquidityAttenuation(null, 50_000, 0.5, 0.6).attenuation, 1);
});

test('L7 turnover stage: r = turnover/max(1, budget·weight), raw = clamp01(1 − r), factor = max(floor, 1 − s·(1 − raw))', () => {
  near(turnoverFactor(500, 1000, 0.5, 0.5), 0.75);
  assert.equal(turnoverFactor(500, 1000, 0.5, 0.9), 0.9);
  assert.equal(turnoverFactor(5000, 1000, 1, 0.2), 0.2); // r > 1: raw 0, the floor holds
  assert.equal(turnoverFactor(null, 1000, 1, 0), 1);
  assert.equal(turnoverFactor(500, 0.5, 0.5, 0), 0.5); // max(1, ·): a tiny target does not divide by ~0
  // budget·weight is the target the chain was given: 0.1 · 10 000 = 1000.
  const r = applyCostChain({ ...OFF, turnoverSensitivity: 0.5, turnoverFloor: 0.5 }, at({ turnover_usd_ewma: 500 }));
  near(r.turnoverFactor, 0.75);
  near(r.weight, 0.075);
});

test('stages run in the seeds\' order, each on the weight the previous one left; min_guard comes after the final clamp', () => {
  const p: CostParams = {
    ...OFF, costSensitivity: 0.5, fillRateFloor: 0.5, fillRateSensitivity: 0.5,
    liquidityDepthUsdTarget: 50_000, liquiditySensitivity: 0.5, liquidityMinFloor: 0.6, turnoverSensitivity: 0.5, turnoverFloor: 0.5,
  };
  const r = applyCostChain(p, at({ fill_rate_ewma: 0.2, turnover_usd_ewma: 500 }, 25_000));
  assert.deepEqual(r.stages.map((s) => s.stage), [...COST_STAGES]);
  assert.deepEqual(COST_STAGES, ['cost', 'fill_rate', 'liquidity', 'turnover', 'final_clamp', 'min_guard']);
  const expected = [0.992, 0.85, 0.8, 0.75, 1, 1];
  let w = 0.1;
  r.stages.forEach((s, i) => {
    near(s.factor, expected[i]!);
    w *= expected[i]!;
    near(s.weight, w, 1e-15);
  });
  near(r.weight, 0.1 * 0.992 * 0.85 * 0.8 * 0.75);
  // A guard at 0.9 of the given weight: stages 1–5 unchanged, the last one lifts the result (it runs last).
  const g = applyCostChain({ ...p, minGuardFactor: 0.9 }, at({ fill_rate_ewma: 0.2, turnover_usd_ewma: 500 }, 25_000));
  assert.deepEqual(g.stages.slice(0, 5), r.stages.slice(0, 5));
  near(g.weight, 0.09);
  assert.ok(g.stages[5]!.factor > 1);
  // A guard below what the chain keeps changes nothing.
  assert.equal(applyCostChain({ ...p, minGuardFactor: 0.1 }, at({ fill_rate_ewma: 0.2, turnover_usd_ewma: 500 }, 25_000)).weight, r.weight);
});

test('the final clamp keeps the weight in [0, the weight given]; a zero weight stays zero; bad inputs are caller bugs', () => {
  const r = applyCostChain(OFF, at());
  assert.equal(r.weight, 0.1);
  assert.deepEqual(r.stages.map((s) => s.factor), [1, 1, 1, 1, 1, 1]);
  const z = applyCostChain({ ...OFF, costSensitivity: 1, minGuardFactor: 0.5 }, { ...at(), weight: 0 });
  assert.equal(z.weight, 0);
  assert.throws(() => applyCostChain(OFF, { ...at(), weight: -0.1 }), /weight -0.1 must be finite and ≥ 0/);
  assert.throws(() => applyCostChain(OFF, { ...at(), budgetUsd: 0 }), /budgetUsd 0 must be finite and > 0/);
});

test('the default chain: cost and fill rate on, liquidity and turnover neutral until configured', () => {
  const d = DEFAULT_ALLOCATOR_CONFIG.cost.defaults;
  const r = applyCostChain(d, at({ fill_rate_ewma: 0.3, turnover_usd_ewma: 1e9 }, 1));
  assert.deepEqual(r.stages.map((s) => Number(s.factor.toFixed(6))), [0.992, 0.9, 1, 1, 1, 1]);
});
