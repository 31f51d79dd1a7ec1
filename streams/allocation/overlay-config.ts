/**
 * The HRP overlay's and the CVaR guard's knobs (DESIGN §6.3; seed: overlays
 * tickets 17 and 18), declared once for resolveConfig: explicit value →
 * environment variable → default. The keys are the environment names; the
 * seeds' names where they give one (TARGET_RISK_BUDGET, CLUSTER_MAP,
 * HRP_LOOKBACK_D, RISK_BUDGET_PER_TRADE; the seed's ALPHA is CVAR_ALPHA, as a
 * bare ALPHA in a shared environment would mean anything). Every problem is
 * reported at once in one ConfigError naming the knob. Defaults and their
 * reasons: docs/overlays.md "Knobs".
 */
import { resolveConfig, type Resolved, type Spec, collectProblems, type ConfigProblem } from '../runtime/config.ts';
import { ConfigError } from '../runtime/errors.ts';
import { INSTRUMENT_NAME } from '../model/instruments.ts';
import type { HrpOverlayParams } from './hrp.ts';
import type { CvarParams, CvarMode } from './cvar.ts';

/** A cluster name as it appears in the Redis hash and metrics: letters, digits, _ and -. */
export const CLUSTER_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** Bars per day of each HRP timeframe, to check HRP_MIN_OBS against the lookback. */
export const HRP_BARS_PER_DAY = { '1h': 24, '4h': 6 } as const;
export type HrpTimeframe = keyof typeof HRP_BARS_PER_DAY;

export const HRP_KNOBS = {
  TARGET_RISK_BUDGET: { kind: 'number', default: 0.1, min: 0.001, max: 1, doc: 'fraction of equity the cluster budgets sum to (seed: 10–15 %; the lower end by default)' },
  HRP_MIN_SCALE: { kind: 'number', default: 0.5, min: 0, max: 1, doc: 'lowest scale an over-budget cluster gets, scale = max(HRP_MIN_SCALE, 1 − overage) (seed: 0.5)' },
  HRP_LOOKBACK_D: { kind: 'integer', default: 90, min: 2, max: 3650, doc: 'days of closes the returns matrix covers (seed: 60–90)' },
  HRP_TIMEFRAME: { kind: 'string', default: '1h', oneOf: Object.keys(HRP_BARS_PER_DAY), doc: 'bar of the closes: 1h or 4h (seed: bar1h or bar4h)' },
  HRP_WINSOR_SIGMA: { kind: 'number', default: 3, min: 0, max: 100, doc: 'returns are clipped to mean ± this many sample sd before the covariance; 0 = off (seed: ±3σ)' },
  HRP_MIN_OBS: { kind: 'integer', default: 100, min: 3, max: 10_000_000, doc: 'finite returns an instrument, and each pair, needs to take part in HRP' },
} as const satisfies Spec;

export const HRP_JSON_KNOBS = {
  CLUSTER_MAP: { kind: 'json', default: {}, doc: 'instrument → cluster, e.g. {"EUR_USD":"majors"}, or cluster → instruments, e.g. {"majors":["EUR_USD","USD_JPY"]}; unmapped instruments form the cluster "other"' },
} as const satisfies Spec;

export const CVAR_KNOBS = {
  CVAR_ALPHA: { kind: 'number', default: 0.95, min: 0.5, max: 0.999, doc: 'CVaR confidence level (seed ALPHA: 0.95 or 0.975); the empirical cutoff is 1 − CVAR_ALPHA' },
  CVAR_MODE: { kind: 'string', default: 'empirical', oneOf: ['empirical', 'evt'], doc: 'estimator: empirical (empyrical) or evt (peaks over threshold, generalized Pareto)' },
  CVAR_MIN_SAMPLES: { kind: 'integer', default: 30, min: 2, max: 10_000_000, doc: 'finite samples a symbol needs for its own CVaR; fewer → its cluster\'s pooled samples' },
  CVAR_EVT_THRESHOLD_Q: { kind: 'number', default: 0.9, min: 0.5, max: 0.995, doc: 'quantile of the losses used as the EVT threshold u, < CVAR_ALPHA' },
  CVAR_EVT_MIN_EXCEEDANCES: { kind: 'integer', default: 20, min: 5, max: 10_000_000, doc: 'losses above u a GPD fit needs; fewer → the empirical CVaR' },
  RISK_BUDGET_PER_TRADE: { kind: 'number', default: 0.005, min: 0.0001, max: 0.1, doc: 'fraction of equity the expected tail loss of one position may take (seed: 0.5 %)' },
  CVAR_MAX_LEVERAGE: { kind: 'number', default: 10, min: 0.01, max: 1000, doc: 'largest leverage (notional / equity) the guard allows however mild the tail' },
} as const satisfies Spec;

/** Every knob, for describeConfig and docs. */
export const OVERLAY_CONFIG = { ...HRP_KNOBS, ...HRP_JSON_KNOBS, ...CVAR_KNOBS };
export type OverlayKnob = keyof typeof OVERLAY_CONFIG;

export interface HrpOverlayConfig extends HrpOverlayParams {
  /** HRP_LOOKBACK_D, days; default 90. */
  lookbackDays: number;
  /** HRP_TIMEFRAME; default 1h. */
  timeframe: HrpTimeframe;
}

export interface OverlayConfig {
  hrp: HrpOverlayConfig;
  cvar: CvarParams;
}

