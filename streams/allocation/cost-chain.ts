/**
 * The cost chain (DESIGN §6.3; mm-bot README L6, L6.1, L6.2, L6.3, L6.4, L7):
 * one instrument's target weight, after sizing and caps, shrunk by what it
 * would cost to hold, in the seeds' order —
 *
 *   1. cost       L6/L6.1/L6.2  1 − cost_sensitivity·min(1, cost_bps/100)
 *   2. fill_rate  L6.3          1 − fill_rate_sensitivity·max(0, floor − r)
 *   3. liquidity  L6.4          1 − liquidity_sensitivity·(1 − liquidity_factor)
 *   4. turnover   L7            max(turnover_floor, 1 − sensitivity·(1 − raw))
 *   5. final_clamp              the weight into [0, the weight given]
 *   6. min_guard                at least COST_MIN_GUARD_FACTOR of the weight given
 *
 * Every stage is a factor in [0, 1] on target_usd = weight·budget_usd. The
 * stages that depend on size (cost's slippage, turnover's ratio) read the
 * target the chain was given, as the seeds write them (t_usd at the top of
 * L6; budget·weight in L7), so stages 1–4 commute; only 5 and 6 depend on
 * their place. Every stage's factor is returned for the `allocator_*` gauges
 * (metric names of the seed in each field's comment).
 */
import type { CostCalibration } from '../calibration/calibration.ts';

/** One instrument's cost knobs (COST_* knobs with COST_PER_SYMBOL_JSON over them; config.ts). */
export interface CostParams {
  /** FEE_BPS_DEFAULT or per_symbol fee_bps, bps. */
  feeBps: number;
  /** SLIPPAGE_BPS_BASE, bps. */
  slippageBpsBase: number;
  /** SLIPPAGE_K_BPS_PER_KUSD, bps per $1k: k while the calibration has no k_eff. */
  slippageKBpsPerKusd: number;
  /** COST_SENSITIVITY, [0, 1]. */
  costSensitivity: number;
  /** USE_SHADOW_SPREAD. */
  useShadowSpread: boolean;
  /** USE_SHADOW_VOLUME. */
  useShadowVolume: boolean;
  /** MIN_VOLUME_USD, USD. */
  minVolumeUsd: number;
  /** MAX_SLIPPAGE_BPS_CAP, bps: the slippage cap while the calibration has no cap_eff_bps. */
  maxSlippageBpsCap: number;
  /** FILL_RATE_FLOOR, [0, 1]. */
  fillRateFloor: number;
  /** FILL_RATE_SENSITIVITY, [0, 1]. */
  fillRateSensitivity: number;
  /** LIQUIDITY_DEPTH_USD_TARGET, USD; 0 = stage off. */
  liquidityDepthUsdTarget: number;
  /** LIQUIDITY_SENSITIVITY, [0, 1]. */
  liquiditySensitivity: number;
  /** LIQUIDITY_MIN_FLOOR, [0, 1]. */
  liquidityMinFloor: number;
  /** TURNOVER_SENSITIVITY, [0, 1]; 0 = stage off. */
  turnoverSensitivity: number;
  /** TURNOVER_FLOOR, [0, 1]. */
  turnoverFloor: number;
  /** COST_MIN_GUARD_FACTOR, [0, 1]. */
  minGuardFactor: number;
}

export const COST_STAGES = ['cost', 'fill_rate', 'liquidity', 'turnover', 'final_clamp', 'min_guard'] as const;
export type CostStage = (typeof COST_STAGES)[number];

/** What the chain reads besides the knobs. */
export interface CostInputs {
  /** The weight the chain is given (after sizing, caps and overlay), fraction of margin, ≥ 0. */
  weight: number;
  /** USD a weight of 1 stands for (ALLOC_BUDGET_USD). */
  budgetUsd: number;
  /** The instrument's latest calib.cost.v1, or null: then every calibrated input is absent. */
  calibration: Pick<CostCalibration, 'spread_bps_ewma' | 'volume_usd_ewma' | 'fill_rate_ewma' | 'turnover_usd_ewma' | 'k_eff' | 'cap_eff_bps'> | null;
  /** Book depth, USD (seed liquidity_depth_usd{symbol}), or null when unknown. */
  depthUsd: number | null;
}

