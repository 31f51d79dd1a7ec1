import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkBounds, clampShares, correlationOf, covariance, equalShares, inverseVolShares, riskContributions, riskParityShares, sizeShares,
  RP_MAX_SWEEPS, SIZING_MODES,
} from '../../../streams/allocation/sizing.ts';
import { problemsOf } from '../../support/config-problems.ts';
import { rng } from '../../support/random.ts';


const sum = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0);
const pct2 = (xs: readonly number[]) => xs.map((x) => Math.round(x * 10_000) / 100);
const close = (actual: readonly number[], expected: readonly number[], tol: number, what = '') => {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]!) <= tol, `${what}[${i}]: ${a} vs ${expected[i]} (tol ${tol})`));
};

const VOLS = [0.1, 0.2, 0.3, 0.4];

test('risk parity, DESIGN §10 (Maillard–Roncalli–Teïletche): vols 10/20/30/40 %, all ρ = 0.5 → 48/24/16/12 %', () => {
  const cov = covariance(VOLS, () => 0.5);
  const rp = riskParityShares(cov);
  assert.ok(rp.converged);
  assert.deepEqual(pct2(rp.shares), [48, 24, 16, 12]);
  // Constant ρ makes ERC exactly inverse vol: 10/20.8333…, so the match is far tighter than 2 dp.
  close(rp.shares, [0.48, 0.24, 0.16, 0.12], 1e-9, 'shares');
  close(riskContributions(rp.shares, cov), [0.25, 0.25, 0.25, 0.25], 1e-9, 'risk contributions');
});

test('risk parity, DESIGN §10: ρ12 = .8, ρ34 = −.5, others 0 → 38.36/19.18/24.26/18.20 %', () => {
  const rho = (i: number, j: number) => (i === 0 && j === 1 ? 0.8 : i === 2 && j === 3 ? -0.5 : 0);
  const cov = covariance(VOLS, rho);
  const rp = riskParityShares(cov);
  assert.ok(rp.converged);
  assert.ok(rp.iterations < 100, `${rp.iterations} sweeps`);
  assert.deepEqual(pct2(rp.shares), [38.36, 19.18, 24.26, 18.2]);
  close(riskContributions(rp.shares, cov), [0.25, 0.25, 0.25, 0.25], 1e-9, 'risk contributions');
  // The same through the keyed API, correlations given in either key order.
  const keyed = sizeShares('risk_parity', {
    instruments: ['A', 'B', 'C', 'D'],
    vols: { A: 0.1, B: 0.2, C: 0.3, D: 0.4 },
    correlations: { B: { A: 0.8 }, C: { D: -0.5 } },
  }, { minWeight: 0, maxWeight: 1 });
  assert.deepEqual(pct2(Object.values(keyed.shares)), [38.36, 19.18, 24.26, 18.2]);
  assert.deepEqual(Object.keys(keyed.shares), ['A', 'B', 'C', 'D']);
});

test('clamping, DESIGN §10: [.48,.24,.16,.12] to [.15,.40] → [.40,.27,.18,.15]', () => {
  close(clampShares([0.48, 0.24, 0.16, 0.12], 0.15, 0.4), [0.4, 0.27, 0.18, 0.15], 1e-12);
  // Through sizeShares: risk parity's 48/24/16/12 clamped, the pinned ones reported.
  const r = sizeShares('risk_parity', { instruments: ['A', 'B', 'C', 'D'], vols: { A: 0.1, B: 0.2, C: 0.3, D: 0.4 }, correlations: { A: { B: 0.5, C: 0.5, D: 0.5 }, B: { C: 0.5, D: 0.5 }, C: { D: 0.5 } } }, { minWeight: 0.15, maxWeight: 0.4 });
  close(Object.values(r.shares), [0.4, 0.27, 0.18, 0.15], 1e-9);
  assert.deepEqual([r.atMax, r.atMin], [['A'], ['D']]);
});

