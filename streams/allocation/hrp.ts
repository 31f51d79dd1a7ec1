/**
 * Hierarchical Risk Parity (López de Prado, "Building Diversified Portfolios
 * that Outperform Out of Sample", J. Portfolio Management 42(4), 2016) and the
 * HRP overlay of seed ticket 17 (DESIGN §6.3). Pure functions: no clock, no I/O.
 *
 * The algorithm follows the paper's code step by step, so Exhibit 7 of the
 * paper is reproduced exactly (test/streams/allocation/hrp.test.ts):
 *
 * 1. ρ from the covariance;  d_ij = √(½(1 − ρ_ij))            (correlDist)
 * 2. d̃_ij = ‖d_·i − d_·j‖₂, the distance between columns of d  (the paper passes
 *    the square d to scipy's linkage, which treats its rows as observations;
 *    PyPortfolioOpt and Riskfolio-Lib skip this step and give other weights)
 * 3. single linkage on d̃ with scipy's semantics (below);
 * 4. quasi-diagonal leaf order: each cluster expands to (Z[k,0], Z[k,1]),
 *    scipy's lower cluster id first                           (getQuasiDiag)
 * 5. recursive bisection of the ordered list at ⌊len/2⌋, each half's variance
 *    w′Vw with inverse-variance w inside the half              (getRecBipart)
 *
 * Details: docs/overlays.md.
 */
import { InputError } from '../runtime/errors.ts';

export type Matrix = readonly (readonly number[])[];

/** One merge of the linkage, scipy's layout: clusters a < b (ids: leaves 0…n−1, merges n, n+1, …), their distance, the merged size. */
export type LinkageStep = readonly [a: number, b: number, distance: number, size: number];

export interface HrpResult {
  /** Quasi-diagonal leaf order, as indices into the covariance. */
  order: number[];
  /** HRP weights by input index (not by order); they sum to 1. */
  weights: number[];
  /** The labels in leaf order (labels default to the indices "0", "1", …). */
  orderLabels: string[];
  /** The single-linkage tree on d̃ (n − 1 merges). */
  linkage: LinkageStep[];
}

/**
 * HRP weights of a covariance matrix. Throws InputError (`invalid_value`,
 * field `cov`) when the matrix is not square, not finite, not symmetric, or
 * has a variance ≤ 0 (drop such instruments first, as hrpOverlay does).
 */
export function hrpWeights(cov: Matrix, labels?: readonly string[]): HrpResult {
  const n = checkCovariance(cov);
  if (labels && labels.length !== n) throw new InputError('invalid_value', 'labels', `${labels.length} labels for a ${n}×${n} covariance`);
  const names = labels ?? Array.from({ length: n }, (_, i) => String(i));
  if (n === 0) return { order: [], weights: [], orderLabels: [], linkage: [] };
  const dTilde = columnDistances(correlationDistance(correlationFromCovariance(cov)));
  const linkage = singleLinkage(dTilde);
  const order = quasiDiagonal(linkage, n);
  const weights = recursiveBisection(cov, order);
  return { order, weights, orderLabels: order.map((i) => names[i]!), linkage };
}

/** ρ_ij = σ_ij / √(σ_ii σ_jj), clipped to [−1, 1] against rounding; the diagonal is exactly 1, so d_ii is exactly 0. */
export function correlationFromCovariance(cov: Matrix): number[][] {
  const sd = cov.map((row, i) => Math.sqrt(row[i]!));
  return cov.map((row, i) => row.map((c, j) => (i === j ? 1 : Math.min(1, Math.max(-1, c / (sd[i]! * sd[j]!))))));
}

/** d_ij = √(½(1 − ρ_ij)): a proper metric on correlations, 0 for ρ = 1 and 1 for ρ = −1 (paper, Exhibit/prop. 1). */
export function correlationDistance(corr: Matrix): number[][] {
  return corr.map((row) => row.map((r) => Math.sqrt(0.5 * (1 - r))));
}

