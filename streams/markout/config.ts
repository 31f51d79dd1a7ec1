/**
 * The markout processor's knobs (DESIGN §6.4; seed: mm-bot README M1, M1.1),
 * declared once for resolveConfig: explicit value → environment variable →
 * default. The keys are the environment names. Every problem — a bad value, a
 * bad list or JSON entry, two knobs that contradict each other — is reported
 * at once in one ConfigError naming the knob. Defaults and their reasons:
 * docs/markout.md "Parameters".
 */
import { resolveConfig, type Resolved, type Spec, collectProblems, type ConfigProblem } from '../runtime/config.ts';
import { ConfigError } from '../runtime/errors.ts';
import { INSTRUMENT_NAME } from '../model/instruments.ts';

/** A horizon is 0 ms (the fill's own instant) to 1 h: the tick buffer holds about the longest horizon of ticks. */
export const HORIZON_RANGE_MS = [0, 3_600_000] as const;
/** At most this many horizons: each one is a pending entry per fill. */
export const MAX_HORIZONS = 16;
/** Caps are |bps| of a green − blue difference; beyond 10 000 bps (100 %) a cap means nothing. */
export const CAP_RANGE_BPS = [0, 10_000] as const;

/** The horizon lists, strings: a comma list ("200,500") or a JSON array ("[200,500]"); checked after reading. */
export const MARKOUT_LIST_KNOBS = {
  MARKOUT_HORIZONS_MS: { kind: 'string', default: '200,500,1000,5000,60000', doc: `markout horizons in ms after the fill, comma list or JSON array of whole numbers in [${HORIZON_RANGE_MS[0]}, ${HORIZON_RANGE_MS[1]}], at most ${MAX_HORIZONS}` },
  MARKOUT_GATE_HORIZONS_MS: { kind: 'string', default: '200,500', doc: 'horizons the canary markout gate checks, comma list or JSON array, each one of MARKOUT_HORIZONS_MS' },
} as const satisfies Spec;

/** The scalar knobs. */
export const MARKOUT_KNOBS = {
  MARKOUT_GRACE_MS: { kind: 'integer', default: 5000, min: 0, max: 3_600_000, doc: 'ms of stream time a tick or fill may lag behind stream time; a markout at t0+h is emitted once stream time passes t0+h+grace' },
  MARKOUT_DEDUPE_WINDOW_MS: { kind: 'integer', default: 600_000, min: 0, max: 7 * 86_400_000, doc: 'ms of stream time a fill id (cid) is remembered after its fill time, ≥ MARKOUT_GRACE_MS' },
  MARKOUT_MIN_SAMPLE: { kind: 'integer', default: 50, min: 1, max: 1_000_000_000, doc: 'markouts each colour needs at every gated horizon before the canary markout gate is evaluated (seed markout_min_sample)' },
  MARKOUT_CAP_BPS: { kind: 'number', default: 0.5, min: CAP_RANGE_BPS[0], max: CAP_RANGE_BPS[1], doc: 'bps green may be worse than blue at a gated horizon: breach when delta_bps < −cap' },
  MARKOUT_ADVERSE_HORIZON_MS: { kind: 'integer', default: 5000, min: HORIZON_RANGE_MS[0], max: HORIZON_RANGE_MS[1], doc: 'horizon of adverse_fill_rate (share of fills with a negative markout there), one of MARKOUT_HORIZONS_MS' },
} as const satisfies Spec;

/** The JSON knobs; their content is checked after parsing. */
export const MARKOUT_JSON_KNOBS = {
  MARKOUT_CAP_BPS_JSON: { kind: 'json', default: {}, doc: 'per-instrument caps in bps: instrument → number (every gated horizon) or {"<horizon_ms>": number}, e.g. {"GBP_JPY":1.0,"EUR_USD":{"200":1.0}}' },
} as const satisfies Spec;

/** Every knob, for describeConfig and docs. */
export const MARKOUT_CONFIG = { ...MARKOUT_LIST_KNOBS, ...MARKOUT_KNOBS, ...MARKOUT_JSON_KNOBS };
export type MarkoutKnob = keyof typeof MARKOUT_CONFIG;

/** Per instrument: one cap for every gated horizon, or caps by horizon (others fall back to MARKOUT_CAP_BPS). */
export type CapOverride = number | Readonly<Record<string, number>>;

