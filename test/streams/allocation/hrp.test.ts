import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  clusterScale, columnDistances, correlationDistance, correlationFromCovariance, covarianceOfColumns, hrpBudgetFields, hrpBudgetKey,
  hrpOverlay, hrpWeights, logReturns, quasiDiagonal, recursiveBisection, singleLinkage, winsorize, type HrpOverlayParams,
} from '../../../streams/allocation/hrp.ts';
import { InputError } from '../../../streams/runtime/errors.ts';
import { Rng } from '../../../src/generate/random.ts';

/** López de Prado (2016), Exhibit 7's covariance, rounded to 4 dp (DESIGN §10). */
const EXHIBIT_7 = [
  [1.0006, -.0031, .0100, -.0108, -.0050, .0088, .9982, -.0014, -.0013, -.0094],
  [-.0031, 1.0090, .0086, .0073, -.0095, .0130, -.0094, -.0153, 1.0105, 1.0133],
  [.0100, .0086, 1.0007, -.0006, .0018, 1.0016, .0064, .0019, .0129, .0080],
  [-.0108, .0073, -.0006, 1.0119, .0058, .0009, -.0119, .0005, .0126, .0096],
  [-.0050, -.0095, .0018, .0058, 1.0058, .0056, -.0096, 1.0086, -.0062, -.0079],
  [.0088, .0130, 1.0016, .0009, .0056, 1.0643, .0044, .0058, .0172, .0116],
  [.9982, -.0094, .0064, -.0119, -.0096, .0044, 1.0582, -.0068, -.0081, -.0162],
  [-.0014, -.0153, .0019, .0005, 1.0086, .0058, -.0068, 1.0748, -.0119, -.0137],
  [-.0013, 1.0105, .0129, .0126, -.0062, .0172, -.0081, -.0119, 1.0753, 1.0152],
  [-.0094, 1.0133, .0080, .0096, -.0079, .0116, -.0162, -.0137, 1.0152, 1.0786],
];
const LABELS = EXHIBIT_7.map((_, i) => String(i + 1));

test('López de Prado Exhibit 7: leaf order [9,2,10,1,7,3,6,4,5,8] and the HRP weights to 2 dp (DESIGN §10)', () => {
  const r = hrpWeights(EXHIBIT_7, LABELS);
  assert.deepEqual(r.orderLabels, ['9', '2', '10', '1', '7', '3', '6', '4', '5', '8']);
  assert.deepEqual(r.order, [8, 1, 9, 0, 6, 2, 5, 3, 4, 7]);
  assert.deepEqual(r.weights.map((w) => (w * 100).toFixed(2)), ['7.00', '7.59', '10.84', '19.03', '9.72', '10.19', '6.62', '9.10', '7.12', '12.79']);
  close(r.weights.reduce((a, b) => a + b, 0), 1, 1e-12, 'Σ weights');
  // scipy's layout: lower id first, merges numbered from n = 10; first merge is labels 3 and 6 (ρ ≈ .9966).
  assert.deepEqual(r.linkage.map(([a, b, , size]) => [a, b, size]), [
    [2, 5, 2], [0, 6, 2], [4, 7, 2], [1, 9, 2], [8, 13, 3], [3, 12, 3], [10, 15, 5], [11, 16, 7], [14, 17, 10],
  ]);
});

test('d̃ matters: single linkage on d itself (what PyPortfolioOpt and Riskfolio-Lib do) gives other weights', () => {
  const d = correlationDistance(correlationFromCovariance(EXHIBIT_7));
  const skipped = recursiveBisection(EXHIBIT_7, quasiDiagonal(singleLinkage(d), 10));
  const hrp = hrpWeights(EXHIBIT_7).weights;
  assert.ok(Math.max(...hrp.map((w, i) => Math.abs(w - skipped[i]!))) > 0.005, 'the second distance changes the allocation');
});