export interface StageResult {
  stage: CostStage;
  /** Weight after this stage / weight before it (1 when the weight before is 0). */
  factor: number;
  /** Weight after this stage. */
  weight: number;
}

export interface CostBreakdown {
  /** Pre-chain target_usd = weight·budget_usd. */
  targetUsd: number;
  /** allocator_cost_inputs_spread_bps: the calibrated spread used, or null. */
  spreadBps: number | null;
  /** allocator_cost_inputs_volume_usd: the calibrated volume used, or null. */
  volumeUsd: number | null;
  /** k in bps per $1k before the low-volume doubling: calibrated k_eff or SLIPPAGE_K_BPS_PER_KUSD. */
  k: number;
  /** Slippage cap in bps: calibrated cap_eff_bps or MAX_SLIPPAGE_BPS_CAP. */
  capBps: number;
  /** Whether k / the cap came from the calibration (L6.2). */
  calibratedK: boolean;
  calibratedCap: boolean;
  /** allocator_cost_slippage_bps. */
  slippageBps: number;
  /** allocator_estimated_cost_bps = fee + slippage. */
  costBps: number;
  /** allocator_cost_attenuation. */
  costAttenuation: number;
  /** The fill rate used (1 when unknown, L6.3). */
  fillRate: number;
  /** allocator_fillrate_attenuation. */
  fillRateAttenuation: number;
  /** allocator_liquidity_factor, in [floor, 1]. */
  liquidityFactor: number;
  /** attenuation_liq, the factor on the weight. */
  liquidityAttenuation: number;
  /** allocator_turnover_factor, in [floor, 1]. */
  turnoverFactor: number;
  /** Stage by stage, in COST_STAGES order. */
  stages: StageResult[];
  /** The weight the chain returns. */
  weight: number;
}

// ---- stage formulas (exported for tests and the docs' examples)

/**
 * L6/L6.1/L6.2 slippage, bps: max(base, spread/2 if USE_SHADOW_SPREAD and the
 * spread is known) + k·vol_factor·target_usd/1000, at most the cap; vol_factor
 * = 2 when USE_SHADOW_VOLUME and the volume is known and below MIN_VOLUME_USD.
 */
export function slippageBps(p: CostParams, targetUsd: number, spreadBps: number | null, volumeUsd: number | null, k: number, capBps: number): number {
  let base = p.slippageBpsBase;
  if (p.useShadowSpread && spreadBps !== null) base = Math.max(base, spreadBps / 2);
  const volFactor = p.useShadowVolume && volumeUsd !== null && volumeUsd < p.minVolumeUsd ? 2 : 1;
  return Math.min(base + k * volFactor * (Math.max(0, targetUsd) / 1000), capBps);
}

/** L6: attenuation = max(0, 1 − cost_sensitivity·min(1, cost_bps/100)). */
export function costAttenuation(costSensitivity: number, costBps: number): number {
  return clamp01(1 - costSensitivity * Math.min(1, Math.max(0, costBps) / 100));
}

/** L6.3: attenuation_fill = 1 − sensitivity·max(0, floor − r), in [0, 1]; r = 1 when unknown. */
export function fillRateAttenuation(fillRate: number | null, floor: number, sensitivity: number): number {
  const r = fillRate ?? 1;
  return clamp01(1 - sensitivity * Math.max(0, floor - r));
}

/**
 * L6.4: raw = 1 when depth_target = 0, else min(1, depth/depth_target);
 * liquidity_factor = max(floor, raw); attenuation_liq = 1 − sensitivity·(1 −
 * liquidity_factor). Unknown depth counts as enough (raw = 1), as L6.3 treats
 * an unknown fill rate. Seed example: 25 000 / 50 000, 0.5, 0.6 → 0.6, 0.8.
 */
export function liquidityAttenuation(depthUsd: number | null, depthTarget: number, sensitivity: number, floor: number): { factor: number; attenuation: number } {
  const raw = depthTarget === 0 || depthUsd === null ? 1 : Math.min(1, Math.max(0, depthUsd) / depthTarget);
  const factor = Math.max(floor, raw);
  return { factor, attenuation: clamp01(1 - sensitivity * (1 - factor)) };
}