export interface MarkoutConfig {
  /** MARKOUT_HORIZONS_MS, ascending, distinct; default [200, 500, 1000, 5000, 60000]. */
  horizonsMs: readonly number[];
  /** MARKOUT_GRACE_MS, ms; default 5000. */
  graceMs: number;
  /** MARKOUT_DEDUPE_WINDOW_MS, ms; default 600 000. */
  dedupeWindowMs: number;
  /** MARKOUT_MIN_SAMPLE; default 50. */
  minSample: number;
  /** MARKOUT_CAP_BPS, bps; default 0.5. */
  capBps: number;
  /** MARKOUT_CAP_BPS_JSON; default {}. */
  capOverrides: Readonly<Record<string, CapOverride>>;
  /** MARKOUT_GATE_HORIZONS_MS, ascending, each in horizonsMs; default [200, 500]. */
  gateHorizonsMs: readonly number[];
  /** MARKOUT_ADVERSE_HORIZON_MS, in horizonsMs; default 5000. */
  adverseHorizonMs: number;
}

type Problem = ConfigProblem;

/** Resolves and checks every markout knob; throws one ConfigError listing every problem. */
export function resolveMarkoutConfig(explicit: Partial<Record<MarkoutKnob, unknown>> = {}, env: NodeJS.ProcessEnv = process.env): MarkoutConfig {
  const problems: Problem[] = [];
  // Three groups, so a bad value in one does not hide the problems of another.
  const lists = collectProblems(problems, () => resolveConfig(MARKOUT_LIST_KNOBS, explicit, env));
  const scalars = collectProblems(problems, () => resolveConfig(MARKOUT_KNOBS, explicit, env));
  const json = collectProblems(problems, () => resolveConfig(MARKOUT_JSON_KNOBS, explicit, env));
  const before = problems.length;
  const horizonsMs = lists ? parseHorizons('MARKOUT_HORIZONS_MS', lists.MARKOUT_HORIZONS_MS, problems) : [];
  // Checks against the horizon list only when it is the list the user meant.
  const measured = problems.length === before ? horizonsMs : [];
  const gateHorizonsMs = lists ? parseHorizons('MARKOUT_GATE_HORIZONS_MS', lists.MARKOUT_GATE_HORIZONS_MS, problems) : [];
  const capOverrides = json ? parseCapOverrides(json.MARKOUT_CAP_BPS_JSON, problems) : {};
  if (scalars) problems.push(...crossProblems(scalars, measured, gateHorizonsMs, capOverrides));
  if (problems.length > 0 || !scalars) throw new ConfigError(problems);
  return {
    horizonsMs,
    graceMs: scalars.MARKOUT_GRACE_MS,
    dedupeWindowMs: scalars.MARKOUT_DEDUPE_WINDOW_MS,
    minSample: scalars.MARKOUT_MIN_SAMPLE,
    capBps: scalars.MARKOUT_CAP_BPS,
    capOverrides,
    gateHorizonsMs,
    adverseHorizonMs: scalars.MARKOUT_ADVERSE_HORIZON_MS,
  };
}

/** Every knob at its default. */
export const DEFAULT_MARKOUT_CONFIG: MarkoutConfig = Object.freeze(resolveMarkoutConfig({}, {}));

/** The cap of one instrument at one horizon: its MARKOUT_CAP_BPS_JSON entry, else MARKOUT_CAP_BPS. */
export function capFor(config: Pick<MarkoutConfig, 'capBps' | 'capOverrides'>, instrument: string, horizonMs: number): number {
  const o = Object.hasOwn(config.capOverrides, instrument) ? config.capOverrides[instrument] : undefined;
  if (typeof o === 'number') return o;
  if (o && Object.hasOwn(o, String(horizonMs))) return o[String(horizonMs)]!;
  return config.capBps;
}

