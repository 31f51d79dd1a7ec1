import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  capMultiplier, cutoffOf, cvarKey, cvarValue, cvarWeightCap, cvarWithFallback, empiricalCvar, estimateCvar, evtEs, evtTail, evtVar,
  fitGpd, gpdLogLik, maxSize, type CvarParams,
} from '../../../streams/allocation/cvar.ts';
import { InputError } from '../../../streams/runtime/errors.ts';
import { Rng } from '../../../src/generate/random.ts';

const PARAMS: CvarParams = { alpha: 0.95, mode: 'empirical', minSamples: 30, evtThresholdQ: 0.9, evtMinExceedances: 20, riskBudgetPerTrade: 0.005, maxLeverage: 10 };

/** A seeded shuffle, so "the k smallest" cannot come from the input order. */
function shuffled(xs: number[], seed = 1): number[] {
  const rng = new Rng(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** GPD draws by inversion: y = β/ξ((1 − U)^(−ξ) − 1), ξ = 0: −β ln(1 − U). */
function gpdSample(n: number, beta: number, xi: number, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const u = rng.next();
    return xi === 0 ? -beta * Math.log1p(-u) : (beta / xi) * ((1 - u) ** -xi - 1);
  });
}

test('empirical CVaR as empyrical: n = 100, cutoff .05 → the mean of the 5 smallest; n = 20 → the minimum (DESIGN §10)', () => {
  const hundred = shuffled(Array.from({ length: 100 }, (_, i) => (i - 10) / 100)); // −0.10 … 0.89
  close(empiricalCvar(hundred, 0.05), (-0.10 - 0.09 - 0.08 - 0.07 - 0.06) / 5, 1e-15, 'n = 100');
  const twenty = shuffled(Array.from({ length: 20 }, (_, i) => 0.01 * (i + 1) - 0.05));
  assert.equal(empiricalCvar(twenty, 0.05), -0.04);
  // k = int((n − 1)·cutoff): n = 21 is the first size that takes two.
  close(empiricalCvar(shuffled([...twenty, 0.5]), 0.05), (-0.04 - 0.03) / 2, 1e-15, 'n = 21');
  assert.equal(empiricalCvar([0.02], 0.05), 0.02);
});

test('empirical CVaR drops non-finite samples, is NaN for none, and takes its cutoff from alpha exactly', () => {
  assert.equal(empiricalCvar([NaN, 0.01, -0.03, Infinity, 0.02], 0.05), -0.03);
  assert.deepEqual(empiricalCvar([], 0.05), NaN);
  assert.equal(cutoffOf(0.9), 0.1);
  assert.equal(cutoffOf(0.95), 0.05);
  // n = 11 at alpha 0.9: int(10 · 0.1) = 1 → two samples (1 − 0.9 in binary would give int(0.999…) = 0).
  const eleven = Array.from({ length: 11 }, (_, i) => i - 2);
  assert.equal(empiricalCvar(eleven, cutoffOf(0.9)), -1.5);
});

test('EVT VaR and ES: u .02, β .01, ξ .2, n 1000, N_u 50, q .99 → 0.0389865 / 0.0562331; ξ = 0 → 0.0360944 / 0.0460944 (DESIGN §10)', () => {
  const v = evtVar(0.02, 0.01, 0.2, 1000, 50, 0.99);
  close(v, 0.0389865, 5e-8, 'VaR');
  close(evtEs(v, 0.02, 0.01, 0.2), 0.0562331, 5e-8, 'ES');
  const v0 = evtVar(0.02, 0.01, 0, 1000, 50, 0.99);
  close(v0, 0.0360944, 5e-8, 'VaR ξ = 0');
  close(evtEs(v0, 0.02, 0.01, 0), 0.0460944, 5e-8, 'ES ξ = 0');
  // ξ → 0 is continuous with the exponential case.
  close(evtVar(0.02, 0.01, 1e-7, 1000, 50, 0.99), v0, 1e-8, 'ξ = 1e-7');
  assert.equal(evtEs(0.05, 0.02, 0.01, 1), Infinity);
});

test('the GPD fit recovers known parameters from a seeded sample (MLE, 5000 draws)', () => {
  for (const [beta, xi, seed] of [[0.01, 0.25, 7], [0.02, 0, 8], [1, -0.2, 9], [3, 0.5, 10]] as const) {
    const y = gpdSample(5000, beta, xi, seed);
    const fit = fitGpd(y);
    // Asymptotic sd of ξ̂ is (1 + ξ)/√N ≈ 0.02; of β̂/β about 0.025.
    assert.ok(Math.abs(fit.xi - xi) < 0.06, `ξ ${xi}: ${fit.xi}`);
    assert.ok(Math.abs(fit.beta / beta - 1) < 0.08, `β ${beta}: ${fit.beta}`);
    assert.equal(fit.atBound, false);
    assert.ok(fit.logLik >= gpdLogLik(y, beta, xi), 'the maximum is at least as likely as the truth');
  }
});