/**
 * L7: r = turnover_usd / max(1, budget_usd·weight); raw = clamp01(1 − r);
 * turnover_factor = max(floor, 1 − sensitivity·(1 − raw)). Unknown turnover
 * is 0 (no churn seen).
 */
export function turnoverFactor(turnoverUsd: number | null, budgetUsdTimesWeight: number, sensitivity: number, floor: number): number {
  const r = Math.max(0, turnoverUsd ?? 0) / Math.max(1, budgetUsdTimesWeight);
  const raw = clamp01(1 - r);
  return clamp01(Math.max(floor, 1 - sensitivity * (1 - raw)));
}

// ---- the chain

/**
 * Runs the six stages on one instrument's weight. Calibrated k_eff and
 * cap_eff_bps replace SLIPPAGE_K_BPS_PER_KUSD and MAX_SLIPPAGE_BPS_CAP when
 * the calibration has them (L6.2); the calibrated spread, volume, fill rate
 * and turnover feed L6.1, L6.3 and L7. A null or non-finite calibrated field
 * counts as absent.
 */
export function applyCostChain(p: CostParams, inputs: CostInputs): CostBreakdown {
  const w0 = inputs.weight;
  if (!Number.isFinite(w0) || w0 < 0) throw new RangeError(`applyCostChain: weight ${w0} must be finite and ≥ 0`);
  if (!(inputs.budgetUsd > 0) || !Number.isFinite(inputs.budgetUsd)) throw new RangeError(`applyCostChain: budgetUsd ${inputs.budgetUsd} must be finite and > 0`);
  const cal = inputs.calibration;
  const field = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? null : v);
  const spreadBps = field(cal?.spread_bps_ewma);
  const volumeUsd = field(cal?.volume_usd_ewma);
  const kCal = field(cal?.k_eff);
  const capCal = field(cal?.cap_eff_bps);
  const k = kCal ?? p.slippageKBpsPerKusd;
  const capBps = capCal ?? p.maxSlippageBpsCap;
  const targetUsd = w0 * inputs.budgetUsd;

  const slip = slippageBps(p, targetUsd, spreadBps, volumeUsd, k, capBps);
  const costBps = p.feeBps + slip;
  const costAtt = costAttenuation(p.costSensitivity, costBps);
  const fillRate = field(cal?.fill_rate_ewma);
  const fillAtt = fillRateAttenuation(fillRate, p.fillRateFloor, p.fillRateSensitivity);
  const depth = inputs.depthUsd === null || !Number.isFinite(inputs.depthUsd) ? null : inputs.depthUsd;
  const liq = liquidityAttenuation(depth, p.liquidityDepthUsdTarget, p.liquiditySensitivity, p.liquidityMinFloor);
  const turn = turnoverFactor(field(cal?.turnover_usd_ewma), targetUsd, p.turnoverSensitivity, p.turnoverFloor);

  const stages: StageResult[] = [];
  let w = w0;
  const step = (stage: CostStage, next: number) => {
    stages.push({ stage, factor: w > 0 ? next / w : 1, weight: next });
    w = next;
  };
  step('cost', w * costAtt);
  step('fill_rate', w * fillAtt);
  step('liquidity', w * liq.attenuation);
  step('turnover', w * turn);
  // Stages 1–4 only shrink, so this is a guard against rounding and future stages, not a reshaping.
  step('final_clamp', Math.min(w0, Math.max(0, w)));
  step('min_guard', Math.max(w, p.minGuardFactor * w0));

  return {
    targetUsd, spreadBps, volumeUsd, k, capBps, calibratedK: kCal !== null, calibratedCap: capCal !== null,
    slippageBps: slip, costBps, costAttenuation: costAtt, fillRate: fillRate ?? 1, fillRateAttenuation: fillAtt,
    liquidityFactor: liq.factor, liquidityAttenuation: liq.attenuation, turnoverFactor: turn, stages, weight: w,
  };
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
