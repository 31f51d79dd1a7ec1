/**
 * The allocation knobs (DESIGN §6.3; seeds: operations-reference,
 * operations-runbook, allocator-telemetry-log, mm-bot README "Portfolio
 * Allocator", L6–L7), declared once for resolveConfig: explicit value →
 * environment variable → default. The keys are the environment names; the
 * cost-chain knobs are the seed's `portfolio.cost` names in upper case. Every
 * problem — a bad value, a bad JSON entry, two knobs that contradict each
 * other — is reported at once in one ConfigError naming the knob and the fix.
 * Defaults and their reasons: docs/allocation.md "Knobs".
 *
 * The resolved config carries `configHash`: sha256 of its canonical JSON, the
 * `config_hash` of every alloc.weights.v1 record it produces.
 */
import { createHash } from 'node:crypto';
import { resolveConfig, type Resolved, type Spec, collectProblems, type ConfigProblem } from '../runtime/config.ts';
import { ConfigError } from '../runtime/errors.ts';
import { INSTRUMENT_NAME } from '../model/instruments.ts';
import { GATES_KNOBS } from '../gates/config.ts';
import { CALIBRATION_KNOBS } from '../calibration/config.ts';
import { canonicalJson } from '../calibration/snapshot.ts';
import { SIZING_MODES, type SizingMode } from './sizing.ts';
import type { CostParams } from './cost-chain.ts';

/** Allocator-lite (DESIGN §6.3; operations-reference, runbook). */
export const ALLOCATOR_KNOBS = {
  ALLOC_PORTFOLIO: { kind: 'string', default: 'main', doc: 'portfolio name: the key of alloc.weights.v1 and the record\'s `portfolio`, 1–64 of A–Z a–z 0–9 _ . -' },
  ALLOC_INTERVAL_SEC: { kind: 'integer', default: 60, min: 1, max: 86_400, doc: 'seconds of stream time between decisions (runbook: 60), and the period PM_RAMP_STEP_PCT applies to' },
  ALLOC_TOP_K: { kind: 'integer', default: 3, min: 1, max: 1000, doc: 'instruments selected by score (telemetry log: 3 published weights)' },
  ALLOC_SCORE_WEIGHT_HAZARD: { kind: 'number', default: 0.5, min: 0, max: 1000, doc: 'λ of score = calmar − λ·hazard' },
  RISK_ALLOC_TARGET_PCT: { kind: 'number', default: 0.3, min: 0, max: 1, doc: 'total allocation, fraction of margin (operations-reference: ≤ 30 %)' },
  PM_MAX_PER_POS_PCT: { kind: 'number', default: 0.1, min: 0, max: 1, doc: 'largest weight of one instrument, fraction of margin; the cap is min(RISK_ALLOC_TARGET_PCT/ALLOC_TOP_K, this)' },
  PM_RAMP_STEP_PCT: { kind: 'number', default: 0.05, min: 1e-6, max: 1, doc: 'largest increase of one weight per ALLOC_INTERVAL_SEC, fraction of margin (pro rata for closer decisions); decreases are immediate' },
  GATES_BLOB_MAX_AGE_SEC: GATES_KNOBS.GATES_BLOB_MAX_AGE_SEC,
  KILL_SWITCH: { kind: 'boolean', default: false, doc: 'blocks every increase (reductions still apply); OR-ed with Redis ops:kill_switch' },
  MARGIN_HYST_LOW: { kind: 'number', default: 0.25, min: 0, max: 1, doc: 'margin utilisation below which paused increases resume, < MARGIN_HYST_HIGH' },
  MARGIN_HYST_HIGH: { kind: 'number', default: 0.3, min: 0.01, max: 1, doc: 'margin utilisation at or above which increases pause (operations-reference: 0.30)' },
  ALLOC_BUDGET_USD: { kind: 'number', default: 10_000, min: 1, max: 1e12, doc: 'USD a weight of 1 stands for: target_usd = weight × this, the size the cost chain prices (mm-bot portfolio.budget_usd)' },
} as const satisfies Spec;