test('the GPD fit is a local maximum of the likelihood (no better point nearby)', () => {
  const y = gpdSample(300, 0.015, 0.3, 11);
  const fit = fitGpd(y);
  for (const [db, dx] of [[1.001, 0], [0.999, 0], [1, 0.001], [1, -0.001], [1.001, 0.001], [0.999, -0.001]] as const) {
    assert.ok(fit.logLik >= gpdLogLik(y, fit.beta * db, fit.xi + dx), `(${db}, ${dx})`);
  }
  // Scale-equivariant: fitting 1000·y gives 1000·β and the same ξ.
  const scaled = fitGpd(y.map((v) => v * 1000));
  close(scaled.xi, fit.xi, 1e-6, 'ξ of 1000·y');
  close(scaled.beta / (1000 * fit.beta), 1, 1e-6, 'β of 1000·y / 1000 β');
});

test('the GPD fit refuses what it cannot fit', () => {
  assert.throws(() => fitGpd([0.1]), (e: unknown) => e instanceof InputError && e.field === 'exceedances');
  assert.throws(() => fitGpd([0.1, 0, 0.2]), /at least 2 finite exceedances > 0/);
});

test('peaks over threshold: a sample with a GPD tail above its 90 % loss quantile gives that tail\'s VaR and ES', () => {
  const rng = new Rng(12);
  const n = 20_000;
  const [u0, beta, xi, q] = [0.02, 0.01, 0.2, 0.99];
  const tail = gpdSample(n / 10, beta, xi, 13).map((y) => -(u0 + y)); // losses above 0.02, as gains
  const body = Array.from({ length: n - n / 10 }, () => -u0 + rng.next() * 0.06); // gains in [−0.02, 0.04)
  const got = evtTail(shuffled([...tail, ...body], 14), q, 0.9, 20)!;
  assert.equal(got.n, n);
  assert.equal(got.nU, n / 10);
  assert.ok(Math.abs(got.u - u0) < 1e-4, `u ${got.u}`);
  const v = evtVar(u0, beta, xi, n, n / 10, q);
  assert.ok(Math.abs(got.var / v - 1) < 0.05, `VaR ${got.var} vs ${v}`);
  assert.ok(Math.abs(got.es / evtEs(v, u0, beta, xi) - 1) < 0.08, `ES ${got.es}`);
  assert.equal(evtTail(body.slice(0, 150), q, 0.9, 20), undefined, '15 exceedances < 20');
});

test('CVAR_MODE: evt uses the tail fit; it falls back to empirical with too few exceedances or an infinite-mean tail', () => {
  const rng = new Rng(15);
  const sample = Array.from({ length: 2000 }, () => 0.01 * rng.normal());
  const evt = estimateCvar(sample, { ...PARAMS, mode: 'evt' });
  const emp = estimateCvar(sample, PARAMS);
  assert.equal(evt.mode, 'evt');
  assert.equal(evt.cvar, -evt.tail!.es);
  assert.equal(emp.mode, 'empirical');
  assert.equal(emp.cvar, empiricalCvar(sample, 0.05));
  // Normal tails: both near the normal ES at 95 %, 0.01·φ(1.645)/0.05 = 0.0206.
  assert.ok(Math.abs(evt.cvar! + 0.0206) < 0.002 && Math.abs(emp.cvar! + 0.0206) < 0.002, `${evt.cvar} ${emp.cvar}`);
  const few = estimateCvar(sample.slice(0, 100), { ...PARAMS, mode: 'evt' });
  assert.deepEqual([few.mode, few.evtFallback], ['empirical', 'few_exceedances']);
  const pareto = gpdSample(2000, 0.01, 1.5, 16).map((y) => -y);
  const heavy = estimateCvar(pareto, { ...PARAMS, mode: 'evt' });
  assert.deepEqual([heavy.mode, heavy.evtFallback, heavy.cvar], ['empirical', 'infinite_mean', empiricalCvar(pareto, 0.05)]);
});

