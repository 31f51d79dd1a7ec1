import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSessionCalendar, isOpen } from '../../../streams/gates/sessions.ts';
import { checkSpan } from '../../../streams/gates/span.ts';

const cal = createSessionCalendar();
const at = (iso: string) => Date.parse(iso);
const MIN = 60_000;
const loose = { maxMissingBars: 5, minBars: 1 };

/** Close times of M1 bars in [from, to]; `openOnly` keeps only bars whose minute starts in open market (a feed that stops at the close). */
function closes(fromIso: string, toIso: string, openOnly: boolean): number[] {
  const out: number[] = [];
  for (let t = at(fromIso); t <= at(toIso); t += MIN) if (!openOnly || isOpen(cal, t - MIN)) out.push(t);
  return out;
}
const without = (ts: number[], ...isos: string[]) => ts.filter((t) => !isos.map(at).includes(t));

test('a complete span over nights and a weekend misses nothing', () => {
  const ts = closes('2024-01-05T12:00:00Z', '2024-01-09T12:00:00Z', true);
  const r = checkSpan(cal, ts, loose);
  assert.deepEqual({ ok: r.ok, missing: r.missingBars, failures: r.failures, worst: r.worstGap }, { ok: true, missing: 0, failures: [], worst: null });
});

test('a round-the-clock feed with bars removed while the market is closed misses nothing', () => {
  const ts = without(closes('2024-01-08T20:00:00Z', '2024-01-09T02:00:00Z', false), '2024-01-08T22:30:00Z', '2024-01-08T23:00:00Z', '2024-01-08T23:59:00Z');
  assert.equal(checkSpan(cal, ts, { maxMissingBars: 0, minBars: 1 }).missingBars, 0);
});

test('bars missing in open market count, and the span breaks past the tolerance', () => {
  const full = closes('2024-01-08T08:00:00Z', '2024-01-08T12:00:00Z', true);
  const three = without(full, '2024-01-08T10:01:00Z', '2024-01-08T10:02:00Z', '2024-01-08T11:30:00Z');
  const r3 = checkSpan(cal, three, loose);
  assert.equal(r3.missingBars, 3);
  assert.equal(r3.ok, true);
  assert.deepEqual(r3.worstGap, { after: at('2024-01-08T10:00:00Z'), before: at('2024-01-08T10:03:00Z'), missing: 2 });

  const six = without(full, ...['10:01', '10:02', '10:03', '10:04', '10:05', '10:06'].map((m) => `2024-01-08T${m}:00Z`));
  const r6 = checkSpan(cal, six, loose);
  assert.equal(r6.missingBars, 6);
  assert.equal(r6.ok, false);
  assert.deepEqual(r6.failures, ['missing_bars']);
  assert.match(r6.detail, /6 open-market bars missing \(tolerance 5\); worst gap 6 bars after 2024-01-08T10:00:00\.000Z/);
});

test('a gap over the weekend counts only its open-market minutes on either side', () => {
  // Friday close 22:00 UTC, Monday open 00:00 UTC (09:00 Tokyo).
  const ts = [at('2024-01-12T21:49:00Z'), at('2024-01-12T21:50:00Z'), at('2024-01-15T00:05:00Z')];
  // Bars closing 21:51 … 22:00 (10) on Friday and 00:01 … 00:04 (4) on Monday.
  assert.equal(checkSpan(cal, ts, loose).missingBars, 14);
});

test('bars not yet arrived at the evaluation time count, except the one closing at that instant', () => {
  const ts = closes('2024-01-08T09:00:00Z', '2024-01-08T10:00:00Z', true);
  assert.equal(checkSpan(cal, ts, { ...loose, asOfMs: at('2024-01-08T10:01:00Z') }).missingBars, 0);
  const late = checkSpan(cal, ts, { ...loose, asOfMs: at('2024-01-08T10:10:00Z') });
  assert.equal(late.missingBars, 9); // 10:01 … 10:09; 10:10 may be in flight
  assert.equal(late.ok, false);
  // The same lag after the Friday close is no gap at all.
  const friday = closes('2024-01-12T21:00:00Z', '2024-01-12T22:00:00Z', true);
  assert.equal(checkSpan(cal, friday, { ...loose, asOfMs: at('2024-01-13T10:00:00Z') }).missingBars, 0);
});

test('a span shorter than the minimum fails as too_short', () => {
  const ts = closes('2024-01-08T09:00:00Z', '2024-01-08T09:59:00Z', true);
  const r = checkSpan(cal, ts, { maxMissingBars: 5, minBars: 61 });
  assert.deepEqual(r.failures, ['too_short']);
  assert.match(r.detail, /60 bars, fewer than the 61 required/);
  assert.equal(checkSpan(cal, ts, { maxMissingBars: 5, minBars: 60 }).ok, true);
});

test('timestamps that go back or repeat break the span', () => {
  const ts = [at('2024-01-08T09:01:00Z'), at('2024-01-08T09:02:00Z'), at('2024-01-08T09:02:00Z'), at('2024-01-08T09:03:00Z')];
  assert.deepEqual(checkSpan(cal, ts, loose).failures, ['unordered']);
});

test('a week of M1 bars with every 97th missing: interval counting agrees with a minute-by-minute count, in milliseconds', () => {
  const all = closes('2024-01-05T00:00:00Z', '2024-01-12T00:00:00Z', false);
  const ts = all.filter((_, i) => i % 97 !== 0);
  const t0 = performance.now();
  const r = checkSpan(cal, ts, loose);
  const ms = performance.now() - t0;
  const bruteForce = all.filter((t, i) => i % 97 === 0 && t > ts[0]! && t < ts[ts.length - 1]! && isOpen(cal, t - MIN)).length;
  assert.ok(bruteForce > 50);
  assert.equal(r.missingBars, bruteForce);
  assert.ok(ms < 250, `took ${ms} ms`);
});
