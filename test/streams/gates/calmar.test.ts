import { test } from 'node:test';
import assert from 'node:assert/strict';
import { annualReturn, calmarRatio, calmarStats, cumReturnsFinal, maxDrawdown } from '../../../streams/gates/calmar.ts';

const near = (a: number, b: number, tol: number) => assert.ok(Math.abs(a - b) <= tol, `${a} ≠ ${b} (±${tol})`);
const DAILY = { periodsPerYear: 252, calmarCap: 1000 };
// empyrical's test returns, in percent, with a leading NaN (DESIGN §10).
const EMPYRICAL = [NaN, 1, 10, -4, 2, 3, 2, 1, -10].map((x) => x / 100);

test("Calmar of empyrical's vector with daily factor 252 is 19.135925373194233 (DESIGN §10)", () => {
  near(calmarRatio(EMPYRICAL, DAILY), 19.135925373194233, 1e-12);
});

test("max drawdown of empyrical's vector is −10%, its cumulative return is compounded", () => {
  near(maxDrawdown(EMPYRICAL), -0.1, 1e-15);
  // 1.01 · 1.10 · 0.96 · 1.02 · 1.03 · 1.02 · 1.01 · 0.90 − 1, not the 5% sum.
  near(cumReturnsFinal(EMPYRICAL), 0.038931091700480, 1e-14);
  near(annualReturn(EMPYRICAL, 252), (1 + 0.038931091700480) ** 28 - 1, 1e-12);
});

test('the drawdown curve starts at 1.0: a first-bar loss is a drawdown', () => {
  assert.equal(maxDrawdown([-0.05, 0.01]), -0.05);
  near(maxDrawdown([0.1, -0.05, -0.05]), 1.1 * 0.95 * 0.95 / 1.1 - 1, 1e-15);
});

test('zero drawdown with a positive return gives the cap, not NaN', () => {
  assert.equal(calmarRatio([0.01, 0, 0.02], { periodsPerYear: 252, calmarCap: 50 }), 50);
});

test('zero drawdown with no return (flat prices) gives 0', () => {
  const s = calmarStats([0, 0, 0, 0], DAILY);
  assert.deepEqual(s, { totalReturn: 0, maxDrawdown: 0, annualReturn: 0, calmar: 0 });
});

test('no returns at all give zeros', () => {
  assert.deepEqual(calmarStats([], DAILY), { totalReturn: 0, maxDrawdown: 0, annualReturn: 0, calmar: 0 });
});

test('a single losing bar annualises to a total loss and stays finite', () => {
  const s = calmarStats([-0.001], { periodsPerYear: 362_880, calmarCap: 1000 });
  near(s.maxDrawdown, -0.001, 1e-15);
  near(s.annualReturn, -1, 1e-12); // 0.999^362880 underflows to 0
  assert.equal(s.calmar, -1000); // −1/0.000999… is just beyond the cap and clamped to it
});

test('a single winning bar overflows the annualisation and is capped, never Infinity', () => {
  const s = calmarStats([0.01], { periodsPerYear: 362_880, calmarCap: 1000 });
  assert.equal(s.calmar, 1000);
  assert.ok(Number.isFinite(s.annualReturn) && s.annualReturn > 1e300);
});

test('a tiny drawdown cannot outrank a zero one: the ratio is clamped to the cap', () => {
  const tinyDd = calmarRatio([0.01, -1e-9, 0.01], { periodsPerYear: 252, calmarCap: 500 });
  assert.equal(tinyDd, 500);
});

test('a curve that ends at or below zero (a short losing over 100%) annualises to −1', () => {
  const s = calmarStats([0.5, -1.2, 0.1], DAILY);
  assert.equal(s.annualReturn, -1);
  assert.ok(s.maxDrawdown < -1);
  near(s.calmar, -1 / Math.abs(s.maxDrawdown), 1e-15);
});

test('NaN and infinite returns count as 0 and nothing returned is NaN', () => {
  const clean = calmarStats([0.01, -0.02, 0.03], DAILY);
  const dirty = calmarStats([0.01, NaN, -0.02, Infinity, 0.03, -Infinity], DAILY);
  assert.equal(dirty.totalReturn, clean.totalReturn);
  assert.equal(dirty.maxDrawdown, clean.maxDrawdown);
  for (const v of Object.values(dirty)) assert.ok(Number.isFinite(v), `${v} is not finite`);
  // Same compounded path, but six periods instead of three: a smaller annualised figure.
  assert.ok(dirty.annualReturn < clean.annualReturn);
});