test('clamping: one λ for all — free shares are λ·raw, pinned ones are those λ·raw pushes past a bound', () => {
  // The stable point of "pin the violators, rescale the rest": w_i = clamp(λ·r_i, lo, hi), Σ = 1. A loop
  // that pins one violator at a time can stop elsewhere (a share pinned at hi early may no longer exceed hi
  // once lo-pins have taken their mass), so the definition is checked, not a particular loop.
  const next = rng(7);
  for (let c = 0; c < 500; c++) {
    const n = 2 + Math.floor(next() * 10);
    const raw = Array.from({ length: n }, () => (next() < 0.1 ? 0 : 0.01 + next()));
    const lo = next() < 0.2 ? 0 : next() / n;
    const hi = Math.min(1, 1 / n + next() * (1 - 1 / n));
    const w = clampShares(raw, lo, hi);
    assert.ok(Math.abs(sum(w) - 1) <= 1e-12, `case ${c}: Σ = ${sum(w)}`);
    const free = w.map((v, i) => [v, raw[i]!] as const).filter(([v, r]) => r > 0 && v > lo && v < hi);
    if (free.length === 0) continue;
    const lambda = free[0]![0] / free[0]![1];
    for (const [v, r] of free) assert.ok(Math.abs(v / r - lambda) <= 1e-9 * lambda, `case ${c}: free shares not in proportion`);
    w.forEach((v, i) => {
      if (raw[i] === 0) return;
      if (v === hi) assert.ok(lambda * raw[i]! >= hi * (1 - 1e-9), `case ${c}[${i}]: pinned at hi without reaching it`);
      if (v === lo) assert.ok(lambda * raw[i]! <= lo * (1 + 1e-9), `case ${c}[${i}]: pinned at lo without falling below it`);
    });
  }
});

test('equal and inverse_vol: 1/n, and ∝ 1/σ with ε = 1e-9 under a zero vol', () => {
  assert.deepEqual(equalShares(4), [0.25, 0.25, 0.25, 0.25]);
  close(inverseVolShares([0.1, 0.2, 0.4]), [4 / 7, 2 / 7, 1 / 7], 1e-15);
  close(inverseVolShares([0, 1]), [1 - 1e-9 / (1 + 1e-9), 1e-9 / (1 + 1e-9)], 1e-15);
  assert.throws(() => inverseVolShares([0.1, NaN]), /vol NaN must be finite/);
  const eq = sizeShares('equal', { instruments: ['A', 'B', 'C'] }, { minWeight: 0.02, maxWeight: 0.5 });
  assert.deepEqual(eq, { shares: { A: 1 / 3, B: 1 / 3, C: 1 / 3 }, atMin: [], atMax: [], volMissing: [], iterations: 0, converged: true });
});

test('a missing or unusable vol is sized with the largest usable vol among the selection, and reported', () => {
  const r = sizeShares('inverse_vol', { instruments: ['A', 'B', 'C', 'D'], vols: { A: 0.1, B: 0.2, D: NaN } }, { minWeight: 0, maxWeight: 1 });
  close(Object.values(r.shares), inverseVolShares([0.1, 0.2, 0.2, 0.2]), 1e-15);
  assert.deepEqual(r.volMissing, ['C', 'D']);
  // None usable: every vol is 1, i.e. equal.
  const none = sizeShares('risk_parity', { instruments: ['A', 'B'] }, { minWeight: 0, maxWeight: 1 });
  close(Object.values(none.shares), [0.5, 0.5], 1e-12);
  assert.deepEqual(none.volMissing, ['A', 'B']);
});

test('risk parity without correlations is inverse vol (diagonal Σ), and correlations are read either way round', () => {
  const r = sizeShares('risk_parity', { instruments: ['A', 'B', 'C'], vols: { A: 0.1, B: 0.2, C: 0.4 } }, { minWeight: 0, maxWeight: 1 });
  close(Object.values(r.shares), [4 / 7, 2 / 7, 1 / 7], 1e-9);
  assert.equal(correlationOf({ A: { B: 0.3 } }, 'B', 'A'), 0.3);
  assert.equal(correlationOf({ A: { B: 0.3 }, B: { A: 0.9 } }, 'A', 'B'), 0.3);
  assert.equal(correlationOf(undefined, 'A', 'B'), 0);
  assert.throws(() => covariance([0.1, 0.2], () => 1.5), /correlation 1.5 of 0,1 must be in \[-1, 1\]/);
});

test('risk parity reports a sweep cap it hit: still positive shares summing to 1', () => {
  const cov = covariance(VOLS, (i, j) => (i === 0 && j === 1 ? 0.8 : i === 2 && j === 3 ? -0.5 : 0));
  const one = riskParityShares(cov, 1e-12, 1);
  assert.deepEqual([one.converged, one.iterations], [false, 1]);
  assert.ok(Math.abs(sum(one.shares) - 1) < 1e-12 && one.shares.every((w) => w > 0));
  assert.equal(riskParityShares(cov).iterations < RP_MAX_SWEEPS, true);
});