/**
 * d̃_ij = √(Σ_k (d_ki − d_kj)²): Euclidean distance between columns i and j of
 * d — what scipy's pdist(d, 'euclidean') computes when linkage gets the square
 * d (d is symmetric, so rows and columns are the same vectors).
 */
export function columnDistances(d: Matrix): number[][] {
  const n = d.length;
  const cols = Array.from({ length: n }, (_, i) => Float64Array.from(d, (row) => row[i]!));
  const out = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const set = (i: number, j: number, s: number) => (out[i]![j] = out[j]![i] = Math.sqrt(s));
  for (let i = 0; i < n; i++) {
    const a = cols[i]!;
    let j = i + 1;
    // Four columns per pass over a (same sums, in the same order, as one at a time).
    for (; j + 3 < n; j += 4) {
      const b0 = cols[j]!;
      const b1 = cols[j + 1]!;
      const b2 = cols[j + 2]!;
      const b3 = cols[j + 3]!;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < n; k++) {
        const x = a[k]!;
        const e0 = x - b0[k]!;
        const e1 = x - b1[k]!;
        const e2 = x - b2[k]!;
        const e3 = x - b3[k]!;
        s0 += e0 * e0; s1 += e1 * e1; s2 += e2 * e2; s3 += e3 * e3;
      }
      set(i, j, s0);
      set(i, j + 1, s1);
      set(i, j + 2, s2);
      set(i, j + 3, s3);
    }
    for (; j < n; j++) {
      const b = cols[j]!;
      let s = 0;
      for (let k = 0; k < n; k++) {
        const e = a[k]! - b[k]!;
        s += e * e;
      }
      set(i, j, s);
    }
  }
  return out;
}

/**
 * Single linkage with scipy's semantics (scipy.cluster.hierarchy.linkage,
 * method 'single' → _hierarchy.mst_single_linkage), so ties resolve as they do
 * in the paper's Python:
 *
 * - Prim's algorithm from leaf 0; each step takes the nearest unmerged leaf,
 *   the first in index order on equal distances, and records (last added leaf,
 *   that leaf, distance);
 * - the n − 1 records are stably sorted by distance (numpy mergesort);
 * - a union-find relabels each record's ends to their current clusters, the
 *   lower id first, and names the merge n + k.
 */
export function singleLinkage(dist: Matrix): LinkageStep[] {
  const n = dist.length;
  const merged = new Uint8Array(n);
  const best = new Float64Array(n).fill(Infinity);
  const edges: [number, number, number][] = [];
  let x = 0;
  for (let k = 0; k < n - 1; k++) {
    merged[x] = 1;
    let y = -1;
    let min = Infinity;
    const row = dist[x]!;
    for (let i = 0; i < n; i++) {
      if (merged[i]) continue;
      const d = row[i]!;
      if (best[i]! > d) best[i] = d;
      if (best[i]! < min || y < 0) {
        y = i;
        min = best[i]!;
      }
    }
    edges.push([x, y, min]);
    x = y;
  }
  // Array.prototype.sort is stable (ES2019), like numpy's mergesort.
  edges.sort((p, q) => p[2] - q[2]);
  const parent = Array.from({ length: 2 * n - 1 }, (_, i) => i);
  const size = new Array<number>(2 * n - 1).fill(1);
  const find = (i: number): number => {
    let r = i;
    while (parent[r] !== r) r = parent[r]!;
    while (parent[i] !== r) {
      const next = parent[i]!;
      parent[i] = r;
      i = next;
    }
    return r;
  };
  return edges.map(([a, b, d], k) => {
    const ra = find(a);
    const rb = find(b);
    const id = n + k;
    parent[ra] = parent[rb] = id;
    size[id] = size[ra]! + size[rb]!;
    return [Math.min(ra, rb), Math.max(ra, rb), d, size[id]!] as const;
  });
}

/** Leaf order of the tree: the root expanded depth-first, Z[k,0] before Z[k,1] (the paper's getQuasiDiag). */
export function quasiDiagonal(linkage: readonly LinkageStep[], n: number): number[] {
  if (n === 1) return [0];
  const order: number[] = [];
  const stack = [2 * n - 2];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (id < n) {
      order.push(id);
      continue;
    }
    const [a, b] = linkage[id - n]!;
    stack.push(b, a); // a is popped first
  }
  return order;
}

