import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CALIBRATION_CONFIG, resolveCalibrationConfig } from '../../../streams/calibration/config.ts';
import { problemsOf } from '../../support/config-problems.ts';


test('defaults are the seeds\' values (α 0.1, cap 50 bps) and the documented choices', () => {
  assert.deepEqual(DEFAULT_CALIBRATION_CONFIG, {
    alpha: 0.1, fillRateHalfLifeMs: 1_800_000, turnoverHalfLifeMs: 1_800_000, maxSlippageBpsCap: 50, capStdMult: 3,
    minSamples: 30, slippageLiquidity: 'taker', spreadSource: 'features', maxQuoteAgeMs: 60_000, dedupCapacity: 1024,
    snapshotMaxBytes: 1_048_576, usdPerQuote: {},
  });
});

test('knobs are read from their environment names; half-lives are given in seconds and kept in ms', () => {
  const c = resolveCalibrationConfig({}, {
    COST_EWMA_ALPHA: '0.2', FILL_RATE_HALF_LIFE_SEC: '60', TURNOVER_HALF_LIFE_SEC: '3600', MAX_SLIPPAGE_BPS_CAP: '25',
    COST_SLIPPAGE_LIQUIDITY: 'all', COST_USD_PER_QUOTE_JSON: '{"GBP":1.27,"JPY":0.0066}',
  });
  assert.deepEqual([c.alpha, c.fillRateHalfLifeMs, c.turnoverHalfLifeMs, c.maxSlippageBpsCap, c.slippageLiquidity], [0.2, 60_000, 3_600_000, 25, 'all']);
  assert.deepEqual(c.usdPerQuote, { GBP: 1.27, JPY: 0.0066 });
  assert.equal(resolveCalibrationConfig({ COST_CALIB_MIN_SAMPLES: 5 }, { COST_CALIB_MIN_SAMPLES: '50' }).minSamples, 5, 'explicit beats env');
});

test('an out-of-range value names the knob, the value and the accepted range', () => {
  assert.match(problemsOf(() => resolveCalibrationConfig({}, { FILL_RATE_HALF_LIFE_SEC: '5' }))[0]!, /^FILL_RATE_HALF_LIFE_SEC ="5": must be ≥ 10; accepted range \[10, 604800\]/);
  assert.match(problemsOf(() => resolveCalibrationConfig({}, { TURNOVER_HALF_LIFE_SEC: '1.5' }))[0]!, /^TURNOVER_HALF_LIFE_SEC ="1.5": must be a whole number/);
  assert.match(problemsOf(() => resolveCalibrationConfig({}, { COST_EWMA_ALPHA: '0' }))[0]!, /^COST_EWMA_ALPHA ="0": must be ≥ 0.000001; accepted range \[0.000001, 1\]/);
  assert.match(problemsOf(() => resolveCalibrationConfig({}, { COST_EWMA_ALPHA: '1.5' }))[0]!, /^COST_EWMA_ALPHA ="1.5": must be ≤ 1/);
  assert.match(problemsOf(() => resolveCalibrationConfig({}, { MAX_SLIPPAGE_BPS_CAP: '0' }))[0]!, /^MAX_SLIPPAGE_BPS_CAP ="0": must be ≥ 0.01/);
  assert.match(problemsOf(() => resolveCalibrationConfig({}, { COST_SLIPPAGE_LIQUIDITY: 'maker' }))[0]!, /^COST_SLIPPAGE_LIQUIDITY ="maker": must be one of taker, all/);
  assert.match(problemsOf(() => resolveCalibrationConfig({}, { COST_SPREAD_SOURCE: 'book' }))[0]!, /^COST_SPREAD_SOURCE ="book": must be one of features, ticks/);
});

test('COST_USD_PER_QUOTE_JSON must be an object of currency → positive USD rate', () => {
  assert.match(problemsOf(() => resolveCalibrationConfig({}, { COST_USD_PER_QUOTE_JSON: '[1.27]' }))[0]!, /^COST_USD_PER_QUOTE_JSON =\[1\.27\]: must be a JSON object of currency → USD per unit/);
  assert.match(problemsOf(() => resolveCalibrationConfig({}, { COST_USD_PER_QUOTE_JSON: '{GBP:1}' }))[0]!, /^COST_USD_PER_QUOTE_JSON ="\{GBP:1\}": must be valid JSON/);
  assert.deepEqual(problemsOf(() => resolveCalibrationConfig({}, { COST_USD_PER_QUOTE_JSON: '{"gbp":1.27,"JPY":0,"CHF":"1.1"}' })), [
    'COST_USD_PER_QUOTE_JSON key "gbp" is not a currency code like GBP',
    'COST_USD_PER_QUOTE_JSON entry "JPY" must be a number > 0 (USD per 1 JPY), got 0',
    'COST_USD_PER_QUOTE_JSON entry "CHF" must be a number > 0 (USD per 1 CHF), got "1.1"',
  ]);
});

test('every problem is reported at once, scalar and JSON alike', () => {
  const problems = problemsOf(() => resolveCalibrationConfig({}, { COST_DEDUP_CAPACITY: '0', COST_CAP_STD_MULT: 'three', COST_USD_PER_QUOTE_JSON: '{"JPY":-1}' }));
  assert.equal(problems.length, 3);
  assert.match(problems[0]!, /^COST_CAP_STD_MULT ="three": must be a number/);
  assert.match(problems[1]!, /^COST_DEDUP_CAPACITY ="0": must be ≥ 1/);
  assert.match(problems[2]!, /^COST_USD_PER_QUOTE_JSON entry "JPY" must be a number > 0/);
});