/** Sizing (mm-bot "Portfolio Allocator": mode, min_weight, max_weight, manual_weights). */
export const SIZING_KNOBS = {
  ALLOC_SIZING_MODE: { kind: 'string', default: 'equal', oneOf: SIZING_MODES, doc: 'how the selected instruments share the total: equal, inverse_vol, risk_parity or manual' },
  ALLOC_MIN_WEIGHT: { kind: 'number', default: 0.02, min: 0, max: 1, doc: 'smallest share of the selection one instrument gets (mm-bot min_weight: 0.02)' },
  ALLOC_MAX_WEIGHT: { kind: 'number', default: 0.5, min: 0, max: 1, doc: 'largest share of the selection one instrument gets (mm-bot max_weight: 0.5)' },
} as const satisfies Spec;

/** The cost chain (mm-bot L6, L6.1, L6.2, L6.3, L6.4, L7). */
export const COST_KNOBS = {
  FEE_BPS_DEFAULT: { kind: 'number', default: 1, min: 0, max: 10_000, doc: 'fee per trade, bps (L6: 1.0)' },
  SLIPPAGE_BPS_BASE: { kind: 'number', default: 0.5, min: 0, max: 10_000, doc: 'slippage floor, bps (L6: 0.5)' },
  SLIPPAGE_K_BPS_PER_KUSD: { kind: 'number', default: 0.1, min: 0, max: 10_000, doc: 'slippage per $1k of target, bps, used while the calibration has no k_eff (L6: 0.1)' },
  COST_SENSITIVITY: { kind: 'number', default: 0.5, min: 0, max: 1, doc: 'cost attenuation 1 − this·min(1, cost_bps/100) (L6: 0.5)' },
  USE_SHADOW_SPREAD: { kind: 'boolean', default: true, doc: 'slippage ≥ half the calibrated spread (L6.1: true)' },
  USE_SHADOW_VOLUME: { kind: 'boolean', default: true, doc: 'double k when the calibrated volume is below MIN_VOLUME_USD (L6.1: true)' },
  MIN_VOLUME_USD: { kind: 'number', default: 1000, min: 0, max: 1e15, doc: 'volume below which k doubles, USD (L6.1: 1000)' },
  MAX_SLIPPAGE_BPS_CAP: CALIBRATION_KNOBS.MAX_SLIPPAGE_BPS_CAP,
  FILL_RATE_FLOOR: { kind: 'number', default: 0.5, min: 0, max: 1, doc: 'fill rate below which size attenuates (L6.3)' },
  FILL_RATE_SENSITIVITY: { kind: 'number', default: 0.5, min: 0, max: 1, doc: 'fill-rate attenuation 1 − this·max(0, floor − r) (L6.3)' },
  LIQUIDITY_DEPTH_USD_TARGET: { kind: 'number', default: 0, min: 0, max: 1e15, doc: 'depth at which size is not attenuated, USD; 0 turns the liquidity stage off (L6.4)' },
  LIQUIDITY_SENSITIVITY: { kind: 'number', default: 0.5, min: 0, max: 1, doc: 'liquidity attenuation 1 − this·(1 − liquidity_factor) (L6.4 example: 0.5)' },
  LIQUIDITY_MIN_FLOOR: { kind: 'number', default: 0.6, min: 0, max: 1, doc: 'lower bound of liquidity_factor (L6.4 example: 0.6)' },
  TURNOVER_SENSITIVITY: { kind: 'number', default: 0, min: 0, max: 1, doc: 'turnover factor max(floor, 1 − this·(1 − raw)); 0 turns the stage off (L7)' },
  TURNOVER_FLOOR: { kind: 'number', default: 0.5, min: 0, max: 1, doc: 'lower bound of the turnover factor (L7)' },
  COST_MIN_GUARD_FACTOR: { kind: 'number', default: 0, min: 0, max: 1, doc: 'min_guard: the chain keeps at least this fraction of the weight it was given; 0 = only never negative' },
} as const satisfies Spec;