/**
 * Recursive bisection (the paper's getRecBipart): split every list at ⌊len/2⌋;
 * the left half gets α = 1 − V₀/(V₀ + V₁) of the parent's weight, the right
 * 1 − α, where V = w′Vw with w ∝ 1/diag inside the half (getClusterVar).
 * Returns weights by covariance index.
 */
export function recursiveBisection(cov: Matrix, order: readonly number[]): number[] {
  const w = new Array<number>(cov.length).fill(0);
  for (const i of order) w[i] = 1;
  const stack: [number, number][] = [[0, order.length]];
  while (stack.length > 0) {
    const [lo, hi] = stack.pop()!;
    if (hi - lo < 2) continue;
    const mid = lo + Math.floor((hi - lo) / 2);
    const v0 = clusterVariance(cov, order.slice(lo, mid));
    const v1 = clusterVariance(cov, order.slice(mid, hi));
    const alpha = 1 - v0 / (v0 + v1);
    for (let k = lo; k < mid; k++) w[order[k]!]! *= alpha;
    for (let k = mid; k < hi; k++) w[order[k]!]! *= 1 - alpha;
    stack.push([lo, mid], [mid, hi]);
  }
  return w;
}

/** w′Vw of a sub-portfolio with inverse-variance weights w_i ∝ 1/σ_ii (the paper's getIVP + getClusterVar). */
export function clusterVariance(cov: Matrix, items: readonly number[]): number {
  let total = 0;
  for (const i of items) total += 1 / cov[i]![i]!;
  let v = 0;
  for (const i of items) {
    const row = cov[i]!;
    let s = 0;
    for (const j of items) s += row[j]! / cov[j]![j]!;
    v += s / row[i]!;
  }
  return v / (total * total);
}

/** The size of a covariance matrix, or InputError naming what is wrong. */
function checkCovariance(cov: Matrix): number {
  const n = cov.length;
  const bad = (message: string) => new InputError('invalid_value', 'cov', message);
  for (let i = 0; i < n; i++) {
    const row = cov[i]!;
    if (row.length !== n) throw bad(`row ${i} has ${row.length} entries; a ${n}×${n} matrix is needed`);
    if (!(row[i]! > 0) || !Number.isFinite(row[i]!)) throw bad(`variance ${i} is ${row[i]}; every variance must be finite and > 0 (drop constant or empty series first)`);
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const a = cov[i]![j]!;
      const b = cov[j]![i]!;
      if (!Number.isFinite(a)) throw bad(`entry [${i}][${j}] is ${a}; every covariance must be finite`);
      if (!Number.isFinite(b)) throw bad(`entry [${j}][${i}] is ${b}; every covariance must be finite`);
      // Symmetric up to rounding: 1e-9 of the pair's scale √(σ_ii σ_jj).
      if (Math.abs(a - b) > 1e-9 * Math.sqrt(cov[i]![i]! * cov[j]![j]!)) throw bad(`entries [${i}][${j}] = ${a} and [${j}][${i}] = ${b} differ; the matrix must be symmetric`);
    }
  }
  return n;
}

// ── Inputs: returns → covariance ─────────────────────────────────────────────

/**
 * Log returns r_t = ln(C_t / C_{t−1}) of a close matrix (rows = bars, oldest
 * first; columns = instruments). A missing, non-finite or non-positive close
 * gives NaN for the returns on both sides of it; nothing is filled forward.
 */
export function logReturns(closes: Matrix): number[][] {
  const ok = (c: number | undefined): c is number => c !== undefined && Number.isFinite(c) && c > 0;
  const out: number[][] = [];
  for (let t = 1; t < closes.length; t++) {
    const prev = closes[t - 1]!;
    out.push(closes[t]!.map((c, j) => (ok(c) && ok(prev[j]) ? Math.log(c / prev[j]!) : NaN)));
  }
  return out;
}

