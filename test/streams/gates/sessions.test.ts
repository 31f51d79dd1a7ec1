import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../streams/runtime/errors.ts';
import { createSessionCalendar, isOpen, minutesToClose, openIntervals, openSessions, sessionProblems } from '../../../streams/gates/sessions.ts';

const cal = createSessionCalendar();
const at = (iso: string) => Date.parse(iso);
const isoPairs = (xs: Array<[number, number]>) => xs.map(([a, b]) => [new Date(a).toISOString(), new Date(b).toISOString()]);

test('winter Monday: Tokyo 00:00–09:00, London 08:00–17:00, New York 13:00–22:00 UTC', () => {
  assert.deepEqual(openSessions(cal, at('2024-01-08T00:00:00Z')), ['tokyo']);
  assert.deepEqual(openSessions(cal, at('2024-01-08T08:30:00Z')), ['tokyo', 'london']);
  assert.deepEqual(openSessions(cal, at('2024-01-08T09:00:00Z')), ['london']); // Tokyo's close minute is out
  assert.deepEqual(openSessions(cal, at('2024-01-08T13:00:00Z')), ['london', 'new_york']);
  assert.deepEqual(openSessions(cal, at('2024-01-08T21:59:00Z')), ['new_york']);
  assert.equal(isOpen(cal, at('2024-01-08T22:00:00Z')), false);
  assert.equal(isOpen(cal, at('2024-01-08T23:59:00Z')), false);
});

test('summer time moves London and New York an hour earlier in UTC, Tokyo (no DST) stays', () => {
  assert.deepEqual(openSessions(cal, at('2024-07-01T07:00:00Z')), ['tokyo', 'london']); // 08:00 BST
  assert.deepEqual(openSessions(cal, at('2024-01-08T07:00:00Z')), ['tokyo']); // 07:00 GMT
  assert.equal(isOpen(cal, at('2024-07-01T21:00:00Z')), false); // 17:00 EDT
  assert.equal(isOpen(cal, at('2024-01-08T21:00:00Z')), true); // 16:00 EST
});

test('between the US and UK DST dates only New York has moved', () => {
  // 2024-03-10 the US springs forward, the UK only on 2024-03-31.
  assert.deepEqual(openSessions(cal, at('2024-03-08T12:00:00Z')), ['london']); // 07:00 EST
  assert.deepEqual(openSessions(cal, at('2024-03-12T12:00:00Z')), ['london', 'new_york']); // 08:00 EDT
  assert.equal(minutesToClose(cal, at('2024-03-12T12:00:00Z')), 9 * 60); // 17:00 EDT = 21:00 UTC
});

test('weekends are closed in every zone; Monday opens with Tokyo at Sunday 24:00 UTC', () => {
  assert.equal(isOpen(cal, at('2024-01-13T12:00:00Z')), false); // Saturday
  assert.equal(isOpen(cal, at('2024-01-14T23:59:00Z')), false); // Sunday, 08:59 Monday in Tokyo
  assert.equal(isOpen(cal, at('2024-01-15T00:00:00Z')), true); // 09:00 Monday in Tokyo
  assert.equal(isOpen(cal, at('2024-01-12T21:59:00Z')), true); // Friday, New York
  assert.equal(isOpen(cal, at('2024-01-12T22:00:00Z')), false);
});

test('minutes to close follow the union: Tokyo closing while London trades is not a close', () => {
  assert.equal(minutesToClose(cal, at('2024-01-08T08:57:00Z')), 13 * 60 + 3); // to New York's 22:00
  assert.equal(minutesToClose(cal, at('2024-01-12T21:56:00Z')), 4);
  assert.equal(minutesToClose(cal, at('2024-01-12T21:56:30Z')), 3.5);
  assert.equal(minutesToClose(cal, at('2024-01-13T12:00:00Z')), 0);
});

test('back-to-back sessions across midnight chain to the week-end close', () => {
  const allWeek = createSessionCalendar([{ name: 'utc', tz: 'UTC', open: '00:00', close: '24:00', days: [1, 2, 3, 4, 5] }]);
  assert.equal(minutesToClose(allWeek, at('2024-01-08T10:00:00Z')), (4 * 24 + 14) * 60);
  const always = createSessionCalendar([{ name: 'all', tz: 'UTC', open: '00:00', close: '24:00', days: [1, 2, 3, 4, 5, 6, 7] }]);
  assert.equal(minutesToClose(always, at('2024-01-08T10:00:00Z')), Infinity);
});

test('an overnight session runs into the next local day', () => {
  const sydney = createSessionCalendar([{ name: 'sydney', tz: 'Australia/Sydney', open: '22:00', close: '06:00', days: [1] }]);
  // Monday 22:00 AEDT (UTC+11) = Monday 11:00 UTC, to Tuesday 06:00 AEDT = Monday 19:00 UTC.
  assert.deepEqual(isoPairs(openIntervals(sydney, at('2024-01-07T00:00:00Z'), at('2024-01-10T00:00:00Z'))), [
    ['2024-01-08T11:00:00.000Z', '2024-01-08T19:00:00.000Z'],
  ]);
});

test('a session time skipped by spring-forward opens after the jump', () => {
  const odd = createSessionCalendar([{ name: 'odd', tz: 'America/New_York', open: '02:30', close: '04:00', days: [7] }]);
  assert.deepEqual(isoPairs(openIntervals(odd, at('2024-03-09T00:00:00Z'), at('2024-03-12T00:00:00Z'))), [
    ['2024-03-10T07:30:00.000Z', '2024-03-10T08:00:00.000Z'],
  ]);
});

test('open intervals merge overlapping sessions and clip to the range', () => {
  assert.deepEqual(isoPairs(openIntervals(cal, at('2024-01-05T12:00:00Z'), at('2024-01-08T05:00:00Z'))), [
    ['2024-01-05T12:00:00.000Z', '2024-01-05T22:00:00.000Z'],
    ['2024-01-08T00:00:00.000Z', '2024-01-08T05:00:00.000Z'],
  ]);
});

test('bad calendars are rejected with the entry and field named', () => {
  assert.deepEqual(sessionProblems([{ name: 'x', tz: 'Mars/Olympus', open: '9:00', close: '25:00', days: [0, 8] }]), [
    'session[0] "x".tz="Mars/Olympus" is not an IANA time zone (e.g. "Europe/London")',
    'session[0] "x".open="9:00" must be "HH:MM" in 00:00–23:59',
    'session[0] "x".close="25:00" must be "HH:MM" in 00:00–24:00',
    'session[0] "x".days=[0,8] must be a non-empty array of ISO weekdays 1 (Mon) … 7 (Sun)',
  ]);
  assert.deepEqual(sessionProblems({}), ['must be a JSON array of {name, tz, open:"HH:MM", close:"HH:MM", days:[1..7]}']);
  assert.match(sessionProblems([])[0]!, /at least one session/);
  assert.match(sessionProblems([{ name: 'a', tz: 'UTC', open: '10:00', close: '10:00', days: [1] }])[0]!, /same time/);
  assert.match(sessionProblems([{ name: 'a', tz: 'UTC', open: '10:00', close: '11:00', days: [1, 1] }])[0]!, /weekday twice/);
  assert.throws(() => createSessionCalendar([{ name: '', tz: 'UTC', open: '10:00', close: '11:00', days: [1] }]), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /^SESSIONS_JSON session\[0\]\.name must be a non-empty string/);
    return true;
  });
});