/** "200,500" or "[200,500]" (or an array given explicitly) → ascending distinct whole numbers. */
function parseHorizons(key: string, raw: string, problems: Problem[]): number[] {
  const text = raw.trim();
  let items: unknown[];
  if (text.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (!Array.isArray(parsed)) throw new Error('not an array');
      items = parsed;
    } catch (err) {
      problems.push({ key, message: `=${JSON.stringify(raw)}: must be a comma list like 200,500 or a JSON array like [200,500] (${(err as Error).message})` });
      return [];
    }
  } else {
    items = text === '' ? [] : text.split(',').map((s) => s.trim());
  }
  const out: number[] = [];
  const range = `[${HORIZON_RANGE_MS[0]}, ${HORIZON_RANGE_MS[1]}]`;
  for (const item of items) {
    const n = typeof item === 'number' ? item : typeof item === 'string' && item !== '' ? Number(item) : NaN;
    if (!Number.isInteger(n) || n < HORIZON_RANGE_MS[0] || n > HORIZON_RANGE_MS[1]) {
      problems.push({ key, message: `entry ${JSON.stringify(item)} must be a whole number of ms in ${range}` });
    } else if (out.includes(n)) {
      problems.push({ key, message: `entry ${n} is listed twice; each horizon gives one markout per fill` });
    } else {
      out.push(n);
    }
  }
  if (items.length === 0) problems.push({ key, message: `=${JSON.stringify(raw)}: must list at least one horizon, e.g. 200,500` });
  if (out.length > MAX_HORIZONS) problems.push({ key, message: `lists ${out.length} horizons; at most ${MAX_HORIZONS}` });
  return out.sort((a, b) => a - b);
}

function parseCapOverrides(raw: unknown, problems: Problem[]): Record<string, CapOverride> {
  const key = 'MARKOUT_CAP_BPS_JSON';
  const range = `[${CAP_RANGE_BPS[0]}, ${CAP_RANGE_BPS[1]}]`;
  const isCap = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= CAP_RANGE_BPS[0] && v <= CAP_RANGE_BPS[1];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push({ key, message: `=${JSON.stringify(raw)}: must be a JSON object of instrument → cap in bps, e.g. {"GBP_JPY":1.0}` });
    return {};
  }
  const out: Record<string, CapOverride> = {};
  for (const [instrument, value] of Object.entries(raw)) {
    if (!INSTRUMENT_NAME.test(instrument)) {
      problems.push({ key, message: `key "${instrument}" is not an instrument name like EUR_USD` });
    } else if (isCap(value)) {
      out[instrument] = value;
    } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const byHorizon: Record<string, number> = {};
      for (const [h, cap] of Object.entries(value)) {
        if (!/^\d+$/.test(h)) problems.push({ key, message: `entry "${instrument}" key "${h}" must be a horizon in ms, e.g. "200"` });
        else if (!isCap(cap)) problems.push({ key, message: `entry "${instrument}"."${h}" must be a number in ${range}, got ${JSON.stringify(cap)}` });
        else byHorizon[String(Number(h))] = cap;
      }
      out[instrument] = byHorizon;
    } else {
      problems.push({ key, message: `entry "${instrument}" must be a number in ${range} or an object of horizon_ms → number, got ${JSON.stringify(value)}` });
    }
  }
  return out;
}

function crossProblems(c: Resolved<typeof MARKOUT_KNOBS>, horizons: number[], gate: number[], caps: Record<string, CapOverride>): Problem[] {
  const problems: Problem[] = [];
  const listed = `MARKOUT_HORIZONS_MS=${horizons.join(',')}`;
  if (c.MARKOUT_DEDUPE_WINDOW_MS < c.MARKOUT_GRACE_MS) {
    problems.push({
      key: 'MARKOUT_DEDUPE_WINDOW_MS',
      message: `=${c.MARKOUT_DEDUPE_WINDOW_MS}: must be ≥ MARKOUT_GRACE_MS=${c.MARKOUT_GRACE_MS}, else a re-sent fill could be forgotten while it is still on time and be counted twice`,
    });
  }
  if (horizons.length === 0) return problems; // the list itself is reported already
  for (const h of gate) {
    if (!horizons.includes(h)) problems.push({ key: 'MARKOUT_GATE_HORIZONS_MS', message: `entry ${h} is not in ${listed}; the gate can only compare horizons that are measured` });
  }
  if (!horizons.includes(c.MARKOUT_ADVERSE_HORIZON_MS)) {
    problems.push({ key: 'MARKOUT_ADVERSE_HORIZON_MS', message: `=${c.MARKOUT_ADVERSE_HORIZON_MS}: must be one of ${listed}` });
  }
  for (const [instrument, o] of Object.entries(caps)) {
    if (typeof o === 'number') continue;
    for (const h of Object.keys(o)) {
      if (!gate.includes(Number(h))) problems.push({ key: 'MARKOUT_CAP_BPS_JSON', message: `entry "${instrument}"."${h}": ${h} ms is not a gated horizon (MARKOUT_GATE_HORIZONS_MS=${gate.join(',')})` });
    }
  }
  return problems;
}