/**
 * Clips a series to mean ± k·sd (sample sd, ddof 1) of its finite values (seed
 * ticket 17: "winsorize ±3σ"), one pass; NaN stays NaN; k = 0 leaves it as is.
 */
export function winsorize(xs: ArrayLike<number>, k: number): Float64Array {
  const out = new Float64Array(xs.length);
  let n = 0;
  let sum = 0;
  for (let t = 0; t < out.length; t++) {
    const x = (out[t] = xs[t]!);
    if (!Number.isFinite(x)) continue;
    n++;
    sum += x;
  }
  if (!(k > 0) || n < 2) return out;
  const mean = sum / n;
  let ss = 0;
  for (let t = 0; t < out.length; t++) {
    const x = out[t]!;
    if (Number.isFinite(x)) ss += (x - mean) ** 2;
  }
  const band = k * Math.sqrt(ss / (n - 1));
  for (let t = 0; t < out.length; t++) {
    const x = out[t]!;
    if (Number.isFinite(x)) out[t] = Math.min(mean + band, Math.max(mean - band, x));
  }
  return out;
}

/**
 * Sample covariance (ddof 1) of columns with missing values, as pandas'
 * DataFrame.cov(min_periods) defines it (the paper's `x.cov()`): each pair
 * over the rows where both are finite, about the means of those rows; NaN when
 * fewer than `minPeriods` (≥ 2) rows are common. Non-finite values are missing.
 *
 * Computed as one dot product per pair of the columns centred on their own
 * means and zero-filled where missing, corrected over the missing rows only:
 * with z = x − mean(x) (0 where missing), C the m common rows,
 *   Σ_C (x − x̄_C)(y − ȳ_C) = Σ_all z_x z_y − S_x S_y / m,  S_x = Σ_C z_x.
 * Centring first keeps S_x/m tiny, so this equals the two-pass sum to
 * rounding (test/streams/allocation/hrp.test.ts checks it against one).
 */
export function covarianceOfColumns(columns: readonly ArrayLike<number>[], minPeriods = 2): number[][] {
  const n = columns.length;
  const rows = n === 0 ? 0 : columns[0]!.length;
  const z: Float64Array[] = [];
  const missing: Int32Array[] = [];
  const isMissing: Uint8Array[] = [];
  const total = new Float64Array(n);
  for (const [i, c] of columns.entries()) {
    if (c.length !== rows) throw new InputError('invalid_value', 'returns', `column ${i} has ${c.length} rows, column 0 has ${rows}`);
    const col = new Float64Array(rows);
    const gaps: number[] = [];
    let sum = 0;
    for (let t = 0; t < rows; t++) {
      const x = c[t]!;
      if (Number.isFinite(x)) sum += x;
      else gaps.push(t);
    }
    const mean = sum / (rows - gaps.length);
    let s = 0;
    for (let t = 0; t < rows; t++) {
      const x = c[t]!;
      col[t] = Number.isFinite(x) ? x - mean : 0;
      s += col[t]!;
    }
    z.push(col);
    missing.push(Int32Array.from(gaps));
    const flags = new Uint8Array(rows);
    for (const t of gaps) flags[t] = 1;
    isMissing.push(flags);
    total[i] = s;
  }
  const gram = gramMatrix(z);
  const out = Array.from({ length: n }, () => new Array<number>(n).fill(NaN));
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const mi = missing[i]!;
      const mj = missing[j]!;
      const m = rows - mi.length - mj.length + countAt(isMissing[j]!, mi);
      let v = NaN;
      if (m >= minPeriods && m >= 2) {
        if (mi.length === 0 && mj.length === 0) {
          v = gram[i * n + j]! / (m - 1);
        } else {
          const sx = total[i]! - sumAt(z[i]!, mj);
          const sy = total[j]! - sumAt(z[j]!, mi);
          v = (gram[i * n + j]! - (sx * sy) / m) / (m - 1);
        }
      }
      out[i]![j] = out[j]![i] = v;
    }
  }
  return out;
}