/** Resolves and checks every overlay knob; throws one ConfigError listing every problem. */
export function resolveOverlayConfig(explicit: Partial<Record<OverlayKnob, unknown>> = {}, env: NodeJS.ProcessEnv = process.env): OverlayConfig {
  const problems: ConfigProblem[] = [];
  // Three groups, so a bad value in one does not hide the problems of another.
  const hrp = collectProblems(problems, () => resolveConfig(HRP_KNOBS, explicit, env));
  const json = collectProblems(problems, () => resolveConfig(HRP_JSON_KNOBS, explicit, env));
  const cvar = collectProblems(problems, () => resolveConfig(CVAR_KNOBS, explicit, env));
  const clusterMap = json ? parseClusterMap(json.CLUSTER_MAP, problems) : {};
  if (hrp) problems.push(...hrpCrossProblems(hrp));
  if (cvar) problems.push(...cvarCrossProblems(cvar));
  if (problems.length > 0 || !hrp || !cvar) throw new ConfigError(problems);
  return {
    hrp: {
      clusterMap,
      targetRiskBudget: hrp.TARGET_RISK_BUDGET,
      minScale: hrp.HRP_MIN_SCALE,
      winsorSigma: hrp.HRP_WINSOR_SIGMA,
      minObs: hrp.HRP_MIN_OBS,
      lookbackDays: hrp.HRP_LOOKBACK_D,
      timeframe: hrp.HRP_TIMEFRAME as HrpTimeframe,
    },
    cvar: {
      alpha: cvar.CVAR_ALPHA,
      mode: cvar.CVAR_MODE as CvarMode,
      minSamples: cvar.CVAR_MIN_SAMPLES,
      evtThresholdQ: cvar.CVAR_EVT_THRESHOLD_Q,
      evtMinExceedances: cvar.CVAR_EVT_MIN_EXCEEDANCES,
      riskBudgetPerTrade: cvar.RISK_BUDGET_PER_TRADE,
      maxLeverage: cvar.CVAR_MAX_LEVERAGE,
    },
  };
}

/** Every knob at its default (frozen to the leaves: a shared default must not be edited in place). */
export const DEFAULT_OVERLAY_CONFIG: OverlayConfig = (() => {
  const c = resolveOverlayConfig({}, {});
  Object.freeze(c.hrp.clusterMap);
  Object.freeze(c.hrp);
  Object.freeze(c.cvar);
  return Object.freeze(c);
})();

/**
 * CLUSTER_MAP in either form, per entry: "EUR_USD": "majors" (instrument →
 * cluster) or "majors": ["EUR_USD", …] (cluster → instruments). Returns
 * instrument → cluster; an instrument given two clusters is a problem.
 */
function parseClusterMap(raw: unknown, problems: ConfigProblem[]): Record<string, string> {
  const key = 'CLUSTER_MAP';
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push({ key, message: `=${JSON.stringify(raw)}: must be a JSON object, e.g. {"EUR_USD":"majors"} or {"majors":["EUR_USD","USD_JPY"]}` });
    return {};
  }
  const out: Record<string, string> = {};
  const assign = (instrument: string, cluster: string, where: string) => {
    if (!INSTRUMENT_NAME.test(instrument)) problems.push({ key, message: `${where}: "${instrument}" is not an instrument name like EUR_USD` });
    else if (!CLUSTER_NAME.test(cluster)) problems.push({ key, message: `${where}: cluster "${cluster}" must be 1–64 letters, digits, _ or -` });
    else if (Object.hasOwn(out, instrument) && out[instrument] !== cluster) problems.push({ key, message: `${where}: "${instrument}" is already in cluster "${out[instrument]}"; an instrument belongs to one cluster` });
    else out[instrument] = cluster;
  };
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value === 'string') {
      assign(name, value, `entry "${name}"`);
    } else if (Array.isArray(value)) {
      if (value.length === 0) problems.push({ key, message: `entry "${name}" lists no instruments; drop it or list some` });
      for (const instrument of value) {
        if (typeof instrument !== 'string') problems.push({ key, message: `entry "${name}": ${JSON.stringify(instrument)} is not an instrument name like EUR_USD` });
        else assign(instrument, name, `entry "${name}"`);
      }
    } else {
      problems.push({ key, message: `entry "${name}" must be a cluster name (instrument → cluster) or a list of instruments (cluster → instruments), got ${JSON.stringify(value)}` });
    }
  }
  return out;
}

function hrpCrossProblems(c: Resolved<typeof HRP_KNOBS>): ConfigProblem[] {
  const bars = c.HRP_LOOKBACK_D * HRP_BARS_PER_DAY[c.HRP_TIMEFRAME as HrpTimeframe] - 1;
  if (c.HRP_MIN_OBS <= bars) return [];
  return [{
    key: 'HRP_MIN_OBS',
    message: `=${c.HRP_MIN_OBS}: must be ≤ ${bars}, the returns in HRP_LOOKBACK_D=${c.HRP_LOOKBACK_D} days of ${c.HRP_TIMEFRAME} bars, else every instrument is left out; lower it or raise HRP_LOOKBACK_D`,
  }];
}

function cvarCrossProblems(c: Resolved<typeof CVAR_KNOBS>): ConfigProblem[] {
  if (c.CVAR_EVT_THRESHOLD_Q < c.CVAR_ALPHA) return [];
  return [{
    key: 'CVAR_EVT_THRESHOLD_Q',
    message: `=${c.CVAR_EVT_THRESHOLD_Q}: must be < CVAR_ALPHA=${c.CVAR_ALPHA}; the EVT tail starts at the threshold and is extrapolated beyond it to the CVaR level`,
  }];
}