// Reference vectors with ties, from the paper's code (getQuasiDiag, getRecBipart,
// correlDist) run with scipy 1.17.1 / numpy 2.4.6: equal distances must resolve as scipy does.
test('ties resolve as scipy: an equicorrelated matrix (every d̃ equal) and two tied blocks', () => {
  const eq = Array.from({ length: 5 }, (_, i) => Array.from({ length: 5 }, (_, j) => ((i === j ? 1 : 0.3) * (i + 1) * (j + 1)) / 10));
  const a = hrpWeights(eq);
  assert.deepEqual(a.linkage.map(([x, y, , s]) => [x, y, s]), [[0, 1, 2], [2, 5, 3], [3, 6, 4], [4, 7, 5]]);
  assert.deepEqual(a.linkage.map(([, , dist]) => dist), new Array(4).fill(0.8366600265340756));
  assert.deepEqual(a.order, [4, 3, 2, 0, 1]);
  near(a.weights, [0.6647778446182232, 0.16619446115455574, 0.09159161414739969, 0.0472171219998911, 0.030218958079930292], 1e-15);

  const blocks = Array.from({ length: 6 }, (_, i) => Array.from({ length: 6 }, (_, j) => (i === j ? 1 : i % 2 === j % 2 ? 0.8 : 0.1)));
  const b = hrpWeights(blocks);
  assert.deepEqual(b.linkage.map(([x, y, , s]) => [x, y, s]), [[0, 2, 2], [4, 6, 3], [1, 3, 2], [5, 8, 3], [7, 9, 6]]);
  assert.deepEqual(b.order, [4, 0, 2, 5, 1, 3]);
  // The midpoint split (3 | 3 here, on the block boundary) gives the paper's weights, not equal ones.
  near(b.weights, [0.13157894736842105, 0.13157894736842105, 0.13157894736842105, 0.13157894736842105, 0.2368421052631579, 0.2368421052631579], 1e-15);
});

test('the second distance is the Euclidean distance between columns of d', () => {
  const d = [[0, 0.5, 1], [0.5, 0, 0.25], [1, 0.25, 0]];
  const t = columnDistances(d);
  close(t[0]![1]!, Math.sqrt(0.25 + 0.25 + 0.5625), 1e-15, 'd̃[0][1]');
  close(t[0]![2]!, Math.sqrt(1 + 0.0625 + 1), 1e-15, 'd̃[0][2]');
  assert.equal(t[2]![0], t[0]![2]);
  assert.equal(t[1]![1], 0);
});

test('two assets get inverse-variance weights; one asset gets all of it; none gives nothing', () => {
  const r = hrpWeights([[0.04, 0.01], [0.01, 0.01]]);
  near(r.weights, [0.2, 0.8], 1e-15);
  assert.deepEqual(hrpWeights([[0.3]]).weights, [1]);
  assert.deepEqual(hrpWeights([]), { order: [], weights: [], orderLabels: [], linkage: [] });
});

test('a covariance HRP cannot use is an InputError naming the matrix and what is wrong', () => {
  const fails = (cov: number[][], pattern: RegExp) => assert.throws(() => hrpWeights(cov), (err: unknown) => err instanceof InputError && err.reason === 'invalid_value' && err.field === 'cov' && pattern.test(err.message));
  fails([[1, 0], [0]], /row 1 has 1 entries; a 2×2 matrix is needed/);
  fails([[1, 0], [0, 0]], /variance 1 is 0; every variance must be finite and > 0/);
  fails([[1, NaN], [NaN, 1]], /entry \[1\]\[0\] is NaN/);
  fails([[1, 0], [Infinity, 1]], /entry \[1\]\[0\] is Infinity/);
  fails([[1, NaN], [0, 1]], /entry \[0\]\[1\] is NaN/);
  fails([[1, 0.2], [0.3, 1]], /differ; the matrix must be symmetric/);
  assert.throws(() => hrpWeights([[1]], ['a', 'b']), /2 labels for a 1×1 covariance/);
});

