/**
 * Strict span integrity (DESIGN §6.2, seed "strict spans"): the gates only
 * trust a simulation over one contiguous run of bars. A bar is *missing* when
 * its slot on the bar grid falls in open market (session calendar) and no bar
 * arrived for it; gaps while the market is closed (nights between New York's
 * close and Tokyo's open, weekends) are not missing bars.
 *
 * Bars are identified by their close time (DESIGN §4), so the bar closing at
 * T covers [T − bar, T) and is expected when the market is open at T − bar.
 * Between consecutive bars a and b there are round((b − a)/bar) − 1 empty
 * slots. When `asOfMs` is given, the slots after the last bar count too, up to
 * but excluding the bar that closes at `asOfMs` itself (it may still be in
 * flight when the evaluator runs). The time before the first bar is not
 * counted: a young instrument is caught by `minBars` instead.
 */
import { openIntervals, type SessionCalendar } from './sessions.ts';

export const M1_MS = 60_000;

export interface SpanParams {
  /** Missing open-market bars tolerated; SPAN_MAX_MISSING_BARS, default 10. */
  maxMissingBars: number;
  /** Bars the span must hold at least; SPAN_MIN_BARS, default 1440 (one day of M1). */
  minBars: number;
  /** Bar length in ms; default 60 000 (M1). */
  barMs?: number;
  /** Evaluation time: when given, open-market slots after the last bar count as missing. */
  asOfMs?: number;
}

export type SpanFailure = 'unordered' | 'too_short' | 'missing_bars';

export interface SpanGap {
  /** Close time of the bar before the gap. */
  after: number;
  /** Close time of the bar after the gap (or the evaluation time for a trailing gap). */
  before: number;
  /** Open-market bars missing in it. */
  missing: number;
}

export interface SpanReport {
  ok: boolean;
  bars: number;
  missingBars: number;
  /** The gap with the most missing bars, for the log line; null when none is missing. */
  worstGap: SpanGap | null;
  /** Every rule the span breaks, in this order: unordered, too_short, missing_bars. */
  failures: SpanFailure[];
  /** One line for logs, e.g. "14 open-market bars missing (tolerance 10); worst gap …". */
  detail: string;
}

/** Checks the bar close times (ascending) of one instrument's span. Pure. */
export function checkSpan(cal: SessionCalendar, barTs: readonly number[], p: SpanParams): SpanReport {
  const bar = p.barMs ?? M1_MS;
  const failures: SpanFailure[] = [];
  let missingBars = 0;
  let worstGap: SpanGap | null = null;
  const note = (after: number, before: number, missing: number): void => {
    missingBars += missing;
    if (missing > 0 && (worstGap === null || missing > worstGap.missing)) worstGap = { after, before, missing };
  };

  let unordered = false;
  for (let i = 1; i < barTs.length; i++) {
    const a = barTs[i - 1]!;
    const b = barTs[i]!;
    if (!(b > a)) {
      unordered = true;
      continue;
    }
    note(a, b, missingBetween(cal, a, b, bar));
  }
  const last = barTs[barTs.length - 1];
  if (p.asOfMs !== undefined && last !== undefined) note(last, p.asOfMs, missingAfter(cal, last, p.asOfMs, bar));

  if (unordered) failures.push('unordered');
  if (barTs.length < p.minBars) failures.push('too_short');
  if (missingBars > p.maxMissingBars) failures.push('missing_bars');
  return { ok: failures.length === 0, bars: barTs.length, missingBars, worstGap, failures, detail: describe(failures, barTs.length, missingBars, worstGap, p) };
}

/**
 * Open-market bars missing between consecutive bars closing at `a` < `b`:
 * the round((b − a)/bar) − 1 empty slots whose minute starts in open market.
 * It depends on the two bars only, so a caller that keeps a span between
 * evaluations can count each gap once (evaluate.ts, SpanSeries).
 */
export function missingBetween(cal: SessionCalendar, a: number, b: number, bar: number = M1_MS): number {
  const slots = Math.round((b - a) / bar) - 1;
  return slots > 0 ? openSlots(cal, a, slots, bar) : 0;
}

/**
 * Open-market bars missing after the last bar (closing at `last`) up to
 * `asOf`, the bar closing at `asOf` itself excepted (it may be in flight).
 */
export function missingAfter(cal: SessionCalendar, last: number, asOf: number, bar: number = M1_MS): number {
  if (!(asOf > last)) return 0;
  const slots = Math.floor((asOf - last) / bar) - 1;
  return slots > 0 ? openSlots(cal, last, slots, bar) : 0;
}

/**
 * How many of the `slots` bar slots after the bar closing at `after` start in
 * open market: slot k (1-based) starts at after + (k−1)·bar. Counted from the
 * calendar's open intervals, so a weekend gap costs a handful of interval
 * checks rather than one per minute.
 */
function openSlots(cal: SessionCalendar, after: number, slots: number, bar: number): number {
  let count = 0;
  for (const [start, end] of openIntervals(cal, after, after + slots * bar)) {
    // Grid points after + i·bar with start ≤ point < end.
    count += Math.ceil((end - after) / bar) - Math.ceil((start - after) / bar);
  }
  return count;
}

function describe(failures: readonly SpanFailure[], bars: number, missing: number, worst: SpanGap | null, p: SpanParams): string {
  const iso = (t: number) => new Date(t).toISOString();
  const parts: string[] = [];
  if (failures.includes('unordered')) parts.push('bar timestamps are not strictly increasing');
  if (failures.includes('too_short')) parts.push(`${bars} bars, fewer than the ${p.minBars} required`);
  const gap = worst ? `; worst gap ${worst.missing} bar${worst.missing === 1 ? '' : 's'} after ${iso(worst.after)}` : '';
  parts.push(`${missing} open-market bars missing (tolerance ${p.maxMissingBars})${gap}`);
  return parts.join('; ');
}
