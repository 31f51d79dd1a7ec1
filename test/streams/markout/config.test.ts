import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capFor, DEFAULT_MARKOUT_CONFIG, resolveMarkoutConfig } from '../../../streams/markout/config.ts';
import { problemsOf } from '../../support/config-problems.ts';


test('defaults are the seeds\' values and the documented choices', () => {
  assert.deepEqual({ ...DEFAULT_MARKOUT_CONFIG }, {
    horizonsMs: [200, 500, 1000, 5000, 60_000], graceMs: 5000, dedupeWindowMs: 600_000, minSample: 50, capBps: 0.5,
    capOverrides: {}, gateHorizonsMs: [200, 500], adverseHorizonMs: 5000,
  });
});

test('horizons as a comma list, a JSON array or an explicit array; sorted', () => {
  const env = (v: string) => resolveMarkoutConfig({}, { MARKOUT_HORIZONS_MS: v, MARKOUT_GATE_HORIZONS_MS: '100', MARKOUT_ADVERSE_HORIZON_MS: '100' }).horizonsMs;
  assert.deepEqual(env('1000, 100 ,0'), [0, 100, 1000]);
  assert.deepEqual(env('[100, 2000]'), [100, 2000]);
  assert.deepEqual(resolveMarkoutConfig({ MARKOUT_HORIZONS_MS: [5000, 200, 500] }, {}).horizonsMs, [200, 500, 5000]);
  const c = resolveMarkoutConfig({}, { MARKOUT_GRACE_MS: '2000', MARKOUT_MIN_SAMPLE: '200', MARKOUT_CAP_BPS: '1.5', MARKOUT_DEDUPE_WINDOW_MS: '2000' });
  assert.deepEqual([c.graceMs, c.minSample, c.capBps, c.dedupeWindowMs], [2000, 200, 1.5, 2000]);
});

test('a bad horizon list names the knob, the entry and the accepted range', () => {
  assert.deepEqual(problemsOf(() => resolveMarkoutConfig({}, { MARKOUT_HORIZONS_MS: '200,abc,-5,1.5,3600001,200,5000' })), [
    'MARKOUT_HORIZONS_MS entry "abc" must be a whole number of ms in [0, 3600000]',
    'MARKOUT_HORIZONS_MS entry "-5" must be a whole number of ms in [0, 3600000]',
    'MARKOUT_HORIZONS_MS entry "1.5" must be a whole number of ms in [0, 3600000]',
    'MARKOUT_HORIZONS_MS entry "3600001" must be a whole number of ms in [0, 3600000]',
    'MARKOUT_HORIZONS_MS entry 200 is listed twice; each horizon gives one markout per fill',
  ]);
  assert.match(problemsOf(() => resolveMarkoutConfig({}, { MARKOUT_HORIZONS_MS: '[200,' }))[0]!, /^MARKOUT_HORIZONS_MS ="\[200,": must be a comma list like 200,500 or a JSON array like \[200,500\]/);
  assert.match(problemsOf(() => resolveMarkoutConfig({}, { MARKOUT_HORIZONS_MS: '{"a":1}' }))[0]!, /^MARKOUT_HORIZONS_MS entry "\{\\"a\\":1\}" must be a whole number/);
  assert.ok(problemsOf(() => resolveMarkoutConfig({ MARKOUT_HORIZONS_MS: ' ' }, {})).includes('MARKOUT_HORIZONS_MS =" ": must list at least one horizon, e.g. 200,500'));
  const many = Array.from({ length: 17 }, (_, i) => i * 10).join(',');
  assert.ok(problemsOf(() => resolveMarkoutConfig({}, { MARKOUT_HORIZONS_MS: many })).includes('MARKOUT_HORIZONS_MS lists 17 horizons; at most 16'));
});

test('out-of-range scalars name the knob and their range', () => {
  const first = (env: NodeJS.ProcessEnv) => problemsOf(() => resolveMarkoutConfig({}, env))[0]!;
  assert.match(first({ MARKOUT_GRACE_MS: '-1' }), /^MARKOUT_GRACE_MS ="-1": must be ≥ 0; accepted range \[0, 3600000\]/);
  assert.match(first({ MARKOUT_MIN_SAMPLE: '0' }), /^MARKOUT_MIN_SAMPLE ="0": must be ≥ 1/);
  assert.match(first({ MARKOUT_MIN_SAMPLE: '2.5' }), /^MARKOUT_MIN_SAMPLE ="2.5": must be a whole number/);
  assert.match(first({ MARKOUT_CAP_BPS: '-0.1' }), /^MARKOUT_CAP_BPS ="-0.1": must be ≥ 0; accepted range \[0, 10000\]/);
  assert.match(first({ MARKOUT_CAP_BPS: 'half' }), /^MARKOUT_CAP_BPS ="half": must be a number/);
});

