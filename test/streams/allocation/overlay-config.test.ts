import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_OVERLAY_CONFIG, resolveOverlayConfig } from '../../../streams/allocation/overlay-config.ts';
import { problemsOf } from '../../support/config-problems.ts';

test('defaults are the seeds\' values and the documented choices', () => {
  assert.deepEqual(DEFAULT_OVERLAY_CONFIG, {
    hrp: { clusterMap: {}, targetRiskBudget: 0.1, minScale: 0.5, winsorSigma: 3, minObs: 100, lookbackDays: 90, timeframe: '1h' },
    cvar: { alpha: 0.95, mode: 'empirical', minSamples: 30, evtThresholdQ: 0.9, evtMinExceedances: 20, riskBudgetPerTrade: 0.005, maxLeverage: 10 },
  });
  assert.deepEqual([Object.isFrozen(DEFAULT_OVERLAY_CONFIG.hrp.clusterMap), Object.isFrozen(DEFAULT_OVERLAY_CONFIG.hrp), Object.isFrozen(DEFAULT_OVERLAY_CONFIG.cvar)], [true, true, true]);
});

test('environment, then explicit values over it', () => {
  const env = {
    TARGET_RISK_BUDGET: '0.15', HRP_MIN_SCALE: '0.6', HRP_LOOKBACK_D: '60', HRP_TIMEFRAME: '4h', HRP_WINSOR_SIGMA: '0', HRP_MIN_OBS: '200',
    CVAR_ALPHA: '0.975', CVAR_MODE: 'evt', CVAR_MIN_SAMPLES: '50', CVAR_EVT_THRESHOLD_Q: '0.92', CVAR_EVT_MIN_EXCEEDANCES: '25',
    RISK_BUDGET_PER_TRADE: '0.0025', CVAR_MAX_LEVERAGE: '3',
  };
  const c = resolveOverlayConfig({}, env);
  assert.deepEqual(c.hrp, { clusterMap: {}, targetRiskBudget: 0.15, minScale: 0.6, winsorSigma: 0, minObs: 200, lookbackDays: 60, timeframe: '4h' });
  assert.deepEqual(c.cvar, { alpha: 0.975, mode: 'evt', minSamples: 50, evtThresholdQ: 0.92, evtMinExceedances: 25, riskBudgetPerTrade: 0.0025, maxLeverage: 3 });
  assert.equal(resolveOverlayConfig({ TARGET_RISK_BUDGET: 0.12, CVAR_MODE: 'empirical' }, env).hrp.targetRiskBudget, 0.12);
});

test('CLUSTER_MAP: instrument → cluster or cluster → instruments, mixed per entry', () => {
  const c = resolveOverlayConfig({}, { CLUSTER_MAP: '{"EUR_USD":"majors","l1":["SOL_USD","ADA_USD"],"USD_JPY":"majors"}' });
  assert.deepEqual(c.hrp.clusterMap, { EUR_USD: 'majors', SOL_USD: 'l1', ADA_USD: 'l1', USD_JPY: 'majors' });
  assert.deepEqual(resolveOverlayConfig({ CLUSTER_MAP: { majors: ['EUR_USD'] } }, {}).hrp.clusterMap, { EUR_USD: 'majors' });
});

test('a bad CLUSTER_MAP names every bad entry and how to write it', () => {
  assert.deepEqual(problemsOf(() => resolveOverlayConfig({}, {
    CLUSTER_MAP: '{"EURUSD":"majors","EUR_USD":"ma jors","l1":["SOL_USD",3,"EUR_USD"],"memes":[],"GBP_USD":5,"defi":["SOL_USD"]}',
  })), [
    'CLUSTER_MAP entry "EURUSD": "EURUSD" is not an instrument name like EUR_USD',
    'CLUSTER_MAP entry "EUR_USD": cluster "ma jors" must be 1–64 letters, digits, _ or -',
    'CLUSTER_MAP entry "l1": 3 is not an instrument name like EUR_USD',
    'CLUSTER_MAP entry "memes" lists no instruments; drop it or list some',
    'CLUSTER_MAP entry "GBP_USD" must be a cluster name (instrument → cluster) or a list of instruments (cluster → instruments), got 5',
    'CLUSTER_MAP entry "defi": "SOL_USD" is already in cluster "l1"; an instrument belongs to one cluster',
  ]);
  assert.match(problemsOf(() => resolveOverlayConfig({}, { CLUSTER_MAP: '["EUR_USD"]' }))[0]!, /^CLUSTER_MAP =\["EUR_USD"\]: must be a JSON object, e.g. \{"EUR_USD":"majors"\}/);
  assert.match(problemsOf(() => resolveOverlayConfig({}, { CLUSTER_MAP: '{majors' }))[0]!, /^CLUSTER_MAP ="\{majors": must be valid JSON/);
});