test('manual: normalised over the selection; instruments missing from the map end at min_weight', () => {
  const r = sizeShares('manual', { instruments: ['A', 'B', 'C'], manualWeights: { A: 6, B: 4, Z: 100 } }, { minWeight: 0.1, maxWeight: 1 });
  close(Object.values(r.shares), [0.54, 0.36, 0.1], 1e-12);
  assert.deepEqual(r.atMin, ['C']);
  // Nobody in the map: equal. min_weight 0 and the named one capped: the unnamed share the rest equally.
  close(Object.values(sizeShares('manual', { instruments: ['A', 'B'], manualWeights: {} }, { minWeight: 0, maxWeight: 1 }).shares), [0.5, 0.5], 0);
  close(Object.values(sizeShares('manual', { instruments: ['A', 'B', 'C'], manualWeights: { A: 1 } }, { minWeight: 0, maxWeight: 0.5 }).shares), [0.5, 0.25, 0.25], 1e-15);
  assert.throws(() => sizeShares('manual', { instruments: ['A'], manualWeights: { A: -1 } }, { minWeight: 0, maxWeight: 1 }), /manual weight -1 of A must be finite and ≥ 0/);
});

test('infeasible bounds: a ConfigError naming the knob and the value that fixes it', () => {
  assert.deepEqual(problemsOf(() => clampShares([1, 1, 1], 0.4, 0.5)), [
    'ALLOC_MIN_WEIGHT =0.4: 3 instruments × 0.4 = 1.2000000000000002 > 1, so the shares cannot sum to 1; lower it to ≤ 0.333333',
  ]);
  assert.deepEqual(problemsOf(() => clampShares([1, 1, 1], 0, 0.3)), [
    'ALLOC_MAX_WEIGHT =0.3: 3 instruments × 0.3 = 0.8999999999999999 < 1, so the shares cannot sum to 1; raise it to ≥ 0.333334',
  ]);
  assert.deepEqual(problemsOf(() => checkBounds(2, 0.6, 0.5)), [
    'ALLOC_MIN_WEIGHT =0.6: must be ≤ ALLOC_MAX_WEIGHT=0.5',
    'ALLOC_MIN_WEIGHT =0.6: 2 instruments × 0.6 = 1.2 > 1, so the shares cannot sum to 1; lower it to ≤ 0.5',
  ]);
  // Exactly on the edge is feasible: 3 × 1/3.
  close(clampShares([5, 1, 1], 1 / 3, 1 / 3), [1 / 3, 1 / 3, 1 / 3], 1e-15);
  assert.deepEqual(clampShares([], 0.9, 0.1), []);
});

test('invariants on random inputs (seeded): Σ = 1 to 1e-9, every share in its bounds, risk parity equalises risk', () => {
  const next = rng(20260513);
  for (let c = 0; c < 400; c++) {
    const n = 1 + Math.floor(next() * 12);
    const names = Array.from({ length: n }, (_, i) => `I${String(i).padStart(2, '0')}_USD`);
    const vols: Record<string, number> = {};
    names.forEach((name) => { vols[name] = 1e-4 + next() * 0.05; });
    // A valid correlation matrix from two random factors plus noise: ρ = (BBᵀ + D) scaled to unit diagonal.
    const load = names.map(() => [next() * 2 - 1, next() * 2 - 1]);
    const diag = names.map((_, i) => load[i]![0]! ** 2 + load[i]![1]! ** 2 + 0.05 + next());
    const correlations: Record<string, Record<string, number>> = {};
    names.forEach((a, i) => {
      correlations[a] = {};
      names.forEach((b, j) => {
        if (j > i) correlations[a]![b] = (load[i]![0]! * load[j]![0]! + load[i]![1]! * load[j]![1]!) / Math.sqrt(diag[i]! * diag[j]!);
      });
    });
    const lo = next() < 0.3 ? 0 : next() / n;
    const hi = next() < 0.3 ? 1 : Math.min(1, 1 / n + next() * (1 - 1 / n));
    const manualWeights = Object.fromEntries(names.filter(() => next() < 0.7).map((name) => [name, next()]));
    for (const mode of SIZING_MODES) {
      const r = sizeShares(mode, { instruments: names, vols, correlations, manualWeights }, { minWeight: lo, maxWeight: hi });
      const w = names.map((name) => r.shares[name]!);
      assert.ok(Math.abs(sum(w) - 1) <= 1e-9, `case ${c} ${mode}: Σ = ${sum(w)}`);
      w.forEach((v) => assert.ok(v >= lo - 1e-12 && v <= hi + 1e-12, `case ${c} ${mode}: ${v} outside [${lo}, ${hi}]`));
      assert.ok(r.converged, `case ${c} ${mode}: not converged`);
      // Same input, same bits: a replay sizes identically.
      assert.deepEqual(sizeShares(mode, { instruments: names, vols, correlations, manualWeights }, { minWeight: lo, maxWeight: hi }), r);
    }
    const cov = covariance(names.map((name) => vols[name]!), (i, j) => correlations[names[i]!]![names[j]!]!);
    const rc = riskContributions(riskParityShares(cov).shares, cov);
    rc.forEach((x) => assert.ok(Math.abs(x - 1 / n) <= 1e-9, `case ${c}: risk contribution ${x} vs ${1 / n}`));
  }
});