/** Σ_t a_t b_t for every pair (upper triangle, row-major n×n), two columns by four at a time: each load serves several sums. */
function gramMatrix(cols: readonly Float64Array[]): Float64Array {
  const n = cols.length;
  const out = new Float64Array(n * n);
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const a0 = cols[i]!;
    const a1 = cols[i + 1]!;
    out[i * n + i] = dot(a0, a0);
    out[i * n + i + 1] = dot(a0, a1);
    out[(i + 1) * n + i + 1] = dot(a1, a1);
    let j = i + 2;
    for (; j + 3 < n; j += 4) {
      const b0 = cols[j]!;
      const b1 = cols[j + 1]!;
      const b2 = cols[j + 2]!;
      const b3 = cols[j + 3]!;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, r0 = 0, r1 = 0, r2 = 0, r3 = 0;
      for (let t = 0; t < a0.length; t++) {
        const x = a0[t]!;
        const y = a1[t]!;
        const c0 = b0[t]!;
        const c1 = b1[t]!;
        const c2 = b2[t]!;
        const c3 = b3[t]!;
        s0 += x * c0; s1 += x * c1; s2 += x * c2; s3 += x * c3;
        r0 += y * c0; r1 += y * c1; r2 += y * c2; r3 += y * c3;
      }
      const o = i * n + j;
      const p = o + n;
      out[o] = s0; out[o + 1] = s1; out[o + 2] = s2; out[o + 3] = s3;
      out[p] = r0; out[p + 1] = r1; out[p + 2] = r2; out[p + 3] = r3;
    }
    for (; j < n; j++) {
      out[i * n + j] = dot(a0, cols[j]!);
      out[(i + 1) * n + j] = dot(a1, cols[j]!);
    }
  }
  for (; i < n; i++) out[i * n + i] = dot(cols[i]!, cols[i]!);
  return out;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let t = 0; t < a.length; t++) s += a[t]! * b[t]!;
  return s;
}

/** Σ a_t over the rows t listed. */
function sumAt(a: Float64Array, rows: Int32Array): number {
  let s = 0;
  for (let k = 0; k < rows.length; k++) s += a[rows[k]!]!;
  return s;
}

/** How many of the rows listed are flagged (rows missing in both columns). */
function countAt(flags: Uint8Array, rows: Int32Array): number {
  let k = 0;
  for (let p = 0; p < rows.length; p++) k += flags[rows[p]!]!;
  return k;
}

// ── The overlay: HRP weights → cluster budgets → scale factors ───────────────

/** Instruments missing from CLUSTER_MAP are budgeted together under this name. */
export const OTHER_CLUSTER = 'other';

export interface HrpOverlayParams {
  /** CLUSTER_MAP: instrument → cluster name; default {} (everything in "other"). */
  clusterMap: Readonly<Record<string, string>>;
  /** TARGET_RISK_BUDGET, fraction of equity the cluster budgets sum to; default 0.10. */
  targetRiskBudget: number;
  /** HRP_MIN_SCALE, lowest scale a cluster gets however far over budget, in [0, 1]; default 0.5. */
  minScale: number;
  /** HRP_WINSOR_SIGMA, returns are clipped to mean ± this many sd; 0 = off; default 3. */
  winsorSigma: number;
  /** HRP_MIN_OBS, finite returns an instrument (and each pair) needs to take part; default 100. */
  minObs: number;
}

export interface HrpOverlayInput {
  /** Column names of `returns`; any order (they are sorted by name before HRP, so ties never depend on it). */
  instruments: readonly string[];
  /** Rows = bars, oldest first; columns = instruments; NaN (or any non-finite value) = missing. */
  returns: Matrix;
  /** Open risk per instrument, fraction of equity (the seed's risk_pct of open positions); absolute values are summed per cluster. */
  openRisk?: Readonly<Record<string, number>>;
}

/** One field of the Redis hash `hrp:budget:<YYYYMMDD>` (seed ticket 17), e.g. l1: {"max_equity_risk":0.05,"scale":0.75}. */
export interface ClusterBudget {
  /** The cluster's share of TARGET_RISK_BUDGET: TARGET_RISK_BUDGET · Σ HRP weights of its instruments. */
  max_equity_risk: number;
  /** max(HRP_MIN_SCALE, 1 − overage); 1 when the cluster's open risk is within budget. */
  scale: number;
}

