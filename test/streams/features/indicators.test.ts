import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ewmaVariance, trueRange, wilderStep } from '../../../streams/features/indicators.ts';
import { DEFAULT_FEATURE_PARAMS, initialFeatureState, nextFeature, type FeatureState } from '../../../streams/features/features.ts';
import type { Candle } from '../../../streams/model/records.ts';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} ≠ ${b} (±${tol})`);

test('RiskMetrics EWMA: λ 0.9, σ 1%, r 2% gives σ 1.14% (DESIGN §10)', () => {
  const sigma = Math.sqrt(ewmaVariance(0.01 ** 2, 0.02, 0.9));
  close(sigma, Math.sqrt(0.00013), 1e-15);
  assert.equal(sigma.toFixed(4), '0.0114');
});

test('true range takes the largest of the three spans', () => {
  assert.equal(trueRange(10, 8, 9), 2);
  assert.equal(trueRange(10, 9, 7), 3); // gap up: |H − C_{t−1}|
  assert.equal(trueRange(6, 5, 8), 3); // gap down: |L − C_{t−1}|
});

test('Wilder step is the (n−1)/n blend', () => {
  close(wilderStep(2, 3, 14), (13 * 2 + 3) / 14);
});

function bars(closes: number[], spread = 0.5): Candle[] {
  return closes.map((c, i) => ({ instrument: 'EUR_USD', granularity: 'M1', ts: 60_000 * (i + 1) + Date.UTC(2026, 0, 5), open: c, high: c + spread, low: c - spread, close: c, volume: 100, complete: true }));
}

function run(candles: Candle[], atrPeriod = 14) {
  let state: FeatureState = initialFeatureState();
  return candles.map((c) => {
    const r = nextFeature(state, c, { ...DEFAULT_FEATURE_PARAMS, atrPeriod });
    state = r.state;
    return r.feature;
  });
}

test('ATR seeding follows TA-Lib: first value at bar index n is the mean of TR[1..n]', () => {
  // Hand-computed with n = 3 on closes 10, 11, 13, 12, 12: TR[1..4] = 1.5, 2.5, 1.5, 1.
  const f = run(bars([10, 11, 13, 12, 12]), 3);
  assert.deepEqual(f.map((x) => x.true_range), [null, 1.5, 2.5, 1.5, 1]);
  assert.deepEqual(f.slice(0, 3).map((x) => x.atr14), [null, null, null]);
  close(f[3]!.atr14!, (1.5 + 2.5 + 1.5) / 3);
  close(f[4]!.atr14!, (2 * ((1.5 + 2.5 + 1.5) / 3) + 1) / 3);
});

test('ATR(14) first appears at bar index 14 and is the mean of the first 14 true ranges', () => {
  const closes = Array.from({ length: 20 }, (_, i) => 100 + Math.sin(i) * 3);
  const f = run(bars(closes));
  assert.equal(f[13]!.atr14, null);
  const trs = f.slice(1, 15).map((x) => x.true_range!);
  close(f[14]!.atr14!, trs.reduce((a, b) => a + b, 0) / 14);
  close(f[15]!.atr14!, (13 * f[14]!.atr14! + f[15]!.true_range!) / 14);
});

test('log return and EWMA volatility: none on the first bar, seeded with r₁² on the second', () => {
  const f = run(bars([100, 101, 99.5]));
  assert.equal(f[0]!.log_return, null);
  assert.equal(f[0]!.ewma_vol, null);
  close(f[1]!.log_return!, Math.log(101 / 100));
  close(f[1]!.ewma_vol!, Math.abs(Math.log(101 / 100)));
  const r2 = Math.log(99.5 / 101);
  close(f[2]!.ewma_vol!, Math.sqrt(0.94 * Math.log(101 / 100) ** 2 + 0.06 * r2 * r2));
});

test('flat prices give zero return and zero volatility, never NaN', () => {
  const f = run(bars(Array(30).fill(1.1), 0));
  for (const x of f.slice(1)) {
    assert.equal(x.log_return, 0);
    assert.equal(x.ewma_vol, 0);
    assert.equal(x.true_range, 0);
  }
  assert.equal(f[29]!.atr14, 0);
});

test('volume_usd is volume times close', () => {
  const [f] = run(bars([1.25]));
  assert.equal(f!.volume_usd, 125);
});
