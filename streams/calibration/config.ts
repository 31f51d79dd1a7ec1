/**
 * The cost-calibration knobs (DESIGN §6.5; mm-bot README L6.1, L6.2, L6.3, L7),
 * declared once for resolveConfig: explicit value → environment variable →
 * default. The keys are the environment names; where the seeds name a knob
 * (`fill_rate_half_life_sec`, `turnover_half_life_sec`,
 * `max_slippage_bps_cap`) the key is that name in upper case. Every problem
 * is reported at once in one ConfigError naming the knob. Defaults and their
 * reasons: docs/calibration.md.
 */
import { resolveConfig, type Spec, collectProblems, type ConfigProblem } from '../runtime/config.ts';
import { ConfigError } from '../runtime/errors.ts';

export const CALIBRATION_KNOBS = {
  COST_EWMA_ALPHA: { kind: 'number', default: 0.1, min: 1e-6, max: 1, doc: 'weight α of the newest sample in the per-sample EWMAs (spread, volume, slippage, k_eff, cap_eff), in (0, 1]; seed L6.2: 0.1' },
  FILL_RATE_HALF_LIFE_SEC: { kind: 'integer', default: 1800, min: 10, max: 604_800, doc: 'half-life of the fill-rate EWMA over order outcomes, seconds of event time; seed L6.3: ≥ 10' },
  TURNOVER_HALF_LIFE_SEC: { kind: 'integer', default: 1800, min: 10, max: 604_800, doc: 'half-life of the turnover EWMA over fill notionals, seconds of event time; seed L7: ≥ 10' },
  MAX_SLIPPAGE_BPS_CAP: { kind: 'number', default: 50, min: 0.01, max: 10_000, doc: 'upper bound of cap_eff_bps, bps; seed L6.1: 50' },
  COST_CAP_STD_MULT: { kind: 'number', default: 3, min: 0, max: 20, doc: 'cap_eff_bps = EW mean + this × EW std of slippage, before MAX_SLIPPAGE_BPS_CAP' },
  COST_CALIB_MIN_SAMPLES: { kind: 'integer', default: 30, min: 1, max: 1_000_000, doc: 'samples k_eff and cap_eff_bps need before they are published (null until then: the allocator keeps its defaults)' },
  COST_SLIPPAGE_LIQUIDITY: { kind: 'string', default: 'taker', oneOf: ['taker', 'all'], doc: 'fills that feed slippage, k_eff and cap_eff_bps: taker only (the allocator\'s cost model is a taker cost) or all' },
  COST_SPREAD_SOURCE: { kind: 'string', default: 'features', oneOf: ['features', 'ticks'], doc: 'spread samples: one per feature bar (mean tick spread of the bar) or one per tick' },
  COST_MAX_QUOTE_AGE_MS: { kind: 'integer', default: 60_000, min: 1, max: 86_400_000, doc: 'a fill whose last quote is older than this gives no slippage sample (stale_quote), ms' },
  COST_DEDUP_CAPACITY: { kind: 'integer', default: 1024, min: 1, max: 1_000_000, doc: 'fill ids and order ids remembered per instrument to drop duplicates (FIFO; each list holds at most this many)' },
  COST_SNAPSHOT_MAX_BYTES: { kind: 'integer', default: 1_048_576, min: 1024, max: 1_073_741_824, doc: 'largest calibration snapshot written or loaded, bytes; seed: 1 MB' },
} as const satisfies Spec;

/** The JSON knob; its content is checked after parsing. */
export const CALIBRATION_JSON_KNOBS = {
  COST_USD_PER_QUOTE_JSON: { kind: 'json', default: {}, doc: 'USD per unit of quote currencies other than USD, for crosses, JSON object currency → number > 0, e.g. {"GBP":1.27,"JPY":0.0066}' },
} as const satisfies Spec;

/** Every knob, for describeConfig and docs. */
export const CALIBRATION_CONFIG = { ...CALIBRATION_KNOBS, ...CALIBRATION_JSON_KNOBS };

export type CalibrationKnob = keyof typeof CALIBRATION_CONFIG;