test('out-of-range and unknown values name the knob and the accepted range', () => {
  const first = (env: NodeJS.ProcessEnv) => problemsOf(() => resolveOverlayConfig({}, env))[0]!;
  assert.match(first({ TARGET_RISK_BUDGET: '0' }), /^TARGET_RISK_BUDGET ="0": must be ≥ 0.001; accepted range \[0.001, 1\]/);
  assert.match(first({ TARGET_RISK_BUDGET: '12%' }), /^TARGET_RISK_BUDGET ="12%": must be a number/);
  assert.match(first({ HRP_MIN_SCALE: '1.2' }), /^HRP_MIN_SCALE ="1.2": must be ≤ 1; accepted range \[0, 1\]/);
  assert.match(first({ HRP_TIMEFRAME: '15m' }), /^HRP_TIMEFRAME ="15m": must be one of 1h, 4h/);
  assert.match(first({ HRP_MIN_OBS: '2.5' }), /^HRP_MIN_OBS ="2.5": must be a whole number/);
  assert.match(first({ CVAR_ALPHA: '95' }), /^CVAR_ALPHA ="95": must be ≤ 0.999; accepted range \[0.5, 0.999\]/);
  assert.match(first({ CVAR_MODE: 'gpd' }), /^CVAR_MODE ="gpd": must be one of empirical, evt/);
  assert.match(first({ RISK_BUDGET_PER_TRADE: '0.5' }), /^RISK_BUDGET_PER_TRADE ="0.5": must be ≤ 0.1/);
  assert.match(first({ CVAR_MIN_SAMPLES: '1' }), /^CVAR_MIN_SAMPLES ="1": must be ≥ 2/);
});

test('knobs that contradict each other name the knob they depend on and the fix', () => {
  assert.deepEqual(problemsOf(() => resolveOverlayConfig({}, { CVAR_ALPHA: '0.9', CVAR_EVT_THRESHOLD_Q: '0.95' })), [
    'CVAR_EVT_THRESHOLD_Q =0.95: must be < CVAR_ALPHA=0.9; the EVT tail starts at the threshold and is extrapolated beyond it to the CVaR level',
  ]);
  // 2 days of 4h bars = 12 closes, 11 returns.
  assert.deepEqual(problemsOf(() => resolveOverlayConfig({}, { HRP_LOOKBACK_D: '2', HRP_TIMEFRAME: '4h', HRP_MIN_OBS: '12' })), [
    'HRP_MIN_OBS =12: must be ≤ 11, the returns in HRP_LOOKBACK_D=2 days of 4h bars, else every instrument is left out; lower it or raise HRP_LOOKBACK_D',
  ]);
  assert.equal(resolveOverlayConfig({}, { HRP_LOOKBACK_D: '2', HRP_TIMEFRAME: '4h', HRP_MIN_OBS: '11' }).hrp.minObs, 11);
});

test('every problem is reported at once, across the HRP, CLUSTER_MAP and CVaR groups', () => {
  const problems = problemsOf(() => resolveOverlayConfig({}, { HRP_MIN_SCALE: 'half', CLUSTER_MAP: '{"EURUSD":"x"}', CVAR_MODE: 'x', CVAR_MAX_LEVERAGE: '0' }));
  assert.deepEqual(problems.map((p) => p.split(' ')[0]), ['HRP_MIN_SCALE', 'CVAR_MODE', 'CVAR_MAX_LEVERAGE', 'CLUSTER_MAP']);
});
