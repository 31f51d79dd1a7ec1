/**
 * One instrument's rolling gate evaluation at stream time `now` (DESIGN §6.2;
 * docs/gates.md has the full rules). Pure and deterministic: time comes in as
 * `now`, state comes in and goes out as a plain JSON object.
 *
 * 1. Measure: the bars in (now − GATES_SPAN_DAYS, now] are checked for span
 *    integrity and simulated (trades, Calmar); the session calendar gives
 *    `session_open` and the minutes to the market close.
 * 2. Raw pass: every rule below passes with the plain Calmar floor.
 * 3. Eligibility: the same rules, but the Calmar threshold has hysteresis —
 *    floor·(1+buf) to enter, floor·(1−buf) to stay — and no cooldown may run.
 *    An instrument is eligible exactly when `reasons` is empty.
 *
 * Rules, in the order of `reasons`:
 *   span_integrity   the span is not strict (missing bars, too short, unordered)
 *   session_closed   no session is open
 *   session_exit     within SESSION_EXIT_MINUTES of the market close (inclusive)
 *   min_trades       trades < GATES_MIN_TRADES
 *   calmar           Calmar below the threshold that applies (floor for the raw
 *                    pass; floor·(1±buf) for eligibility)
 *   echo_repetition  repetition missing or < ECHO_MIN_REPETITIONS
 *   echo_hazard      hazard missing or > ECHO_HAZARD_MAX
 *   cooldown         a cooldown runs (or starts at this evaluation)
 *
 * Counting. An evaluation *counts* when the market is open, outside the exit
 * window, and no cooldown runs; the others (the evaluator "skips closed
 * markets") leave the state untouched, so the nightly close neither clears
 * eligibility nor adds misses. At a counted evaluation:
 *   - a *pass* is being eligible, a *fail* is not being eligible;
 *   - a *miss* is a fail of an instrument *in play*: eligible at its last
 *     counted evaluation, or already on a run of misses. An instrument that
 *     was never eligible is just not eligible; it does not accumulate misses,
 *     or every idle instrument would sit in cooldown and need two hours to
 *     come back.
 *   - a pass ends a run of misses; COOLDOWN_MISSES consecutive misses start a
 *     cooldown of COOLDOWN_SEC: ineligible until now + COOLDOWN_SEC, with the
 *     pass/fail/miss counters reset. When it ends (now ≥ cooldown_until) the
 *     instrument starts afresh: not eligible, so it must reach floor·(1+buf).
 */
import { bufFor, type GatesConfig } from './config.ts';
import { isOpen, minutesToClose } from './sessions.ts';
import { simulate, type SimBar, type SimResult } from './simulate.ts';
import { checkSpan, type SpanReport } from './span.ts';

export const GATE_REASONS = ['span_integrity', 'session_closed', 'session_exit', 'min_trades', 'calmar', 'echo_repetition', 'echo_hazard', 'cooldown'] as const;
export type GateReason = (typeof GATE_REASONS)[number];

/** Per-instrument memory between evaluations; plain JSON. */
export interface GateState {
  /** Eligible at the last counted evaluation: the hysteresis latch. */
  eligible: boolean;
  /** Misses in a row (see the module comment). */
  consecutiveMisses: number;
  /** End of the running cooldown, epoch ms; null when none. */
  cooldownUntil: number | null;
  /** Counted evaluations passed / failed since the last cooldown. */
  passes: number;
  fails: number;
}

/** The gates.v1 record (schemas/avro/gate.avsc). */
export interface GateDecision {
  instrument: string;
  ts: number;
  eligible: boolean;
  raw_pass: boolean;
  trades: number;
  calmar: number;
  buf: number;
  /** Latest repetition; 0 when the features have none yet. */
  repetition: number;
  /** Latest hazard; 1 (the worst) when the features have none yet. */
  hazard: number;
  span_ok: boolean;
  session_open: boolean;
  cooldown_until: number | null;
  /** Misses in a row counted at this evaluation (the COOLDOWN_MISSES-th at the one that starts a cooldown). */
  consecutive_misses: number;
  reasons: GateReason[];
}

/** What the rules look at, measured from the bars or given directly (tests, replays of stored metrics). */
export interface GateMetrics {
  trades: number;
  calmar: number;
  spanOk: boolean;
  sessionOpen: boolean;
  /** Minutes until the market closes (0 when closed). */
  minutesToClose: number;
  /** Latest features.repetition; null when not computed yet. */
  repetition: number | null;
  /** Latest features.hazard; null when not computed yet. */
  hazard: number | null;
}

export interface GateInput {
  instrument: string;
  /** Stream time of the evaluation, epoch ms. */
  now: number;
  /** The instrument's bars, ascending; those outside (now − span, now] are ignored. */
  bars: readonly SimBar[];
  repetition: number | null;
  hazard: number | null;
}

