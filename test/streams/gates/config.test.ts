import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bufFor, DEFAULT_GATES_CONFIG, resolveGatesConfig } from '../../../streams/gates/config.ts';
import { DEFAULT_SESSIONS } from '../../../streams/gates/sessions.ts';
import { problemsOf } from '../../support/config-problems.ts';


test('defaults are the seeds\' values and the documented choices', () => {
  const { calendar, sessions, ...rest } = DEFAULT_GATES_CONFIG;
  assert.deepEqual(rest, {
    evalIntervalSec: 60, blobMaxAgeSec: 180, sessionExitMinutes: 5, minTrades: 10, calmarFloor: 0.15, buf: 0.1, pairBufs: {},
    echoMinRepetitions: 3, echoHazardMax: 0.7, calmarCap: 1000, periodsPerYear: 252 * 1440, spanDays: 7,
    spanMaxMissingBars: 10, spanMinBars: 1440, cooldownMisses: 4, cooldownSec: 7200,
  });
  assert.deepEqual(sessions, DEFAULT_SESSIONS);
  assert.deepEqual(calendar.sessions.map((s) => s.name), ['tokyo', 'london', 'new_york']);
});

test('knobs are read from their environment names', () => {
  const { config } = resolveGatesConfig({}, { ECHO_HAZARD_MAX: '0.5', GATES_MIN_TRADES: '12', COOLDOWN_SEC: '600', CALMAR_PERIODS_PER_YEAR: '374400' });
  assert.deepEqual([config.echoHazardMax, config.minTrades, config.cooldownSec, config.periodsPerYear], [0.5, 12, 600, 374_400]);
});

test('an out-of-range value names the knob and its accepted range', () => {
  assert.deepEqual(problemsOf(() => resolveGatesConfig({}, { HYSTERESIS_BUF: '0.5' })).map((p) => p.split(' (')[0]), [
    'HYSTERESIS_BUF ="0.5": must be ≤ 0.3; accepted range [0, 0.3]',
  ]);
  assert.match(problemsOf(() => resolveGatesConfig({}, { COOLDOWN_MISSES: '0' }))[0]!, /^COOLDOWN_MISSES ="0": must be ≥ 1; accepted range \[1, 10000\]/);
  assert.match(problemsOf(() => resolveGatesConfig({}, { ECHO_MIN_REPETITIONS: '2.5' }))[0]!, /^ECHO_MIN_REPETITIONS ="2.5": must be a whole number/);
});

test('every problem is reported at once, scalar and JSON alike', () => {
  const problems = problemsOf(() => resolveGatesConfig({}, {
    EVAL_INTERVAL_SEC: 'often',
    HYSTERESIS_PAIR_JSON: '{"EUR_USD": "0.1", "USD_JPY": 0.2}',
    SESSIONS_JSON: '[{"name":"x","tz":"Nowhere/City","open":"08:00","close":"17:00","days":[1]}]',
  }));
  assert.equal(problems.length, 3);
  assert.match(problems[0]!, /^EVAL_INTERVAL_SEC ="often": must be a number/);
  assert.equal(problems[1], 'HYSTERESIS_PAIR_JSON entry "EUR_USD" must be a number in [0, 0.3], got "0.1"');
  assert.equal(problems[2], 'SESSIONS_JSON session[0] "x".tz="Nowhere/City" is not an IANA time zone (e.g. "Europe/London")');
});

test('HYSTERESIS_PAIR_JSON must be a JSON object of instrument names', () => {
  assert.match(problemsOf(() => resolveGatesConfig({}, { HYSTERESIS_PAIR_JSON: '[0.1]' }))[0]!, /^HYSTERESIS_PAIR_JSON =\[0\.1\]: must be a JSON object of instrument → buffer/);
  assert.match(problemsOf(() => resolveGatesConfig({}, { HYSTERESIS_PAIR_JSON: '{EUR_USD: 0.1}' }))[0]!, /^HYSTERESIS_PAIR_JSON ="\{EUR_USD: 0\.1\}": must be valid JSON/);
  assert.deepEqual(problemsOf(() => resolveGatesConfig({}, { HYSTERESIS_PAIR_JSON: '{"EURUSD": 0.1}' })), ['HYSTERESIS_PAIR_JSON key "EURUSD" is not an instrument name like EUR_USD']);
  assert.deepEqual(problemsOf(() => resolveGatesConfig({}, { HYSTERESIS_PAIR_JSON: '{"EUR_USD": null}' })), ['HYSTERESIS_PAIR_JSON entry "EUR_USD" must be a number in [0, 0.3], got null']);
});

test('pair buffers outside [0, 0.3] are clamped and the clamping is reported', () => {
  const { config, warnings } = resolveGatesConfig({}, { HYSTERESIS_PAIR_JSON: '{"USD_CHF": 0.5, "NZD_USD": -0.1, "EUR_JPY": 0.12}' });
  assert.deepEqual(config.pairBufs, { USD_CHF: 0.3, NZD_USD: 0, EUR_JPY: 0.12 });
  assert.deepEqual(warnings, [
    'HYSTERESIS_PAIR_JSON: USD_CHF buffer 0.5 clamped to 0.3 (buffers are limited to [0, 0.3])',
    'HYSTERESIS_PAIR_JSON: NZD_USD buffer -0.1 clamped to 0 (buffers are limited to [0, 0.3])',
  ]);
  assert.equal(bufFor(config, 'USD_CHF'), 0.3);
  assert.equal(bufFor(config, 'EUR_USD'), 0.1);
  assert.equal(bufFor(config, 'constructor'), 0.1); // no prototype keys
});

test('knobs that contradict each other are rejected with the fix', () => {
  assert.match(problemsOf(() => resolveGatesConfig({}, { GATES_BLOB_MAX_AGE_SEC: '30' }))[0]!, /^GATES_BLOB_MAX_AGE_SEC =30: must be ≥ EVAL_INTERVAL_SEC=60/);
  assert.match(problemsOf(() => resolveGatesConfig({}, { GATES_SPAN_DAYS: '0.5' }))[0]!, /^SPAN_MIN_BARS =1440: must be ≤ the 720 M1 bars GATES_SPAN_DAYS=0.5 can hold/);
  assert.match(problemsOf(() => resolveGatesConfig({ GATES_CALMAR_FLOOR: 1, CALMAR_CAP: 1.2 }, {}))[0]!, /^CALMAR_CAP =1.2: must be > GATES_CALMAR_FLOOR × \(1 \+ 0.3\) = 1.3/);
});

test('a custom calendar from SESSIONS_JSON', () => {
  const { config } = resolveGatesConfig({}, { SESSIONS_JSON: '[{"name":"sydney","tz":"Australia/Sydney","open":"08:00","close":"17:00","days":[1,2,3,4,5]}]' });
  assert.deepEqual(config.calendar.sessions.map((s) => s.name), ['sydney']);
  assert.match(problemsOf(() => resolveGatesConfig({}, { SESSIONS_JSON: '[]' }))[0]!, /^SESSIONS_JSON must list at least one session/);
});