/** The JSON knobs; their content is checked after parsing. */
export const ALLOCATION_JSON_KNOBS = {
  ALLOC_MANUAL_WEIGHTS_JSON: { kind: 'json', default: {}, doc: 'manual mode\'s raw weights, JSON object instrument → number ≥ 0, normalised over the selection, e.g. {"EUR_USD":0.6,"USD_JPY":0.4}' },
  COST_PER_SYMBOL_JSON: { kind: 'json', default: {}, doc: 'per-instrument cost overrides (mm-bot per_symbol), JSON object instrument → {field: number}, fields: fee_bps, slippage_bps_base, slippage_k_bps_per_kusd, cost_sensitivity, min_volume_usd, max_slippage_bps_cap, fill_rate_floor, fill_rate_sensitivity, liquidity_depth_usd_target, liquidity_sensitivity, liquidity_min_floor, turnover_sensitivity, turnover_floor' },
} as const satisfies Spec;

/** Every knob, for describeConfig and docs. */
export const ALLOCATION_CONFIG = { ...ALLOCATOR_KNOBS, ...SIZING_KNOBS, ...COST_KNOBS, ...ALLOCATION_JSON_KNOBS };
export type AllocationKnob = keyof typeof ALLOCATION_CONFIG;

/** COST_PER_SYMBOL_JSON fields: the seed's names → CostParams fields, each with the range of its global knob. */
export const PER_SYMBOL_FIELDS = {
  fee_bps: ['feeBps', 'FEE_BPS_DEFAULT'],
  slippage_bps_base: ['slippageBpsBase', 'SLIPPAGE_BPS_BASE'],
  slippage_k_bps_per_kusd: ['slippageKBpsPerKusd', 'SLIPPAGE_K_BPS_PER_KUSD'],
  cost_sensitivity: ['costSensitivity', 'COST_SENSITIVITY'],
  min_volume_usd: ['minVolumeUsd', 'MIN_VOLUME_USD'],
  max_slippage_bps_cap: ['maxSlippageBpsCap', 'MAX_SLIPPAGE_BPS_CAP'],
  fill_rate_floor: ['fillRateFloor', 'FILL_RATE_FLOOR'],
  fill_rate_sensitivity: ['fillRateSensitivity', 'FILL_RATE_SENSITIVITY'],
  liquidity_depth_usd_target: ['liquidityDepthUsdTarget', 'LIQUIDITY_DEPTH_USD_TARGET'],
  liquidity_sensitivity: ['liquiditySensitivity', 'LIQUIDITY_SENSITIVITY'],
  liquidity_min_floor: ['liquidityMinFloor', 'LIQUIDITY_MIN_FLOOR'],
  turnover_sensitivity: ['turnoverSensitivity', 'TURNOVER_SENSITIVITY'],
  turnover_floor: ['turnoverFloor', 'TURNOVER_FLOOR'],
} as const satisfies Record<string, readonly [keyof CostParams, keyof typeof COST_KNOBS]>;
type PerSymbolNumeric = (typeof PER_SYMBOL_FIELDS)[keyof typeof PER_SYMBOL_FIELDS][0];

export interface SizingConfig {
  /** ALLOC_SIZING_MODE; default 'equal'. */
  mode: SizingMode;
  /** ALLOC_MIN_WEIGHT, share; default 0.02. */
  minWeight: number;
  /** ALLOC_MAX_WEIGHT, share; default 0.5. */
  maxWeight: number;
  /** ALLOC_MANUAL_WEIGHTS_JSON; default {}. */
  manualWeights: Readonly<Record<string, number>>;
}

export interface CostChainConfig {
  /** The global cost knobs. */
  defaults: CostParams;
  /** COST_PER_SYMBOL_JSON: instrument → the fields it overrides; default {}. */
  perSymbol: Readonly<Record<string, Readonly<Partial<Pick<CostParams, PerSymbolNumeric>>>>>;
}

