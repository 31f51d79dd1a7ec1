/**
 * The rolling gates' knobs (DESIGN §6.2; seeds: operations-reference,
 * operations-runbook), declared once for resolveConfig: explicit value →
 * environment variable → default. The keys are the environment names.
 * Every problem — a bad value, a bad JSON entry, two knobs that contradict
 * each other — is reported at once in one ConfigError naming the knob and the
 * accepted range. Defaults and their reasons: docs/gates.md.
 */
import { resolveConfig, type Resolved, type Spec, collectProblems, type ConfigProblem } from '../runtime/config.ts';
import { ConfigError } from '../runtime/errors.ts';
import { DEFAULT_SESSIONS, SessionCalendar, sessionProblems, type SessionSpec } from './sessions.ts';
import { INSTRUMENT_NAME } from '../model/instruments.ts';

/** Hysteresis buffers are clamped to this range (seed: operations-reference). */
export const BUF_RANGE = [0, 0.3] as const;

/** The scalar knobs. */
export const GATES_KNOBS = {
  EVAL_INTERVAL_SEC: { kind: 'integer', default: 60, min: 1, max: 86_400, doc: 'seconds of stream time between evaluations' },
  GATES_BLOB_MAX_AGE_SEC: { kind: 'integer', default: 180, min: 1, max: 86_400, doc: 'seconds after which the gates blob is stale for the allocator, ≥ EVAL_INTERVAL_SEC' },
  SESSION_EXIT_MINUTES: { kind: 'number', default: 5, min: 0, max: 720, doc: 'minutes before the market close during which every instrument is ineligible' },
  GATES_MIN_TRADES: { kind: 'integer', default: 10, min: 0, max: 1_000_000, doc: 'entries the simulated span needs at least' },
  GATES_CALMAR_FLOOR: { kind: 'number', default: 0.15, min: 0, max: 1_000_000, doc: 'Calmar floor of the raw pass' },
  HYSTERESIS_BUF: { kind: 'number', default: 0.1, min: BUF_RANGE[0], max: BUF_RANGE[1], doc: 'default hysteresis buffer: enter at floor·(1+buf), leave below floor·(1−buf)' },
  ECHO_MIN_REPETITIONS: { kind: 'integer', default: 3, min: 0, max: 1_000_000, doc: 'occurrences of the latest sign pattern needed (features.repetition)' },
  ECHO_HAZARD_MAX: { kind: 'number', default: 0.7, min: 0, max: 1, doc: 'highest hazard (EWMA flip rate) allowed' },
  CALMAR_CAP: { kind: 'number', default: 1000, min: 1, max: 1e12, doc: 'Calmar reported for zero drawdown with a positive return, and bound of |Calmar|' },
  CALMAR_PERIODS_PER_YEAR: { kind: 'number', default: 362_880, min: 1, max: 1e9, doc: 'bars per year for annualisation (M1 FX: 252 days × 1440 minutes)' },
  GATES_SPAN_DAYS: { kind: 'number', default: 7, min: 0.01, max: 90, doc: 'days of bars simulated at each evaluation' },
  SPAN_MAX_MISSING_BARS: { kind: 'integer', default: 10, min: 0, max: 10_000_000, doc: 'open-market bars a span may miss and still be strict' },
  SPAN_MIN_BARS: { kind: 'integer', default: 1440, min: 1, max: 10_000_000, doc: 'bars a span must hold at least' },
  COOLDOWN_MISSES: { kind: 'integer', default: 4, min: 1, max: 10_000, doc: 'consecutive misses that start a cooldown' },
  COOLDOWN_SEC: { kind: 'integer', default: 7200, min: 0, max: 604_800, doc: 'cooldown length in seconds of stream time' },
} as const satisfies Spec;

/** The JSON knobs; their content is checked after parsing. */
export const GATES_JSON_KNOBS = {
  HYSTERESIS_PAIR_JSON: { kind: 'json', default: {}, doc: 'per-instrument hysteresis buffers, JSON object instrument → number in [0, 0.3], e.g. {"USD_CHF":0.15}' },
  SESSIONS_JSON: { kind: 'json', default: DEFAULT_SESSIONS, doc: 'session calendar, JSON array of {name, tz, open:"HH:MM", close:"HH:MM", days:[1..7]}' },
} as const satisfies Spec;

