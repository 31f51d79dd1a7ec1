/**
 * The trading-session calendar (DESIGN §6.2): named sessions, each open from
 * `open` to `close` in its own time zone on the listed ISO weekdays (1 = Mon …
 * 7 = Sun, the weekday of the local date the session opens on). Local times go
 * through Intl, so daylight-saving changes move the UTC windows by themselves.
 *
 * The market is open when at least one session is; it closes when the union
 * of sessions does (Tokyo closing while London trades is not a close). A
 * session is open on [open, close): the open minute is in, the close minute is
 * out. A close at or before the open (e.g. 22:00–06:00) runs over midnight
 * into the next local day; "24:00" is accepted as a close.
 *
 * Speed: the UTC windows of every session are computed once per UTC day and
 * cached (a few Intl calls per new day), so the evaluator's per-minute calls
 * and the span check's interval queries are a few comparisons each.
 */
import { ConfigError } from '../runtime/errors.ts';

export interface SessionSpec {
  name: string;
  /** IANA time zone, e.g. "Europe/London". */
  tz: string;
  /** Local opening time "HH:MM" (00:00–23:59). */
  open: string;
  /** Local closing time "HH:MM" (00:00–24:00); at or before `open` means the next local day. */
  close: string;
  /** ISO weekdays the session opens on, 1 = Monday … 7 = Sunday. */
  days: number[];
}

/** Tokyo, London and New York, Monday to Friday in local time. */
export const DEFAULT_SESSIONS: readonly SessionSpec[] = Object.freeze([
  { name: 'tokyo', tz: 'Asia/Tokyo', open: '09:00', close: '18:00', days: [1, 2, 3, 4, 5] },
  { name: 'london', tz: 'Europe/London', open: '08:00', close: '17:00', days: [1, 2, 3, 4, 5] },
  { name: 'new_york', tz: 'America/New_York', open: '08:00', close: '17:00', days: [1, 2, 3, 4, 5] },
]);

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** minutesToClose looks this far ahead before calling a calendar "never closes". */
const LOOKAHEAD_MS = 8 * DAY_MS;
/** Cached UTC days before the cache is cleared (a replay of years stays bounded). */
const CACHE_DAYS = 4096;

/** One session's opening as UTC epoch ms, [start, end). */
interface Window {
  start: number;
  end: number;
  session: number;
}

interface ParsedSession {
  name: string;
  tz: string;
  openMin: number;
  closeMin: number;
  overnight: boolean;
  days: ReadonlySet<number>;
}

export class SessionCalendar {
  readonly sessions: readonly SessionSpec[];
  private readonly parsed: readonly ParsedSession[];
  private readonly byDay = new Map<number, readonly Window[]>();

  /** Throws ConfigError (key SESSIONS_JSON) naming every bad field. */
  constructor(specs: readonly SessionSpec[] = DEFAULT_SESSIONS) {
    const problems = sessionProblems(specs);
    if (problems.length > 0) throw new ConfigError(problems.map((message) => ({ key: 'SESSIONS_JSON', message })));
    this.sessions = Object.freeze(specs.map((s) => ({ ...s, days: [...s.days] })));
    this.parsed = specs.map(parseSession);
  }

  /** The sessions' windows that overlap UTC day `day` (days since the epoch), sorted by start. */
  windowsOnDay(day: number): readonly Window[] {
    const cached = this.byDay.get(day);
    if (cached) return cached;
    const dayStart = day * DAY_MS;
    const out: Window[] = [];
    this.parsed.forEach((s, session) => {
      // Local dates of a zone lie within a day of the UTC date, and an
      // overnight session opened on local date L can still be open on L + 2 (UTC).
      for (let local = day - 2; local <= day + 1; local++) {
        const w = windowOn(s, local);
        if (w && w.end > dayStart && w.start < dayStart + DAY_MS) out.push({ ...w, session });
      }
    });
    out.sort((a, b) => a.start - b.start || a.session - b.session);
    if (this.byDay.size >= CACHE_DAYS) this.byDay.clear();
    this.byDay.set(day, out);
    return out;
  }
}

/** A calendar from specs (default: Tokyo, London, New York). */
export function createSessionCalendar(specs: readonly SessionSpec[] = DEFAULT_SESSIONS): SessionCalendar {
  return new SessionCalendar(specs);
}

/** Whether at least one session is open at `tMs`. */
export function isOpen(cal: SessionCalendar, tMs: number): boolean {
  return cal.windowsOnDay(dayOf(tMs)).some((w) => w.start <= tMs && tMs < w.end);
}

/** Names of the sessions open at `tMs`, in calendar order. */
export function openSessions(cal: SessionCalendar, tMs: number): string[] {
  const open = new Set(cal.windowsOnDay(dayOf(tMs)).filter((w) => w.start <= tMs && tMs < w.end).map((w) => w.session));
  return [...open].sort((a, b) => a - b).map((i) => cal.sessions[i]!.name);
}

/**
 * Minutes (fractional) from `tMs` until the union of sessions closes; 0 when
 * the market is already closed; Infinity when it stays open for the next 8
 * days (a round-the-clock calendar).
 */
export function minutesToClose(cal: SessionCalendar, tMs: number): number {
  let end = tMs;
  // Follow overlapping and back-to-back sessions until none carries on past `end`.
  for (;;) {
    const at = end;
    const carry = cal.windowsOnDay(dayOf(at)).filter((w) => w.start <= at && at < w.end);
    if (carry.length === 0) break;
    end = Math.max(...carry.map((w) => w.end));
    if (end - tMs > LOOKAHEAD_MS) return Infinity;
  }
  return (end - tMs) / MINUTE_MS;
}