/** The published budget: cluster → its entry (Redis hash fields; the same JSON for a notification). */
export type HrpBudget = Record<string, ClusterBudget>;

export interface ClusterDetail extends ClusterBudget {
  cluster: string;
  /** Instruments of the cluster that took part in HRP, by name. */
  instruments: string[];
  /** Σ HRP weights of those instruments (sums to 1 over clusters when any instrument took part). */
  weight: number;
  open_risk: number;
  /** (open_risk − max_equity_risk) / max_equity_risk when over budget, else 0; Infinity for open risk on a zero budget. */
  overage: number;
}

export type DropReason = 'sparse' | 'constant' | 'no_overlap';

export interface HrpOverlayResult {
  budget: HrpBudget;
  /** Every cluster, by name: the budget's entries and how they came about. */
  clusters: ClusterDetail[];
  /** HRP weight per instrument that took part (they sum to 1). */
  weights: Record<string, number>;
  /** Quasi-diagonal order of the instruments that took part. */
  order: string[];
  /** Instruments left out of HRP (budget 0 share): too few returns, no variance, or too little overlap with another. */
  dropped: { instrument: string; reason: DropReason; observations: number }[];
}

/**
 * Seed ticket 17, steps 1–7: winsorise, covariance, HRP, cluster budgets,
 * scales. Clusters published: every CLUSTER_MAP cluster, "other" when an
 * instrument (of the returns or of the open risk) is not mapped, each with a
 * budget (0 if none of its instruments took part).
 */
