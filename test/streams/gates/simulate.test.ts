import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calmarStats } from '../../../streams/gates/calmar.ts';
import { simulate, type SimBar } from '../../../streams/gates/simulate.ts';

const P = { periodsPerYear: 362_880, calmarCap: 1000 };
const near = (a: number, b: number, tol = 1e-15) => assert.ok(Math.abs(a - b) <= tol, `${a} ≠ ${b} (±${tol})`);
const bars = (closes: number[], signals: number[], spread: number | null = 2): SimBar[] =>
  closes.map((close, i) => ({ ts: 60_000 * (i + 1), close, signal: signals[i]!, spread_bps: spread }));

test('the position taken at a close earns the next bar; half the spread is paid per unit changed', () => {
  const r = simulate(bars([100, 101, 102, 101], [1, 1, -1, 0]), P);
  const half = 2 / 2 / 1e4;
  near(r.returns[0]!, -half); // enter long at the first close
  near(r.returns[1]!, 101 / 100 - 1); // held, no change
  near(r.returns[2]!, 102 / 101 - 1 - 2 * half); // long earns the bar, then flips: two units
  near(r.returns[3]!, -(101 / 102 - 1) - half); // short earns the fall, then goes flat
  assert.equal(r.returns.length, 4);
  assert.equal(r.trades, 2); // the entry and the flip; going flat is not a trade
});

test('the summary figures are the Calmar statistics of the returns', () => {
  const r = simulate(bars([100, 99, 100.5, 100, 101, 100.2], [1, 1, 1, -1, 1, 0]), P);
  const s = calmarStats(r.returns, P);
  assert.deepEqual({ calmar: r.calmar, totalReturn: r.totalReturn, maxDrawdown: r.maxDrawdown, annualReturn: r.annualReturn }, s);
  assert.ok(r.maxDrawdown < 0);
});

test('every entry counts as a trade: flat → long → flat → short → long', () => {
  assert.equal(simulate(bars([1, 1, 1, 1, 1, 1], [0, 1, 0, -1, 1, 1]), P).trades, 3);
});

test('flat prices and no signal: no trades, zero returns, Calmar 0', () => {
  const r = simulate(bars([1.1, 1.1, 1.1], [0, 0, 0]), P);
  assert.deepEqual(r, { returns: [0, 0, 0], trades: 0, calmar: 0, totalReturn: 0, maxDrawdown: 0, annualReturn: 0 });
});

test('a single bar can only pay the entry', () => {
  const r = simulate(bars([1.2345], [-1], 3), P);
  assert.deepEqual(r.returns, [-1.5e-4]);
  assert.equal(r.trades, 1);
  assert.ok(r.maxDrawdown < 0 && r.calmar < 0);
});

test('no bars: an empty simulation', () => {
  assert.deepEqual(simulate([], P), { returns: [], trades: 0, calmar: 0, totalReturn: 0, maxDrawdown: 0, annualReturn: 0 });
});

test('a gap between bars is one bar-to-bar move (no interpolation)', () => {
  const r = simulate([
    { ts: 60_000, close: 100, signal: 1, spread_bps: 0 },
    { ts: 60_000 * 600, close: 103, signal: 1, spread_bps: 0 },
  ], P);
  near(r.returns[1]!, 0.03);
});

test('dirty input yields no NaN: bad signals, closes and spreads', () => {
  const r = simulate([
    { ts: 1, close: 100, signal: 0.7, spread_bps: 4 }, // sign → long, pays 2 bps
    { ts: 2, close: NaN, signal: NaN, spread_bps: null }, // signal NaN → flat; spread carried (4)
    { ts: 3, close: 102, signal: 1, spread_bps: -1 }, // negative spread ignored (4)
  ], P);
  near(r.returns[0]!, -2e-4);
  near(r.returns[1]!, -2e-4); // no price move on a NaN close; exiting pays half of the carried 4 bps
  near(r.returns[2]!, -2e-4); // flat over the bar, re-entry pays 2 bps
  assert.equal(r.trades, 2);
  for (const v of [...r.returns, r.calmar, r.totalReturn, r.maxDrawdown, r.annualReturn]) assert.ok(Number.isFinite(v));
});

test('a NaN close hands its move to the next valid close', () => {
  const r = simulate([
    { ts: 1, close: 100, signal: 1, spread_bps: 0 },
    { ts: 2, close: 0, signal: 1, spread_bps: 0 },
    { ts: 3, close: 105, signal: 1, spread_bps: 0 },
  ], P);
  assert.deepEqual(r.returns.map((x) => Math.round(x * 1e12) / 1e12), [0, 0, 0.05]);
});