test('seed acceptance: a sparse symbol falls back to its cluster\'s pool, never milder than its own worst; none → no estimate', () => {
  const rng = new Rng(17);
  const cluster = Array.from({ length: 500 }, () => 0.01 * rng.normal());
  const rich = Array.from({ length: 40 }, () => 0.02 * rng.normal());
  assert.deepEqual(cvarWithFallback(rich, cluster, PARAMS), { cvar: empiricalCvar(rich, 0.05), mode: 'empirical', n: 40, scope: 'symbol' });
  const sparse = [0.004, -0.002, 0.001];
  const pooled = cvarWithFallback(sparse, cluster, PARAMS);
  assert.deepEqual(pooled, { cvar: empiricalCvar(cluster, 0.05), mode: 'empirical', n: 500, scope: 'cluster' });
  const crashed = cvarWithFallback([0.004, -0.2, 0.001], cluster, PARAMS);
  assert.deepEqual([crashed.scope, crashed.cvar], ['cluster', -0.2], 'its own −20 % is worse than the pool\'s tail');
  assert.deepEqual(cvarWithFallback(sparse, cluster.slice(0, 10), PARAMS), { cvar: undefined, mode: 'empirical', scope: 'none', n: 3 });
  assert.equal(cvarWithFallback([NaN, ...sparse], cluster, PARAMS).scope, 'cluster', 'NaN is not a sample');
});

test('max size per the seed\'s /sizing: expected tail loss at the stop within RISK_BUDGET_PER_TRADE, leverage capped', () => {
  const req = { equity: 10_000, price: 100, slKAtr: 2, atr: 1.5, cvarR: -1.35 };
  // 0.5 % of 10 000 = 50; tail loss per unit 1.35 · 2 · 1.5 = 4.05 → 12.345… units, 1 234.5… notional, 0.123… × equity.
  const r = maxSize(req, PARAMS);
  close(r.max_size, 50 / 4.05, 1e-12, 'max_size');
  close(r.max_lev, (100 * 50) / 4.05 / 10_000, 1e-12, 'max_lev');
  // Seed acceptance: a more negative CVaR (volatile regime) lowers max_lev.
  assert.ok(maxSize({ ...req, cvarR: -2.5 }, PARAMS).max_lev < r.max_lev, 'cvar_r −2.5 allows less leverage than −1.35');
  // A tail milder than the stop never sizes above plain 1 R sizing.
  assert.deepEqual(maxSize({ ...req, cvarR: -0.4 }, PARAMS), maxSize({ ...req, cvarR: -1 }, PARAMS));
  close(maxSize({ ...req, cvarR: 0.3 }, PARAMS).max_size, 50 / 3, 1e-12, 'cvar_r > 0 sizes at 1 R');
  // A tiny stop: the leverage cap binds.
  assert.deepEqual(maxSize({ ...req, atr: 0.001 }, PARAMS), { max_size: 1000, max_lev: 10 });
  assert.throws(() => maxSize({ ...req, atr: 0 }, PARAMS), (e: unknown) => e instanceof InputError && e.field === 'atr');
  assert.throws(() => maxSize({ ...req, cvarR: NaN }, PARAMS), (e: unknown) => e instanceof InputError && e.field === 'cvarR');
});

test('returns-based cap: w·|CVaR| ≤ RISK_BUDGET_PER_TRADE, at most CVAR_MAX_LEVERAGE; the multiplier a proposal gets', () => {
  assert.equal(cvarWeightCap(-0.02, PARAMS), 0.25);
  assert.equal(cvarWeightCap(-0.0001, PARAMS), 10);
  assert.equal(cvarWeightCap(0.001, PARAMS), 10);
  assert.throws(() => cvarWeightCap(NaN, PARAMS), InputError);
  assert.equal(capMultiplier(0.5, 0.25), 0.5);
  assert.equal(capMultiplier(-0.5, 0.25), 0.5, 'a short is capped by its size');
  assert.equal(capMultiplier(0.1, 0.25), 1);
  assert.equal(capMultiplier(0, 0.25), 1);
  assert.equal(capMultiplier(0.1, -1), 0);
});

test('Redis cvar:<SYM>:<TF>: the seed\'s {alpha, cvar_r, last_update} plus mode, scope, n; nothing for no estimate', () => {
  assert.equal(cvarKey('EUR_USD', '1h'), 'cvar:EUR_USD:1h');
  const ts = Date.UTC(2025, 7, 13);
  assert.deepEqual(cvarValue({ cvar: -1.35, mode: 'empirical', scope: 'symbol', n: 120 }, 0.95, ts), {
    alpha: 0.95, cvar_r: -1.35, last_update: '2025-08-13T00:00:00Z', mode: 'empirical', scope: 'symbol', n: 120,
  });
  assert.equal(cvarValue({ cvar: -1, mode: 'evt', scope: 'cluster', n: 9 }, 0.95, ts + 1)!.last_update, '2025-08-13T00:00:00.001Z');
  assert.equal(cvarValue({ cvar: undefined, mode: 'empirical', scope: 'none', n: 2 }, 0.95, ts), undefined);
});

/** |got − want| ≤ tol, with a message (assert.ok without one re-reads the source, which can hang under tsx). */
function close(got: number, want: number, tol: number, what: string): void {
  assert.ok(Math.abs(got - want) <= tol, `${what}: ${got} vs ${want} (tol ${tol})`);
}