test('knobs that contradict each other are named with the knob they depend on', () => {
  assert.deepEqual(problemsOf(() => resolveMarkoutConfig({}, { MARKOUT_GRACE_MS: '10000', MARKOUT_DEDUPE_WINDOW_MS: '5000' })), [
    'MARKOUT_DEDUPE_WINDOW_MS =5000: must be ≥ MARKOUT_GRACE_MS=10000, else a re-sent fill could be forgotten while it is still on time and be counted twice',
  ]);
  assert.deepEqual(problemsOf(() => resolveMarkoutConfig({}, { MARKOUT_ADVERSE_HORIZON_MS: '3000' })), [
    'MARKOUT_ADVERSE_HORIZON_MS =3000: must be one of MARKOUT_HORIZONS_MS=200,500,1000,5000,60000',
  ]);
  assert.deepEqual(problemsOf(() => resolveMarkoutConfig({}, { MARKOUT_GATE_HORIZONS_MS: '200,300' })), [
    'MARKOUT_GATE_HORIZONS_MS entry 300 is not in MARKOUT_HORIZONS_MS=200,500,1000,5000,60000; the gate can only compare horizons that are measured',
  ]);
});

test('MARKOUT_CAP_BPS_JSON: instrument → cap or {horizon_ms: cap}; every bad entry named', () => {
  const c = resolveMarkoutConfig({}, { MARKOUT_CAP_BPS_JSON: '{"GBP_JPY": 1.0, "EUR_USD": {"200": 2}}' });
  assert.deepEqual([capFor(c, 'GBP_JPY', 200), capFor(c, 'GBP_JPY', 500), capFor(c, 'EUR_USD', 200), capFor(c, 'EUR_USD', 500), capFor(c, 'USD_JPY', 200)], [1, 1, 2, 0.5, 0.5]);
  assert.deepEqual(problemsOf(() => resolveMarkoutConfig({}, {
    MARKOUT_CAP_BPS_JSON: '{"EURUSD": 1, "EUR_USD": -1, "GBP_USD": {"200": "1", "x": 1, "5000": 1}, "USD_JPY": [1]}',
  })), [
    'MARKOUT_CAP_BPS_JSON key "EURUSD" is not an instrument name like EUR_USD',
    'MARKOUT_CAP_BPS_JSON entry "EUR_USD" must be a number in [0, 10000] or an object of horizon_ms → number, got -1',
    'MARKOUT_CAP_BPS_JSON entry "GBP_USD"."200" must be a number in [0, 10000], got "1"',
    'MARKOUT_CAP_BPS_JSON entry "GBP_USD" key "x" must be a horizon in ms, e.g. "200"',
    'MARKOUT_CAP_BPS_JSON entry "USD_JPY" must be a number in [0, 10000] or an object of horizon_ms → number, got [1]',
    'MARKOUT_CAP_BPS_JSON entry "GBP_USD"."5000": 5000 ms is not a gated horizon (MARKOUT_GATE_HORIZONS_MS=200,500)',
  ]);
  assert.match(problemsOf(() => resolveMarkoutConfig({}, { MARKOUT_CAP_BPS_JSON: '[1]' }))[0]!, /^MARKOUT_CAP_BPS_JSON =\[1\]: must be a JSON object/);
  assert.match(problemsOf(() => resolveMarkoutConfig({}, { MARKOUT_CAP_BPS_JSON: '{bad' }))[0]!, /^MARKOUT_CAP_BPS_JSON ="\{bad": must be valid JSON/);
});

test('every problem is reported at once', () => {
  const problems = problemsOf(() => resolveMarkoutConfig({}, { MARKOUT_GRACE_MS: 'soon', MARKOUT_HORIZONS_MS: 'x', MARKOUT_CAP_BPS_JSON: '{"EURUSD":1}' }));
  assert.equal(problems.length, 3, problems.join('\n'));
  assert.deepEqual(problems.map((p) => p.split(' ')[0]), ['MARKOUT_GRACE_MS', 'MARKOUT_HORIZONS_MS', 'MARKOUT_CAP_BPS_JSON']);
});