export interface AllocatorConfig {
  /** ALLOC_PORTFOLIO; default 'main'. */
  portfolio: string;
  /** ALLOC_INTERVAL_SEC, s; default 60. */
  intervalSec: number;
  /** ALLOC_TOP_K; default 3. */
  topK: number;
  /** ALLOC_SCORE_WEIGHT_HAZARD; default 0.5. */
  scoreWeightHazard: number;
  /** RISK_ALLOC_TARGET_PCT, fraction of margin; default 0.30. */
  targetPct: number;
  /** PM_MAX_PER_POS_PCT, fraction of margin; default 0.10. */
  maxPerPosPct: number;
  /** PM_RAMP_STEP_PCT, fraction of margin per interval; default 0.05. */
  rampStepPct: number;
  /** GATES_BLOB_MAX_AGE_SEC, s; default 180 (the gates' knob). */
  blobMaxAgeSec: number;
  /** KILL_SWITCH; default false. */
  killSwitch: boolean;
  /** MARGIN_HYST_LOW; default 0.25. */
  marginHystLow: number;
  /** MARGIN_HYST_HIGH; default 0.30. */
  marginHystHigh: number;
  /** ALLOC_BUDGET_USD; default 10 000. */
  budgetUsd: number;
  sizing: SizingConfig;
  cost: CostChainConfig;
  /** sha256 (hex) of the canonical JSON of every field above: alloc.weights.v1 `config_hash`. */
  configHash: string;
}

type Problem = ConfigProblem;
const PORTFOLIO_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Resolves and checks every allocation knob; throws one ConfigError listing every problem. */
export function resolveAllocatorConfig(explicit: Partial<Record<AllocationKnob, unknown>> = {}, env: NodeJS.ProcessEnv = process.env): AllocatorConfig {
  const problems: Problem[] = [];
  // Four groups, so a bad value in one does not hide the problems of another.
  const a = collectProblems(problems, () => resolveConfig(ALLOCATOR_KNOBS, explicit, env));
  const s = collectProblems(problems, () => resolveConfig(SIZING_KNOBS, explicit, env));
  const c = collectProblems(problems, () => resolveConfig(COST_KNOBS, explicit, env));
  const json = collectProblems(problems, () => resolveConfig(ALLOCATION_JSON_KNOBS, explicit, env));
  const manualWeights = json ? parseManualWeights(json.ALLOC_MANUAL_WEIGHTS_JSON, problems) : {};
  const perSymbol = json ? parsePerSymbol(json.COST_PER_SYMBOL_JSON, problems) : {};
  if (a && s) problems.push(...crossProblems(a, s, manualWeights));
  if (problems.length > 0 || !a || !s || !c) throw new ConfigError(problems);
  const body: Omit<AllocatorConfig, 'configHash'> = {
    portfolio: a.ALLOC_PORTFOLIO,
    intervalSec: a.ALLOC_INTERVAL_SEC,
    topK: a.ALLOC_TOP_K,
    scoreWeightHazard: a.ALLOC_SCORE_WEIGHT_HAZARD,
    targetPct: a.RISK_ALLOC_TARGET_PCT,
    maxPerPosPct: a.PM_MAX_PER_POS_PCT,
    rampStepPct: a.PM_RAMP_STEP_PCT,
    blobMaxAgeSec: a.GATES_BLOB_MAX_AGE_SEC,
    killSwitch: a.KILL_SWITCH,
    marginHystLow: a.MARGIN_HYST_LOW,
    marginHystHigh: a.MARGIN_HYST_HIGH,
    budgetUsd: a.ALLOC_BUDGET_USD,
    sizing: { mode: s.ALLOC_SIZING_MODE as SizingMode, minWeight: s.ALLOC_MIN_WEIGHT, maxWeight: s.ALLOC_MAX_WEIGHT, manualWeights },
    cost: {
      defaults: {
        feeBps: c.FEE_BPS_DEFAULT,
        slippageBpsBase: c.SLIPPAGE_BPS_BASE,
        slippageKBpsPerKusd: c.SLIPPAGE_K_BPS_PER_KUSD,
        costSensitivity: c.COST_SENSITIVITY,
        useShadowSpread: c.USE_SHADOW_SPREAD,
        useShadowVolume: c.USE_SHADOW_VOLUME,
        minVolumeUsd: c.MIN_VOLUME_USD,
        maxSlippageBpsCap: c.MAX_SLIPPAGE_BPS_CAP,
        fillRateFloor: c.FILL_RATE_FLOOR,
        fillRateSensitivity: c.FILL_RATE_SENSITIVITY,
        liquidityDepthUsdTarget: c.LIQUIDITY_DEPTH_USD_TARGET,
        liquiditySensitivity: c.LIQUIDITY_SENSITIVITY,
        liquidityMinFloor: c.LIQUIDITY_MIN_FLOOR,
        turnoverSensitivity: c.TURNOVER_SENSITIVITY,
        turnoverFloor: c.TURNOVER_FLOOR,
        minGuardFactor: c.COST_MIN_GUARD_FACTOR,
      },
      perSymbol,
    },
  };
  return { ...body, configHash: allocatorConfigHash(body) };
}