test('covariance with gaps equals pandas DataFrame.cov(min_periods) (pairwise complete rows)', () => {
  const X = [[0.012, -0.004, 0.020], [-0.007, 0.003, NaN], [0.001, NaN, -0.011], [0.015, 0.009, 0.004], [-0.020, -0.013, NaN],
    [0.004, 0.002, 0.008], [NaN, 0.006, -0.003], [0.009, -0.001, 0.012], [-0.003, -0.008, NaN], [0.006, 0.004, -0.006]];
  const cols = [0, 1, 2].map((j) => X.map((r) => r[j]!));
  // pandas 3.1.1: pd.DataFrame(X).cov(min_periods=6), then min_periods=7 (column 2 shares only 6 rows with the others).
  near(covarianceOfColumns(cols, 6).flat(), [
    0.00011611111111111112, 5.557142857142858e-05, 3.63e-05,
    5.557142857142858e-05, 4.944444444444445e-05, -3.506666666666667e-05,
    3.63e-05, -3.506666666666667e-05, 0.00011795238095238095,
  ], 1e-18);
  const strict = covarianceOfColumns(cols, 7);
  assert.deepEqual([strict[0]![2], strict[2]![1]], [NaN, NaN]);
  close(strict[2]![2]!, 0.00011795238095238095, 1e-18, 'var 2');
});

test('covariance: the one-pass correction equals a two-pass sum over common rows, with and without gaps', () => {
  const rng = new Rng(21);
  const rows = 500;
  const cols = Array.from({ length: 6 }, (_, j) => Array.from({ length: rows }, () => (j > 2 && rng.next() < 0.1 ? NaN : 0.01 + 0.02 * rng.normal())));
  const got = covarianceOfColumns(cols);
  for (let i = 0; i < 6; i++) {
    for (let j = 0; j < 6; j++) {
      const common = cols[i]!.map((x, t) => [x, cols[j]![t]!]).filter(([x, y]) => !Number.isNaN(x!) && !Number.isNaN(y!));
      const mx = common.reduce((s, [x]) => s + x!, 0) / common.length;
      const my = common.reduce((s, [, y]) => s + y!, 0) / common.length;
      const want = common.reduce((s, [x, y]) => s + (x! - mx) * (y! - my), 0) / (common.length - 1);
      assert.ok(Math.abs(got[i]![j]! - want) < 1e-15 * 4e-4 + 1e-12 * Math.abs(want), `[${i}][${j}] ${got[i]![j]} vs ${want}`);
    }
  }
});