export interface CalibrationConfig {
  /** COST_EWMA_ALPHA; default 0.1. */
  alpha: number;
  /** FILL_RATE_HALF_LIFE_SEC in ms; default 1 800 000. */
  fillRateHalfLifeMs: number;
  /** TURNOVER_HALF_LIFE_SEC in ms; default 1 800 000. */
  turnoverHalfLifeMs: number;
  /** MAX_SLIPPAGE_BPS_CAP, bps; default 50. */
  maxSlippageBpsCap: number;
  /** COST_CAP_STD_MULT; default 3. */
  capStdMult: number;
  /** COST_CALIB_MIN_SAMPLES; default 30. */
  minSamples: number;
  /** COST_SLIPPAGE_LIQUIDITY; default 'taker'. */
  slippageLiquidity: 'taker' | 'all';
  /** COST_SPREAD_SOURCE; default 'features'. */
  spreadSource: 'features' | 'ticks';
  /** COST_MAX_QUOTE_AGE_MS, ms; default 60 000. */
  maxQuoteAgeMs: number;
  /** COST_DEDUP_CAPACITY; default 1024. */
  dedupCapacity: number;
  /** COST_SNAPSHOT_MAX_BYTES, bytes; default 1 MiB. */
  snapshotMaxBytes: number;
  /** COST_USD_PER_QUOTE_JSON: currency → USD per unit; default {}. */
  usdPerQuote: Readonly<Record<string, number>>;
}

/** Currency codes as the instrument catalog spells them (the halves of EUR_USD). */
const CURRENCY = /^[A-Z0-9]{2,10}$/;

/** Resolves and checks every calibration knob; throws one ConfigError listing every problem. */
export function resolveCalibrationConfig(explicit: Partial<Record<CalibrationKnob, unknown>> = {}, env: NodeJS.ProcessEnv = process.env): CalibrationConfig {
  const problems: Problem[] = [];
  const c = collectProblems(problems, () => resolveConfig(CALIBRATION_KNOBS, explicit, env));
  const json = collectProblems(problems, () => resolveConfig(CALIBRATION_JSON_KNOBS, explicit, env));
  const usdPerQuote = json ? parseUsdPerQuote(json.COST_USD_PER_QUOTE_JSON, problems) : {};
  if (problems.length > 0 || !c) throw new ConfigError(problems);
  return {
    alpha: c.COST_EWMA_ALPHA,
    fillRateHalfLifeMs: c.FILL_RATE_HALF_LIFE_SEC * 1000,
    turnoverHalfLifeMs: c.TURNOVER_HALF_LIFE_SEC * 1000,
    maxSlippageBpsCap: c.MAX_SLIPPAGE_BPS_CAP,
    capStdMult: c.COST_CAP_STD_MULT,
    minSamples: c.COST_CALIB_MIN_SAMPLES,
    slippageLiquidity: c.COST_SLIPPAGE_LIQUIDITY as 'taker' | 'all',
    spreadSource: c.COST_SPREAD_SOURCE as 'features' | 'ticks',
    maxQuoteAgeMs: c.COST_MAX_QUOTE_AGE_MS,
    dedupCapacity: c.COST_DEDUP_CAPACITY,
    snapshotMaxBytes: c.COST_SNAPSHOT_MAX_BYTES,
    usdPerQuote,
  };
}

/** Every knob at its default. */
export const DEFAULT_CALIBRATION_CONFIG: CalibrationConfig = Object.freeze(resolveCalibrationConfig({}, {}));

type Problem = ConfigProblem;

function parseUsdPerQuote(raw: unknown, problems: Problem[]): Record<string, number> {
  const key = 'COST_USD_PER_QUOTE_JSON';
  const usdPerQuote: Record<string, number> = {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push({ key, message: `=${JSON.stringify(raw)}: must be a JSON object of currency → USD per unit, e.g. {"GBP":1.27,"JPY":0.0066}` });
  } else {
    for (const [currency, value] of Object.entries(raw)) {
      if (!CURRENCY.test(currency)) problems.push({ key, message: `key "${currency}" is not a currency code like GBP` });
      else if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) problems.push({ key, message: `entry "${currency}" must be a number > 0 (USD per 1 ${currency}), got ${JSON.stringify(value)}` });
      else usdPerQuote[currency] = value;
    }
  }
  return usdPerQuote;
}
