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
import { CompoundedCurve, growthFactor } from './calmar.ts';
import { isOpen, minutesToClose, type SessionCalendar } from './sessions.ts';
import { barReturn, positionOf, simulate, validClose, validSpread, type SimBar, type SimResult } from './simulate.ts';
import { checkSpan, M1_MS, missingAfter, missingBetween, type SpanReport } from './span.ts';

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
  return {
    span,
    simulation,
    metrics: {
      trades: simulation.trades,
      calmar: simulation.calmar,
      spanOk: span.ok,
      ...sessionAt(config.calendar, input.now),
      repetition: input.repetition,
      hazard: input.hazard,
    },
  };
}

/** The session figures of the rules at `now`; the same for every instrument, so an evaluator computes them once per evaluation. */
export function sessionAt(cal: SessionCalendar, now: number): Pick<GateMetrics, 'sessionOpen' | 'minutesToClose'> {
  const sessionOpen = isOpen(cal, now);
  return { sessionOpen, minutesToClose: sessionOpen ? minutesToClose(cal, now) : 0 };
}

/** Applies the rules, hysteresis and cooldown to measured metrics. Pure. */
export function decideGate(instrument: string, now: number, m: GateMetrics, prev: GateState, config: GatesConfig): { decision: GateDecision; state: GateState } {
  const buf = bufFor(config, instrument);
  const state = prev.cooldownUntil !== null && now >= prev.cooldownUntil ? initialGateState() : prev;
  const cooling = state.cooldownUntil !== null;
  const exitWindow = m.sessionOpen && m.minutesToClose <= config.sessionExitMinutes;
  const repetition = m.repetition !== null && Number.isFinite(m.repetition) ? Math.floor(m.repetition) : null;
  const hazard = m.hazard !== null && Number.isFinite(m.hazard) ? m.hazard : null;

  const rawPass = failingRules(m, exitWindow, repetition, hazard, config.calmarFloor, config).length === 0;
  const reasons = failingRules(m, exitWindow, repetition, hazard, config.calmarFloor * (state.eligible ? 1 - buf : 1 + buf), config);

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

/** The rules that fail, in the order of `reasons`, with the given Calmar threshold (decideGate). */
function failingRules(m: GateMetrics, exitWindow: boolean, repetition: number | null, hazard: number | null, calmarThreshold: number, config: GatesConfig): GateReason[] {
  const reasons: GateReason[] = [];
  if (!m.spanOk) reasons.push('span_integrity');
  if (!m.sessionOpen) reasons.push('session_closed');
  if (exitWindow) reasons.push('session_exit');
  if (m.trades < config.minTrades) reasons.push('min_trades');
  if (m.calmar < calmarThreshold - THRESHOLD_EPS * Math.abs(calmarThreshold)) reasons.push('calmar');
  if (repetition === null || repetition < config.echoMinRepetitions) reasons.push('echo_repetition');
  if (hazard === null || hazard > config.echoHazardMax) reasons.push('echo_hazard');
  return reasons;
}

/** What SpanSeries.measure gives: measureGate's span and simulation figures, without the span report's log details. */
export interface SeriesMeasure {
  /** Bars in the span. */
  bars: number;
  missingBars: number;
  spanOk: boolean;
  simulation: Omit<SimResult, 'returns'>;
}

/**
 * One instrument's bars in columns (typed arrays), kept by the evaluator
 * between evaluations so that an evaluation does not redo, for thousands of
 * bars, work whose result cannot have changed. `measure(now)` gives exactly
 * (bit for bit) measureGate's figures over the same bars. A series is a
 * cache: the evaluator rebuilds it from the window store when in doubt, and
 * its answers do not depend on when it was built.
 *
 * Computed once per bar, when the bar is appended:
 * - the open-market bars missing in the gap before it (missingBetween), as a
 *   running total: a span's count is a difference plus its trailing gap;
 * - its entry (0 → ±1 or a flip), as a running total: a span's trades are a
 *   difference plus its first bar's, which enters from flat;
 * - its growth factor 1 + r_t, with the previous bar's position and the last
 *   valid close and spread before it in the series. Inside a span, r_t (t ≥ 1)
 *   is the span's own once the span has a valid spread and a valid close of
 *   its own (or the series has none before the span), so only the span's
 *   first bar, and the rare bars before those, are simulated afresh, with
 *   simulate's own steps (simulate.ts).
 * Only the factors ≠ 1 are kept (`moves`): a flat bar with no position change
 * has r = 0 exactly, and a factor of exactly 1 leaves the compounded curve
 * where it is (CompoundedCurve.flat). The curve is walked over the span's
 * moves at each evaluation, in calmar.ts's order of operations: Π(1 + r) and
 * the drawdowns depend on where the span starts.
 *
 * Bars must come in strictly increasing time: `append` refuses any other (the
 * caller rebuilds the series from its store), so a span never holds
 * unordered bars. Evaluations must move forward: `measure` drops the bars up
 * to its span's start, and `covers` tells whether a span can still be measured.
 */
export class SpanSeries {
  // Rows, one per bar: rows [head, end) are live, row i is bar number rowBase + i.
  private rowCap = 0;
  private head = 0;
  private end = 0;
  private rowBase = 0;
  private ts = new Float64Array(0);
  /** Valid close or NaN. */
  private close = new Float64Array(0);
  /** Valid spread or NaN. */
  private spread = new Float64Array(0);
  private pos = new Int8Array(0);
  /** Running totals through each bar. */
  private entries = new Float64Array(0);
  private missing = new Float64Array(0);
  /** Moves of the bars before each bar: the bar's first move number. */
  private movesBefore = new Float64Array(0);

  // Moves, the growth factors ≠ 1 in bar order: [moveHead, moveEnd) are live, slot i is move number moveBase + i.
  private moveCap = 0;
  private moveHead = 0;
  private moveEnd = 0;
  private moveBase = 0;
  private moves = new Float64Array(0);

  // The simulation carried to the next append, as simulate carries it.
  private lastTs = -Infinity;
  private lastPos = 0;
  private lastClose = NaN;
  private lastSpread = 0;
  private entriesTotal = 0;
  private missingTotal = 0;
  private movesTotal = 0;
  /** Bar numbers of the first valid spread and close; Infinity while none. */
  private firstSpread = Infinity;
  private firstClose = Infinity;
  /** Bars with ts ≤ this have been dropped. */
  private droppedThrough = -Infinity;
  private readonly curve = new CompoundedCurve();

  constructor(private readonly cal: SessionCalendar, private readonly barMs: number = M1_MS) {}

  /** Appends the next bar; false (and nothing changed) when its ts is not after the last bar's. */
  append(bar: SimBar): boolean {
    const ts = bar.ts;
    if (!(ts > this.lastTs) || !Number.isFinite(ts)) return false;
    if (this.end === this.rowCap) this.makeRowRoom();
    const i = this.end;
    const n = this.rowBase + i;
    const pos = positionOf(bar.signal);
    const spread = validSpread(bar.spread_bps);
    const close = validClose(bar.close);
    if (spread === spread) {
      this.lastSpread = spread;
      if (this.firstSpread === Infinity) this.firstSpread = n;
    }
    const factor = growthFactor(barReturn(this.lastPos, pos, this.lastClose, close, this.lastSpread));
    this.movesBefore[i] = this.movesTotal;
    if (factor !== 1) {
      if (this.moveEnd === this.moveCap) this.makeMoveRoom();
      this.moves[this.moveEnd++] = factor;
      this.movesTotal += 1;
    }
    if (pos !== 0 && pos !== this.lastPos) this.entriesTotal += 1;
    if (this.lastTs !== -Infinity) this.missingTotal += missingBetween(this.cal, this.lastTs, ts, this.barMs);
    this.entries[i] = this.entriesTotal;
    this.missing[i] = this.missingTotal;
    this.ts[i] = ts;
    this.close[i] = close;
    this.spread[i] = spread;
    this.pos[i] = pos;
    this.lastTs = ts;
    this.lastPos = pos;
    if (close > 0) {
      this.lastClose = close;
      if (this.firstClose === Infinity) this.firstClose = n;
    }
    this.end = i + 1;
    return true;
  }

  /** Whether the span (from, …] can be measured: no bar after `from` has been dropped. */
  covers(from: number): boolean {
    return from >= this.droppedThrough;
  }

  /**
   * measureGate's span and simulation figures for the bars in (from, now],
   * from = now − GATES_SPAN_DAYS, and drops the bars at or before `from`.
   * Call only when `covers(from)`.
   */
  measure(now: number, config: GatesConfig): SeriesMeasure {
    const from = now - config.spanDays * DAY_MS;
    const s = this.upperBound(this.head, from);
    const e = this.upperBound(s, now);
    this.head = s;
    this.moveHead = this.moveOf(s) - this.moveBase;
    if (from > this.droppedThrough) this.droppedThrough = from;
    const n = e - s;

    let missingBars = 0;
    let trades = 0;
    const curve = this.curve.reset();
    if (n > 0) {
      missingBars = this.missing[e - 1]! - this.missing[s]! + missingAfter(this.cal, this.ts[e - 1]!, now, this.barMs);
      trades = (this.pos[s] !== 0 ? 1 : 0) + this.entries[e - 1]! - this.entries[s]!;
      // simulate's own steps, from flat at the span's first bar, until the kept factors are the span's own.
      let spreadOwn = this.firstSpread >= this.rowBase + s;
      let closeOwn = this.firstClose >= this.rowBase + s;
      let prevPos = 0;
      let prevClose = NaN;
      let spread = 0;
      let t = s;
      for (; t < e; t++) {
        const sp = this.spread[t]!;
        if (sp === sp) spreadOwn = true;
        if (t > s && spreadOwn && closeOwn) break;
        if (sp === sp) spread = sp;
        const pos = this.pos[t]!;
        const close = this.close[t]!;
        curve.step(growthFactor(barReturn(prevPos, pos, prevClose, close, spread)));
        prevPos = pos;
        if (close > 0) {
          prevClose = close;
          closeOwn = true;
        }
      }
      const lo = this.moveOf(t) - this.moveBase;
      const hi = this.moveOf(e) - this.moveBase;
      curve.steps(this.moves, lo, hi);
      curve.flat(e - t - (hi - lo));
    }
    const spanOk = n >= config.spanMinBars && missingBars <= config.spanMaxMissingBars;
    return { bars: n, missingBars, spanOk, simulation: { trades, ...curve.stats(config) } };
  }

  /** The first move number of row i's bar (the next move number for i = end). */
  private moveOf(i: number): number {
    return i < this.end ? this.movesBefore[i]! : this.movesTotal;
  }

  /** First row in [lo, end) whose ts is > x (end when none). */
  private upperBound(lo: number, x: number): number {
    let hi = this.end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ts[mid]! <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Moves the live rows to the front, into larger columns unless more than half of the rows were dropped ones. */
  private makeRowRoom(): void {
    const live = this.end - this.head;
    const grow = live * 2 >= this.rowCap;
    const cap = grow ? Math.max(1024, this.rowCap * 2) : this.rowCap;
    const { head, end } = this;
    this.ts = relocate(this.ts, grow ? new Float64Array(cap) : this.ts, head, end);
    this.close = relocate(this.close, grow ? new Float64Array(cap) : this.close, head, end);
    this.spread = relocate(this.spread, grow ? new Float64Array(cap) : this.spread, head, end);
    this.pos = relocate(this.pos, grow ? new Int8Array(cap) : this.pos, head, end);
    this.entries = relocate(this.entries, grow ? new Float64Array(cap) : this.entries, head, end);
    this.missing = relocate(this.missing, grow ? new Float64Array(cap) : this.missing, head, end);
    this.movesBefore = relocate(this.movesBefore, grow ? new Float64Array(cap) : this.movesBefore, head, end);
    this.rowBase += head;
    this.end = live;
    this.head = 0;
    this.rowCap = cap;
  }

  /** The same for the moves. */
  private makeMoveRoom(): void {
    const live = this.moveEnd - this.moveHead;
    const grow = live * 2 >= this.moveCap;
    const cap = grow ? Math.max(1024, this.moveCap * 2) : this.moveCap;
    this.moves = relocate(this.moves, grow ? new Float64Array(cap) : this.moves, this.moveHead, this.moveEnd);
    this.moveBase += this.moveHead;
    this.moveEnd = live;
    this.moveHead = 0;
    this.moveCap = cap;
  }
}

/** Rows [head, end) of `from` moved to the front of `to` (which may be `from`). */
function relocate<A extends Float64Array | Int8Array>(from: A, to: A, head: number, end: number): A {
  if (to === from) from.copyWithin(0, head, end);
  else to.set(from.subarray(head, end));
  return to;
}