/**
 * sha256 (hex) of the canonical JSON (keys sorted at every level, shortest
 * round-trip numbers; calibration/snapshot.ts) of a resolved config without
 * its `configHash`: the same knobs give the same hash on every host, whatever
 * order or spelling (env string or explicit value) they came in.
 */
export function allocatorConfigHash(config: Omit<AllocatorConfig, 'configHash'> & { configHash?: string }): string {
  const { configHash: _ignored, ...body } = config;
  return createHash('sha256').update(canonicalJson(body), 'utf8').digest('hex');
}

/** Every knob at its default. */
export const DEFAULT_ALLOCATOR_CONFIG: AllocatorConfig = Object.freeze(resolveAllocatorConfig({}, {}));

/** An instrument's cost parameters: its COST_PER_SYMBOL_JSON fields over the global knobs. */
export function costParamsFor(cost: CostChainConfig, instrument: string): CostParams {
  const o = Object.hasOwn(cost.perSymbol, instrument) ? cost.perSymbol[instrument] : undefined;
  return o ? { ...cost.defaults, ...o } : cost.defaults;
}

// ---- JSON knobs

function parseManualWeights(raw: unknown, problems: Problem[]): Record<string, number> {
  const key = 'ALLOC_MANUAL_WEIGHTS_JSON';
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push({ key, message: `=${JSON.stringify(raw)}: must be a JSON object of instrument → weight ≥ 0, e.g. {"EUR_USD":0.6,"USD_JPY":0.4}` });
    return {};
  }
  const out: Record<string, number> = {};
  for (const [instrument, w] of Object.entries(raw)) {
    if (!INSTRUMENT_NAME.test(instrument)) problems.push({ key, message: `key "${instrument}" is not an instrument name like EUR_USD` });
    else if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) problems.push({ key, message: `entry "${instrument}" must be a number ≥ 0, got ${JSON.stringify(w)}` });
    else out[instrument] = w;
  }
  return sortedRecord(out);
}

