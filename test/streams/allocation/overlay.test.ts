import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeOverlay, logReturnsOf, overlayCaps } from '../../../streams/allocation/overlay.ts';
import { resolveOverlayConfig } from '../../../streams/allocation/overlay-config.ts';
import { empiricalCvar, cutoffOf } from '../../../streams/allocation/cvar.ts';
import { rng } from '../../support/random.ts';


const T = Date.UTC(2026, 10, 16);
const instruments = ['AAA_USD', 'BBB_USD', 'CCC_USD', 'DDD_USD'];
const config = resolveOverlayConfig({
  CLUSTER_MAP: JSON.stringify({ usd: ['AAA_USD', 'BBB_USD'], other_fx: ['CCC_USD', 'DDD_USD'] }),
  HRP_LOOKBACK_D: 10, HRP_MIN_OBS: 50, CVAR_MIN_SAMPLES: 50, TARGET_RISK_BUDGET: 0.1, HRP_MIN_SCALE: 0.5,
}, {});

function closes(rows: number): number[][] {
  const r = rng(3);
  const px = [1, 2, 3, 4];
  const vol = [0.001, 0.002, 0.004, 0.003];
  return Array.from({ length: rows }, (_, t) => px.map((p, j) => {
    px[j] = p * Math.exp((r() - 0.5) * 2 * vol[j]!);
    // DDD has a bar only every fourth hour: too few returns of its own.
    return j === 3 && t % 4 !== 0 ? NaN : px[j]!;
  }));
}

test('HRP budget by cluster, a scale below 1 for a cluster over its budget, CVaR caps, and the sparse instrument falls back to its cluster', () => {
  const c = closes(240);
  const o = computeOverlay({ asOf: T, from: T - 10 * 86_400_000, instruments, closes: c, openRisk: { AAA_USD: 0.2 }, configHash: 'h' }, config);
  assert.deepEqual(o.instruments.map((i) => [i.instrument, i.cluster]), [['AAA_USD', 'usd'], ['BBB_USD', 'usd'], ['CCC_USD', 'other_fx'], ['DDD_USD', 'other_fx']]);
  const sum = Object.values(o.budget).reduce((s, b) => s + b.max_equity_risk, 0);
  assert.ok(Math.abs(sum - 0.1) < 1e-12, `budgets sum to TARGET_RISK_BUDGET: ${sum}`);
  // usd holds 0.2 of open risk, far over its budget: scale at the floor; other_fx has none: 1.
  assert.equal(o.budget.usd!.scale, 0.5);
  assert.equal(o.budget.other_fx!.scale, 1);
  const byName = Object.fromEntries(o.instruments.map((i) => [i.instrument, i]));
  assert.equal(byName.DDD_USD!.dropped, 'sparse');
  assert.equal(byName.DDD_USD!.hrp_weight, null);
  assert.equal(byName.DDD_USD!.cvar_scope, 'cluster');
  // The symbol's own CVaR: empyrical's convention on its log returns; the cap keeps weight · |CVaR| ≤ RISK_BUDGET_PER_TRADE.
  const aaa = logReturnsOf(c).map((r) => r[0]!);
  assert.equal(byName.AAA_USD!.cvar, empiricalCvar(aaa, cutoffOf(config.cvar.alpha)));
  assert.equal(byName.AAA_USD!.cvar_scope, 'symbol');
  assert.ok(Math.abs(byName.AAA_USD!.max_weight! - Math.min(config.cvar.maxLeverage, config.cvar.riskBudgetPerTrade / -byName.AAA_USD!.cvar!)) < 1e-15);
  // The more volatile CCC gets a tighter cap than AAA.
  assert.ok(byName.CCC_USD!.max_weight! < byName.AAA_USD!.max_weight!);
  assert.deepEqual(overlayCaps(o).BBB_USD, { scale: 0.5, maxWeight: byName.BBB_USD!.max_weight });
});

test('the same bars give the same overlay (it is what a replay publishes again)', () => {
  const input = { asOf: T, from: T - 10 * 86_400_000, instruments, closes: closes(240), configHash: 'h' };
  assert.deepEqual(computeOverlay(input, config), computeOverlay(structuredClone(input), config));
});