test('winsorize clips to mean ± k sample sd of the finite values; NaN stays; k = 0 is off', () => {
  // mean 22, sd √(7610/4) = 43.617…: with k = 1 only 100 is clipped, to 22 + 43.617….
  const w = winsorize([1, 2, NaN, 3, 4, 100], 1);
  assert.deepEqual([...w].slice(0, 5), [1, 2, NaN, 3, 4]);
  close(w[5]!, 22 + Math.sqrt(7610 / 4), 1e-12, 'clipped 100');
  assert.deepEqual([...winsorize([1, 2, 100], 0)], [1, 2, 100]);
  const two = winsorize([-100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 2);
  assert.ok(two[0]! > -100 && two[1] === 1, 'the low outlier is clipped too');
});

test('log returns; a missing or non-positive close makes both neighbouring returns NaN', () => {
  const r = logReturns([[100, 1], [110, NaN], [121, 1.5], [0, 3]]);
  assert.equal(r.length, 3);
  close(r[0]![0]!, Math.log(1.1), 1e-15, 'r[0][0]');
  close(r[1]![0]!, Math.log(1.1), 1e-15, 'r[1][0]');
  assert.deepEqual([r[0]![1], r[1]![1]], [NaN, NaN]);
  close(r[2]![1]!, Math.log(2), 1e-15, 'r[2][1]');
  assert.deepEqual(r[2]![0], NaN);
});

// ── overlay ──────────────────────────────────────────────────────────────────

const L1 = ['ADA_USD', 'AVAX_USD', 'DOT_USD', 'SOL_USD'];
const MAJORS = ['EUR_USD', 'GBP_USD', 'USD_CHF', 'USD_JPY'];
const PARAMS: HrpOverlayParams = {
  clusterMap: Object.fromEntries([...L1.map((i) => [i, 'l1']), ...MAJORS.map((i) => [i, 'majors'])]),
  targetRiskBudget: 0.1,
  minScale: 0.5,
  winsorSigma: 3,
  minObs: 100,
};

/** Seeded returns: equal vols; L1 instruments share a factor with correlation ≈ rhoL1, everything shares a weak one (ρ ≈ 0.1). */
function market(rhoL1: number, rows = 2000, seed = 3): { instruments: string[]; returns: number[][] } {
  const rng = new Rng(seed);
  const instruments = [...L1, ...MAJORS];
  const returns = Array.from({ length: rows }, () => {
    const common = rng.normal();
    const l1 = rng.normal();
    return instruments.map((i) => {
      const a = L1.includes(i) ? Math.sqrt(Math.max(0, rhoL1 - 0.1)) : 0;
      return 0.01 * (Math.sqrt(0.1) * common + a * l1 + Math.sqrt(1 - 0.1 - a * a) * rng.normal());
    });
  });
  return { instruments, returns };
}

test('seed acceptance: when L1 coins become highly correlated the L1 budget falls, and the same open risk gives scale < 1', () => {
  const calm = hrpOverlay(market(0.1), PARAMS);
  const crowded = hrpOverlay(market(0.9), PARAMS);
  const l1Calm = calm.budget.l1!.max_equity_risk;
  const l1Crowded = crowded.budget.l1!.max_equity_risk;
  assert.ok(l1Calm > 0.045 && l1Calm < 0.055, `uncorrelated: about half of 0.10, got ${l1Calm}`);
  assert.ok(l1Crowded < 0.035, `correlated: well below half, got ${l1Crowded}`);
  // Open risk that fitted the calm budget is now over the crowded one.
  const openRisk = Object.fromEntries(L1.map((i) => [i, l1Calm / 4]));
  const before = hrpOverlay({ ...market(0.1), openRisk }, PARAMS).budget.l1!;
  const after = hrpOverlay({ ...market(0.9), openRisk }, PARAMS).budget.l1!;
  assert.equal(before.scale, 1);
  assert.ok(after.scale < 1 && after.scale >= PARAMS.minScale, `scale ${after.scale}`);
  close(after.scale, Math.max(0.5, 1 - (l1Calm - l1Crowded) / l1Crowded), 1e-12, 'scale = max(min, 1 − relative overage)');
});

test('seed acceptance: a cluster without open risk has scale 1; budgets sum to TARGET_RISK_BUDGET', () => {
  const r = hrpOverlay({ ...market(0.9), openRisk: { EUR_USD: 0.5 } }, PARAMS);
  assert.equal(r.budget.l1!.scale, 1);
  assert.equal(r.budget.majors!.scale, 0.5);
  const total = Object.values(r.budget).reduce((s, b) => s + b.max_equity_risk, 0);
  close(total, 0.1, 1e-15, 'Σ max_equity_risk');
  assert.deepEqual(Object.keys(r.budget), ['l1', 'majors']);
  close(Object.values(r.weights).reduce((a, b) => a + b, 0), 1, 1e-12, 'Σ weights');
});

test('scale = max(min_scale, 1 − overage), overage relative to the budget', () => {
  const s = (budget: number, open: number, min = 0.5) => clusterScale(budget, open, min);
  assert.deepEqual(s(0.05, 0), { overage: 0, scale: 1 });
  assert.deepEqual(s(0.05, 0.05), { overage: 0, scale: 1 });
  const golden = s(0.05, 0.065); // 30 % over → 70 % of normal risk (the seed's golden path)
  close(golden.overage, 0.3, 1e-12, 'overage');
  close(golden.scale, 0.7, 1e-12, 'scale');
  assert.equal(s(0.05, 0.2).scale, 0.5);
  assert.equal(s(0.05, 0.2, 0).scale, 0, 'HRP_MIN_SCALE 0: the seed\'s max(0, 1 − overage)');
  assert.deepEqual(s(0, 0.01), { overage: Infinity, scale: 0.5 });
  assert.deepEqual(s(0, 0), { overage: 0, scale: 1 });
});

test('unmapped instruments are budgeted as "other"; a mapped cluster without data is published with budget 0', () => {
  const { instruments, returns } = market(0.5);
  const params = { ...PARAMS, clusterMap: { ...PARAMS.clusterMap, BTC_USD: 'memes' } };
  const unmapped = { ...params, clusterMap: Object.fromEntries(Object.entries(params.clusterMap).filter(([i]) => i !== 'USD_JPY')) };
  const r = hrpOverlay({ instruments, returns, openRisk: { BTC_USD: 0.01 } }, unmapped);
  assert.deepEqual(Object.keys(r.budget), ['l1', 'majors', 'memes', 'other']);
  assert.deepEqual(r.budget.memes, { max_equity_risk: 0, scale: 0.5 });
  assert.deepEqual(r.clusters.find((c) => c.cluster === 'other')!.instruments, ['USD_JPY']);
  assert.ok(r.budget.other!.max_equity_risk > 0, 'USD_JPY has data: "other" gets a budget');
});

test('the result does not depend on the column order (columns are sorted by name first)', () => {
  const { instruments, returns } = market(0.6);
  const perm = [5, 2, 7, 0, 3, 6, 1, 4];
  const a = hrpOverlay({ instruments, returns }, PARAMS);
  const b = hrpOverlay({ instruments: perm.map((k) => instruments[k]!), returns: returns.map((row) => perm.map((k) => row[k]!)) }, PARAMS);
  assert.deepEqual(b, a);
});

test('instruments with too few returns, no variance or no overlap are left out and named', () => {
  const { instruments, returns } = market(0.3, 400);
  // SPARSE_USD: 50 returns (< HRP_MIN_OBS 100); FLAT_USD: constant; EARLY_USD / LATE_USD: 200 each, disjoint halves.
  const rows = returns.map((row, t) => [...row, t < 50 ? 0.01 : NaN, 0.001, t < 200 ? 0.01 * Math.sin(t) : NaN, t >= 200 ? 0.01 * Math.cos(t) : NaN]);
  const names = [...instruments, 'SPARSE_USD', 'FLAT_USD', 'EARLY_USD', 'LATE_USD'];
  const r = hrpOverlay({ instruments: names, returns: rows }, PARAMS);
  assert.deepEqual(r.dropped, [
    { instrument: 'FLAT_USD', reason: 'constant', observations: 400 },
    { instrument: 'LATE_USD', reason: 'no_overlap', observations: 200 },
    { instrument: 'SPARSE_USD', reason: 'sparse', observations: 50 },
  ]);
  assert.deepEqual(['EARLY_USD' in r.weights, 'LATE_USD' in r.weights], [true, false]);
  assert.equal(Object.keys(r.weights).length, 9);
});

test('bad overlay input is an InputError naming the field', () => {
  assert.throws(() => hrpOverlay({ instruments: ['A_B', 'A_B'], returns: [] }, PARAMS), (e: unknown) => e instanceof InputError && e.field === 'instruments');
  assert.throws(() => hrpOverlay({ instruments: ['A_B'], returns: [[0.1, 0.2]] }, PARAMS), /row 0 has 2 values for 1 instruments/);
  assert.throws(() => hrpOverlay({ ...market(0.1), openRisk: { EUR_USD: NaN } }, PARAMS), (e: unknown) => e instanceof InputError && e.field === 'openRisk');
});

test('Redis: hrp:budget:<YYYYMMDD> (UTC day) with one JSON field per cluster, the seed\'s shape', () => {
  assert.equal(hrpBudgetKey(Date.UTC(2026, 0, 13, 23, 59)), 'hrp:budget:20260113');
  assert.deepEqual(hrpBudgetFields({ majors: { max_equity_risk: 0.06, scale: 0.92 }, l1: { max_equity_risk: 0.05, scale: 0.75 } }), {
    majors: '{"max_equity_risk":0.06,"scale":0.92}',
    l1: '{"max_equity_risk":0.05,"scale":0.75}',
  });
});

function near(got: readonly number[], want: readonly number[], tol: number): void {
  assert.equal(got.length, want.length);
  got.forEach((g, i) => close(g, want[i]!, tol, `[${i}]`));
}

/** |got − want| ≤ tol, with a message (assert.ok without one re-reads the source, which can hang under tsx). */
function close(got: number, want: number, tol: number, what: string): void {
  assert.ok(Math.abs(got - want) <= tol, `${what}: ${got} vs ${want} (tol ${tol})`);
}