export function hrpOverlay(input: HrpOverlayInput, params: HrpOverlayParams): HrpOverlayResult {
  const { instruments, returns } = input;
  if (new Set(instruments).size !== instruments.length) throw new InputError('invalid_value', 'instruments', 'an instrument is listed twice');
  returns.forEach((row, t) => {
    if (row.length !== instruments.length) throw new InputError('invalid_value', 'returns', `row ${t} has ${row.length} values for ${instruments.length} instruments`);
  });
  const byName = instruments.map((name, j) => ({ name, j })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const dropped: HrpOverlayResult['dropped'] = [];
  let kept: { name: string; col: Float64Array; obs: number }[] = [];
  // Columns by one pass over the rows (reading row by row is what the cache likes).
  const columns = instruments.map(() => new Float64Array(returns.length));
  for (let t = 0; t < returns.length; t++) {
    const row = returns[t]!;
    for (let j = 0; j < row.length; j++) columns[j]![t] = row[j]!;
  }
  for (const { name, j } of byName) {
    const col = winsorize(columns[j]!, params.winsorSigma);
    let obs = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let t = 0; t < col.length; t++) {
      const x = col[t]!;
      if (!Number.isFinite(x)) continue;
      obs++;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    // Equal values, not a variance ≤ 0 test: a constant's computed variance can be 1e-38.
    if (obs < params.minObs) dropped.push({ instrument: name, reason: 'sparse', observations: obs });
    else if (min === max) dropped.push({ instrument: name, reason: 'constant', observations: obs });
    else kept.push({ name, col, obs });
  }
  let cov = covarianceOfColumns(kept.map((k) => k.col), params.minObs);
  const keep = (idx: number[]) => {
    kept = idx.map((i) => kept[i]!);
    cov = idx.map((i) => idx.map((j) => cov[i]![j]!));
  };
  // A pair with too few common rows has no covariance: drop the instrument with
  // the most such pairs (then the fewer returns, then the later name) until none is left.
  for (;;) {
    const gaps = cov.map((row) => row.filter((v) => Number.isNaN(v)).length);
    let worst = -1;
    gaps.forEach((g, i) => {
      if (g > 0 && (worst < 0 || g > gaps[worst]! || (g === gaps[worst]! && kept[i]!.obs <= kept[worst]!.obs))) worst = i;
    });
    if (worst < 0) break;
    dropped.push({ instrument: kept[worst]!.name, reason: 'no_overlap', observations: kept[worst]!.obs });
    keep(kept.map((_, i) => i).filter((i) => i !== worst));
  }
  const names = kept.map((k) => k.name);
  const hrp = hrpWeights(cov, names);
  const weights: Record<string, number> = {};
  names.forEach((name, i) => (weights[name] = hrp.weights[i]!));
  const clusters = clusterBudgets(weights, input.openRisk ?? {}, instruments, params);
  return {
    budget: Object.fromEntries(clusters.map((c) => [c.cluster, { max_equity_risk: c.max_equity_risk, scale: c.scale }])),
    clusters,
    weights,
    order: hrp.orderLabels,
    dropped: dropped.sort((a, b) => (a.instrument < b.instrument ? -1 : 1)),
  };
}

/** The cluster of an instrument: its CLUSTER_MAP entry, else "other". */
export function clusterOf(clusterMap: Readonly<Record<string, string>>, instrument: string): string {
  return Object.hasOwn(clusterMap, instrument) ? clusterMap[instrument]! : OTHER_CLUSTER;
}

/**
 * Steps 6–7: max_equity_risk = TARGET_RISK_BUDGET · Σ_cluster w_i, and the
 * scale from the cluster's open risk. `universe` lists further instruments
 * whose clusters are published even without weight (the overlay's input).
 */
export function clusterBudgets(
  weights: Readonly<Record<string, number>>,
  openRisk: Readonly<Record<string, number>>,
  universe: readonly string[],
  params: Pick<HrpOverlayParams, 'clusterMap' | 'targetRiskBudget' | 'minScale'>,
): ClusterDetail[] {
  const of = (instrument: string) => clusterOf(params.clusterMap, instrument);
  const names = new Set<string>(Object.values(params.clusterMap));
  for (const i of [...universe, ...Object.keys(weights), ...Object.keys(openRisk)]) names.add(of(i));
  const detail = new Map<string, { instruments: string[]; weight: number; open: number }>();
  for (const c of names) detail.set(c, { instruments: [], weight: 0, open: 0 });
  for (const [i, w] of Object.entries(weights)) {
    const d = detail.get(of(i))!;
    d.instruments.push(i);
    d.weight += w;
  }
  for (const [i, r] of Object.entries(openRisk)) {
    if (!Number.isFinite(r)) throw new InputError('invalid_value', 'openRisk', `${i}: open risk ${r} is not a finite fraction of equity`);
    detail.get(of(i))!.open += Math.abs(r);
  }
  return [...detail.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([cluster, d]) => {
      const max = params.targetRiskBudget * d.weight;
      const { overage, scale } = clusterScale(max, d.open, params.minScale);
      return { cluster, instruments: d.instruments.sort(), weight: d.weight, max_equity_risk: max, open_risk: d.open, overage, scale };
    });
}

/**
 * scale = max(minScale, 1 − overage), overage = (open − budget) / budget above
 * budget, else 0 (seed ticket 17 step 7; relative, so 30 % over budget sizes
 * new trades at 70 %, the seed's golden path). No open risk → 1; open risk on a
 * zero budget → minScale.
 */
export function clusterScale(budget: number, openRisk: number, minScale: number): { overage: number; scale: number } {
  const overage = openRisk <= budget ? 0 : budget > 0 ? (openRisk - budget) / budget : Infinity;
  return { overage, scale: Math.max(minScale, 1 - overage) };
}

/** The Redis key of a day's budget, `hrp:budget:<YYYYMMDD>` (UTC day of `tsMs`, the computation's stream time). */
export function hrpBudgetKey(tsMs: number): string {
  return `hrp:budget:${new Date(tsMs).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/** HSET fields of the budget: cluster → JSON of its entry. */
export function hrpBudgetFields(budget: HrpBudget): Record<string, string> {
  return Object.fromEntries(Object.entries(budget).map(([c, b]) => [c, JSON.stringify({ max_equity_risk: b.max_equity_risk, scale: b.scale })]));
}