/** The market's open time inside [fromMs, toMs) as disjoint sorted [start, end) intervals. */
export function openIntervals(cal: SessionCalendar, fromMs: number, toMs: number): Array<[number, number]> {
  if (!(toMs > fromMs)) return [];
  const clipped: Array<[number, number]> = [];
  for (let day = dayOf(fromMs); day <= dayOf(toMs - 1); day++) {
    for (const w of cal.windowsOnDay(day)) {
      const start = Math.max(w.start, fromMs);
      const end = Math.min(w.end, toMs);
      if (start < end) clipped.push([start, end]);
    }
  }
  clipped.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [start, end] of clipped) {
    const last = merged[merged.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

/**
 * Every problem with a list of session specs, as messages naming the entry
 * and field (empty when valid). Used for SESSIONS_JSON.
 */
export function sessionProblems(raw: unknown): string[] {
  const shape = 'a JSON array of {name, tz, open:"HH:MM", close:"HH:MM", days:[1..7]}';
  if (!Array.isArray(raw)) return [`must be ${shape}`];
  if (raw.length === 0) return [`must list at least one session (${shape})`];
  const problems: string[] = [];
  const names = new Set<string>();
  raw.forEach((s: unknown, i) => {
    const at = `session[${i}]`;
    if (typeof s !== 'object' || s === null || Array.isArray(s)) {
      problems.push(`${at} must be an object {name, tz, open, close, days}`);
      return;
    }
    const { name, tz, open, close, days } = s as Record<string, unknown>;
    const label = typeof name === 'string' && name !== '' ? `${at} "${name}"` : at;
    if (typeof name !== 'string' || name.trim() === '') problems.push(`${at}.name must be a non-empty string`);
    else if (names.has(name)) problems.push(`${label}: name is used twice`);
    else names.add(name);
    if (typeof tz !== 'string' || !isTimeZone(tz)) problems.push(`${label}.tz=${JSON.stringify(tz)} is not an IANA time zone (e.g. "Europe/London")`);
    const openMin = minutesOf(open, false);
    const closeMin = minutesOf(close, true);
    if (openMin === null) problems.push(`${label}.open=${JSON.stringify(open)} must be "HH:MM" in 00:00–23:59`);
    if (closeMin === null) problems.push(`${label}.close=${JSON.stringify(close)} must be "HH:MM" in 00:00–24:00`);
    if (openMin !== null && closeMin !== null && openMin === closeMin) {
      problems.push(`${label}: open and close are the same time; for a whole day use "00:00"–"24:00"`);
    }
    if (!Array.isArray(days) || days.length === 0 || !days.every((d) => Number.isInteger(d) && d >= 1 && d <= 7)) {
      problems.push(`${label}.days=${JSON.stringify(days)} must be a non-empty array of ISO weekdays 1 (Mon) … 7 (Sun)`);
    } else if (new Set(days).size !== days.length) {
      problems.push(`${label}.days=${JSON.stringify(days)} lists a weekday twice`);
    }
  });
  return problems;
}

function parseSession(s: SessionSpec): ParsedSession {
  const openMin = minutesOf(s.open, false)!;
  const closeMin = minutesOf(s.close, true)!;
  return { name: s.name, tz: s.tz, openMin, closeMin, overnight: closeMin <= openMin, days: new Set(s.days) };
}

/** The session's window opened on the local civil date numbered `localDay` (days since 1970-01-01), if it opens that weekday. */
function windowOn(s: ParsedSession, localDay: number): { start: number; end: number } | null {
  const date = new Date(localDay * DAY_MS);
  const isoWeekday = date.getUTCDay() === 0 ? 7 : date.getUTCDay();
  if (!s.days.has(isoWeekday)) return null;
  const start = zonedToUtc(s.tz, localDay, s.openMin);
  const end = zonedToUtc(s.tz, s.overnight ? localDay + 1 : localDay, s.closeMin);
  // A DST jump can only shorten a window by an hour; a window that vanished is skipped.
  return end > start ? { start, end } : null;
}

/**
 * UTC epoch ms of local wall time `minutes` after midnight on `localDay` in
 * `tz`, resolved as Temporal's "compatible" disambiguation does: a wall time
 * that occurs twice (autumn) is its earlier instant; one skipped by a
 * spring-forward is read with the offset before the jump, i.e. moved later
 * by the jump (02:30 in New York on 2024-03-10 → 03:30 EDT). Zone offsets a
 * day either side bracket the one transition a real zone can have near it.
 */
function zonedToUtc(tz: string, localDay: number, minutes: number): number {
  const naive = localDay * DAY_MS + minutes * MINUTE_MS;
  const before = naive - offsetAt(tz, naive - DAY_MS);
  const after = naive - offsetAt(tz, naive + DAY_MS);
  const valid = [before, after].filter((t) => t + offsetAt(tz, t) === naive);
  return valid.length > 0 ? Math.min(...valid) : before;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Local time minus UTC, in ms, for `tz` at instant `tMs`. */
function offsetAt(tz: string, tMs: number): number {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(tz, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(tMs)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  const local = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  return local - Math.floor(tMs / 1000) * 1000;
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return tz !== '';
  } catch {
    return false;
  }
}

/** Minutes after midnight of "HH:MM"; "24:00" only when `allow24`; null when malformed. */
function minutesOf(v: unknown, allow24: boolean): number | null {
  if (typeof v !== 'string') return null;
  const m = /^(\d{2}):(\d{2})$/.exec(v);
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (allow24 && h === 24 && min === 0) return 24 * 60;
  return h <= 23 && min <= 59 ? h * 60 + min : null;
}

function dayOf(tMs: number): number {
  return Math.floor(tMs / DAY_MS);
}