/** Every knob, for describeConfig and docs. */
export const GATES_CONFIG = { ...GATES_KNOBS, ...GATES_JSON_KNOBS };

export type GatesKnob = keyof typeof GATES_CONFIG;

export interface GatesConfig {
  /** EVAL_INTERVAL_SEC, s; default 60. */
  evalIntervalSec: number;
  /** GATES_BLOB_MAX_AGE_SEC, s; default 180. */
  blobMaxAgeSec: number;
  /** SESSION_EXIT_MINUTES, min; default 5. */
  sessionExitMinutes: number;
  /** GATES_MIN_TRADES; default 10. */
  minTrades: number;
  /** GATES_CALMAR_FLOOR; default 0.15. */
  calmarFloor: number;
  /** HYSTERESIS_BUF; default 0.10. */
  buf: number;
  /** HYSTERESIS_PAIR_JSON after clamping to [0, 0.3]. */
  pairBufs: Readonly<Record<string, number>>;
  /** ECHO_MIN_REPETITIONS; default 3. */
  echoMinRepetitions: number;
  /** ECHO_HAZARD_MAX; default 0.70. */
  echoHazardMax: number;
  /** CALMAR_CAP; default 1000. */
  calmarCap: number;
  /** CALMAR_PERIODS_PER_YEAR; default 362 880. */
  periodsPerYear: number;
  /** GATES_SPAN_DAYS, days; default 7. */
  spanDays: number;
  /** SPAN_MAX_MISSING_BARS; default 10. */
  spanMaxMissingBars: number;
  /** SPAN_MIN_BARS; default 1440. */
  spanMinBars: number;
  /** COOLDOWN_MISSES; default 4. */
  cooldownMisses: number;
  /** COOLDOWN_SEC, s; default 7200. */
  cooldownSec: number;
  /** SESSIONS_JSON as given. */
  sessions: readonly SessionSpec[];
  /** The calendar built from `sessions`. */
  calendar: SessionCalendar;
}

export interface ResolvedGatesConfig {
  config: GatesConfig;
  /** Things to log once at start, e.g. a pair buffer that was clamped. */
  warnings: string[];
}

type Problem = ConfigProblem;

/**
 * Resolves and checks every gates knob. Throws one ConfigError listing every
 * problem; values that are accepted but changed (clamped pair buffers) come
 * back in `warnings` for the caller to log.
 */
export function resolveGatesConfig(explicit: Partial<Record<GatesKnob, unknown>> = {}, env: NodeJS.ProcessEnv = process.env): ResolvedGatesConfig {
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const scalars = collectProblems(problems, () => resolveConfig(GATES_KNOBS, explicit, env));
  const json = collectProblems(problems, () => resolveConfig(GATES_JSON_KNOBS, explicit, env));

  const pairBufs = json ? parsePairBufs(json.HYSTERESIS_PAIR_JSON, problems, warnings) : {};
  let sessions: SessionSpec[] = [];
  if (json) {
    const found = sessionProblems(json.SESSIONS_JSON);
    problems.push(...found.map((message) => ({ key: 'SESSIONS_JSON', message })));
    if (found.length === 0) sessions = json.SESSIONS_JSON as SessionSpec[];
  }
  if (scalars) problems.push(...crossProblems(scalars));
  if (problems.length > 0 || !scalars) throw new ConfigError(problems);

  return {
    warnings,
    config: {
      evalIntervalSec: scalars.EVAL_INTERVAL_SEC,
      blobMaxAgeSec: scalars.GATES_BLOB_MAX_AGE_SEC,
      sessionExitMinutes: scalars.SESSION_EXIT_MINUTES,
      minTrades: scalars.GATES_MIN_TRADES,
      calmarFloor: scalars.GATES_CALMAR_FLOOR,
      buf: scalars.HYSTERESIS_BUF,
      pairBufs,
      echoMinRepetitions: scalars.ECHO_MIN_REPETITIONS,
      echoHazardMax: scalars.ECHO_HAZARD_MAX,
      calmarCap: scalars.CALMAR_CAP,
      periodsPerYear: scalars.CALMAR_PERIODS_PER_YEAR,
      spanDays: scalars.GATES_SPAN_DAYS,
      spanMaxMissingBars: scalars.SPAN_MAX_MISSING_BARS,
      spanMinBars: scalars.SPAN_MIN_BARS,
      cooldownMisses: scalars.COOLDOWN_MISSES,
      cooldownSec: scalars.COOLDOWN_SEC,
      sessions,
      calendar: new SessionCalendar(sessions),
    },
  };
}