function parsePerSymbol(raw: unknown, problems: Problem[]): Record<string, Partial<Pick<CostParams, PerSymbolNumeric>>> {
  const key = 'COST_PER_SYMBOL_JSON';
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push({ key, message: `=${JSON.stringify(raw)}: must be a JSON object of instrument → {field: number}, e.g. {"GBP_JPY":{"fee_bps":2}}` });
    return {};
  }
  const fields = Object.keys(PER_SYMBOL_FIELDS).join(', ');
  const out: Record<string, Partial<Pick<CostParams, PerSymbolNumeric>>> = {};
  for (const [instrument, entry] of Object.entries(raw)) {
    if (!INSTRUMENT_NAME.test(instrument)) {
      problems.push({ key, message: `key "${instrument}" is not an instrument name like EUR_USD` });
      continue;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push({ key, message: `entry "${instrument}" must be an object of field → number, e.g. {"fee_bps":2}, got ${JSON.stringify(entry)}` });
      continue;
    }
    const o: Partial<Record<PerSymbolNumeric, number>> = {};
    for (const [field, value] of Object.entries(entry)) {
      if (!Object.hasOwn(PER_SYMBOL_FIELDS, field)) {
        problems.push({ key, message: `entry "${instrument}" field "${field}" is not one of ${fields}` });
        continue;
      }
      const [name, knob] = PER_SYMBOL_FIELDS[field as keyof typeof PER_SYMBOL_FIELDS];
      const { min, max } = COST_KNOBS[knob];
      if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
        problems.push({ key, message: `entry "${instrument}"."${field}" must be a number in [${min}, ${max}] (as ${knob}), got ${JSON.stringify(value)}` });
      } else {
        o[name] = value;
      }
    }
    out[instrument] = sortedRecord(o);
  }
  return sortedRecord(out);
}

// ---- cross-field checks

function crossProblems(a: Resolved<typeof ALLOCATOR_KNOBS>, s: Resolved<typeof SIZING_KNOBS>, manual: Record<string, number>): Problem[] {
  const problems: Problem[] = [];
  if (!PORTFOLIO_NAME.test(a.ALLOC_PORTFOLIO)) {
    problems.push({ key: 'ALLOC_PORTFOLIO', message: `=${JSON.stringify(a.ALLOC_PORTFOLIO)}: must be 1–64 of A–Z a–z 0–9 _ . - (it is a Kafka record key and a Redis key part)` });
  }
  if (!(a.MARGIN_HYST_LOW < a.MARGIN_HYST_HIGH)) {
    problems.push({ key: 'MARGIN_HYST_LOW', message: `=${a.MARGIN_HYST_LOW}: must be < MARGIN_HYST_HIGH=${a.MARGIN_HYST_HIGH}, else the pause has no hysteresis band; e.g. MARGIN_HYST_LOW=${round6(a.MARGIN_HYST_HIGH - Math.min(0.05, a.MARGIN_HYST_HIGH / 2))}` });
  }
  const k = a.ALLOC_TOP_K;
  if (s.ALLOC_MIN_WEIGHT > s.ALLOC_MAX_WEIGHT) {
    problems.push({ key: 'ALLOC_MIN_WEIGHT', message: `=${s.ALLOC_MIN_WEIGHT}: must be ≤ ALLOC_MAX_WEIGHT=${s.ALLOC_MAX_WEIGHT}` });
  }
  if (k * s.ALLOC_MIN_WEIGHT > 1 + 1e-12) {
    problems.push({ key: 'ALLOC_MIN_WEIGHT', message: `=${s.ALLOC_MIN_WEIGHT}: ALLOC_TOP_K=${k} × ${s.ALLOC_MIN_WEIGHT} > 1, so the shares cannot sum to 1; lower it to ≤ ${floor6(1 / k)} or lower ALLOC_TOP_K` });
  }
  // n·ALLOC_MAX_WEIGHT < 1 is not a problem here: it happens whenever fewer are selected than the
  // bound assumes, and the allocator then bounds shares by 1/n (reason bounds_relaxed).
  if (s.ALLOC_SIZING_MODE === 'manual' && !Object.values(manual).some((w) => w > 0)) {
    problems.push({ key: 'ALLOC_MANUAL_WEIGHTS_JSON', message: 'must give at least one instrument a weight > 0 when ALLOC_SIZING_MODE=manual, e.g. {"EUR_USD":0.6,"USD_JPY":0.4}' });
  }
  return problems;
}

function sortedRecord<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]!]));
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
const floor6 = (x: number) => Math.floor(x * 1e6) / 1e6;