export interface GateEvaluation {
  decision: GateDecision;
  state: GateState;
  span: SpanReport;
  simulation: Omit<SimResult, 'returns'>;
}

const DAY_MS = 86_400_000;
/** Relative slack on Calmar thresholds, so 0.165 enters at 0.15·(1+0.10) = 0.16500000000000004. */
const THRESHOLD_EPS = 1e-12;

export function initialGateState(): GateState {
  return { eligible: false, consecutiveMisses: 0, cooldownUntil: null, passes: 0, fails: 0 };
}

/** Measures the span and decides. */
export function evaluateGate(input: GateInput, prev: GateState | undefined, config: GatesConfig): GateEvaluation {
  const { metrics, span, simulation } = measureGate(input, config);
  const { decision, state } = decideGate(input.instrument, input.now, metrics, prev ?? initialGateState(), config);
  return { decision, state, span, simulation };
}

/** Span integrity, simulation and session figures at `input.now`. */
export function measureGate(input: GateInput, config: GatesConfig): { metrics: GateMetrics; span: SpanReport; simulation: Omit<SimResult, 'returns'> } {
  const from = input.now - config.spanDays * DAY_MS;
  const bars = input.bars.filter((b) => b.ts > from && b.ts <= input.now);
  const span = checkSpan(config.calendar, bars.map((b) => b.ts), {
    maxMissingBars: config.spanMaxMissingBars, minBars: config.spanMinBars, asOfMs: input.now,
  });
  // The per-bar returns (one per bar of the span) stay out of the evaluation's output.
  const { returns: _returns, ...simulation } = simulate(bars, { periodsPerYear: config.periodsPerYear, calmarCap: config.calmarCap });
  const sessionOpen = isOpen(config.calendar, input.now);
  return {
    span,
    simulation,
    metrics: {
      trades: simulation.trades,
      calmar: simulation.calmar,
      spanOk: span.ok,
      sessionOpen,
      minutesToClose: sessionOpen ? minutesToClose(config.calendar, input.now) : 0,
      repetition: input.repetition,
      hazard: input.hazard,
    },
  };
}

/** Applies the rules, hysteresis and cooldown to measured metrics. Pure. */
export function decideGate(instrument: string, now: number, m: GateMetrics, prev: GateState, config: GatesConfig): { decision: GateDecision; state: GateState } {
  const buf = bufFor(config, instrument);
  const state = prev.cooldownUntil !== null && now >= prev.cooldownUntil ? initialGateState() : prev;
  const cooling = state.cooldownUntil !== null;
  const exitWindow = m.sessionOpen && m.minutesToClose <= config.sessionExitMinutes;
  const repetition = m.repetition !== null && Number.isFinite(m.repetition) ? Math.floor(m.repetition) : null;
  const hazard = m.hazard !== null && Number.isFinite(m.hazard) ? m.hazard : null;

  const failing = (calmarThreshold: number): GateReason[] => {
    const reasons: GateReason[] = [];
    if (!m.spanOk) reasons.push('span_integrity');
    if (!m.sessionOpen) reasons.push('session_closed');
    if (exitWindow) reasons.push('session_exit');
    if (m.trades < config.minTrades) reasons.push('min_trades');
    if (m.calmar < calmarThreshold - THRESHOLD_EPS * Math.abs(calmarThreshold)) reasons.push('calmar');
    if (repetition === null || repetition < config.echoMinRepetitions) reasons.push('echo_repetition');
    if (hazard === null || hazard > config.echoHazardMax) reasons.push('echo_hazard');
    return reasons;
  };
  const rawPass = failing(config.calmarFloor).length === 0;
  const reasons = failing(config.calmarFloor * (state.eligible ? 1 - buf : 1 + buf));

  let next: GateState = state;
  let misses = state.consecutiveMisses;
  if (cooling) {
    reasons.push('cooldown');
  } else if (m.sessionOpen && !exitWindow) {
    const eligible = reasons.length === 0;
    const inPlay = state.eligible || state.consecutiveMisses > 0;
    misses = eligible ? 0 : inPlay ? state.consecutiveMisses + 1 : 0;
    next = { eligible, consecutiveMisses: misses, cooldownUntil: null, passes: state.passes + (eligible ? 1 : 0), fails: state.fails + (eligible ? 0 : 1) };
    if (misses >= config.cooldownMisses) {
      reasons.push('cooldown');
      next = { ...initialGateState(), cooldownUntil: now + config.cooldownSec * 1000 };
    }
  }

  return {
    state: next,
    decision: {
      instrument,
      ts: now,
      eligible: reasons.length === 0,
      raw_pass: rawPass,
      trades: m.trades,
      calmar: m.calmar,
      buf,
      repetition: repetition ?? 0,
      hazard: hazard ?? 1,
      span_ok: m.spanOk,
      session_open: m.sessionOpen,
      cooldown_until: next.cooldownUntil,
      consecutive_misses: misses,
      reasons,
    },
  };
}