/** Every knob at its default. */
export const DEFAULT_GATES_CONFIG: GatesConfig = Object.freeze(resolveGatesConfig({}, {}).config);

/** The hysteresis buffer of an instrument: its HYSTERESIS_PAIR_JSON entry, else HYSTERESIS_BUF. */
export function bufFor(config: GatesConfig, instrument: string): number {
  return Object.hasOwn(config.pairBufs, instrument) ? config.pairBufs[instrument]! : config.buf;
}

function parsePairBufs(raw: unknown, problems: Problem[], warnings: string[]): Record<string, number> {
  const key = 'HYSTERESIS_PAIR_JSON';
  const range = `[${BUF_RANGE[0]}, ${BUF_RANGE[1]}]`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push({ key, message: `=${JSON.stringify(raw)}: must be a JSON object of instrument → buffer in ${range}, e.g. {"USD_CHF":0.15}` });
    return {};
  }
  const out: Record<string, number> = {};
  for (const [instrument, value] of Object.entries(raw)) {
    if (!INSTRUMENT_NAME.test(instrument)) {
      problems.push({ key, message: `key "${instrument}" is not an instrument name like EUR_USD` });
    } else if (typeof value !== 'number' || !Number.isFinite(value)) {
      problems.push({ key, message: `entry "${instrument}" must be a number in ${range}, got ${JSON.stringify(value)}` });
    } else {
      const clamped = Math.min(BUF_RANGE[1], Math.max(BUF_RANGE[0], value));
      if (clamped !== value) warnings.push(`${key}: ${instrument} buffer ${value} clamped to ${clamped} (buffers are limited to ${range})`);
      out[instrument] = clamped;
    }
  }
  return out;
}

function crossProblems(c: Resolved<typeof GATES_KNOBS>): Problem[] {
  const problems: Problem[] = [];
  if (c.GATES_BLOB_MAX_AGE_SEC < c.EVAL_INTERVAL_SEC) {
    problems.push({
      key: 'GATES_BLOB_MAX_AGE_SEC',
      message: `=${c.GATES_BLOB_MAX_AGE_SEC}: must be ≥ EVAL_INTERVAL_SEC=${c.EVAL_INTERVAL_SEC}, else every blob is stale before the next one is written; about 3 × EVAL_INTERVAL_SEC is usual`,
    });
  }
  const topEntry = c.GATES_CALMAR_FLOOR * (1 + BUF_RANGE[1]);
  if (c.CALMAR_CAP <= topEntry) {
    problems.push({
      key: 'CALMAR_CAP',
      message: `=${c.CALMAR_CAP}: must be > GATES_CALMAR_FLOOR × (1 + ${BUF_RANGE[1]}) = ${topEntry}, else a capped Calmar could not reach the entry threshold`,
    });
  }
  const slots = Math.floor((c.GATES_SPAN_DAYS * 86_400) / 60);
  if (c.SPAN_MIN_BARS > slots) {
    problems.push({
      key: 'SPAN_MIN_BARS',
      message: `=${c.SPAN_MIN_BARS}: must be ≤ the ${slots} M1 bars GATES_SPAN_DAYS=${c.GATES_SPAN_DAYS} can hold, else no span is ever long enough`,
    });
  }
  return problems;
}
