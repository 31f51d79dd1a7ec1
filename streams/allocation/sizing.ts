/**
 * Sizing: shares of the selected instruments that sum to 1 (DESIGN §6.3;
 * mm-bot README "Portfolio Allocator (L1/L2)" and its invariants). The
 * allocator multiplies the shares by RISK_ALLOC_TARGET_PCT afterwards.
 *
 * Modes:
 *   equal        1/n each
 *   inverse_vol  ∝ 1/max(ε, σ_i), ε = 1e-9 (seed)
 *   risk_parity  equal risk contribution w_i·(Σw)_i = w'Σw/n, solved by
 *                cyclical coordinate descent (Griveau-Billion, Richard &
 *                Roncalli 2013) on Σ_ij = ρ_ij·σ_i·σ_j
 *   manual       ALLOC_MANUAL_WEIGHTS_JSON, normalised over the selection
 *
 * Then every mode is clamped to [min_weight, max_weight] with the leftover
 * redistributed over the free shares until stable (clampShares). Invariants
 * (seed): Σ = 1 to 1e-9, each share inside the bounds.
 */
import { ConfigError } from '../runtime/errors.ts';

export const SIZING_MODES = ['equal', 'inverse_vol', 'risk_parity', 'manual'] as const;
export type SizingMode = (typeof SIZING_MODES)[number];

/** Share bounds; a share is a fraction of the selection, not of equity. */
export interface ShareBounds {
  /** ALLOC_MIN_WEIGHT, in [0, 1]. */
  minWeight: number;
  /** ALLOC_MAX_WEIGHT, in [minWeight, 1]. */
  maxWeight: number;
}

/** inverse_vol's floor under σ (seed: "1/max(eps, vol) with eps=1e-9"). */
export const VOL_EPSILON = 1e-9;
/**
 * Risk parity stops when a full sweep moves no normalised weight by more than
 * this. CCD converges linearly; four assets need about 30 sweeps, 200 about 60.
 */
export const RP_TOLERANCE = 1e-12;
/** Sweeps risk parity runs at most; a positive-definite Σ never needs more than a few hundred. */
export const RP_MAX_SWEEPS = 10_000;

/** Correlations keyed by instrument pairs; either order works, a missing pair is 0. */
export type Correlations = Readonly<Record<string, Readonly<Record<string, number>>>>;

export interface SizingInput {
  /** The selected instruments, distinct; the output keeps this order. */
  instruments: readonly string[];
  /** Volatility per instrument, any consistent unit (inverse_vol, risk_parity). */
  vols?: Readonly<Record<string, number>>;
  /** Pairwise correlations (risk_parity); missing pairs are 0. */
  correlations?: Correlations;
  /** Raw manual weights (manual); missing instruments start at 0. */
  manualWeights?: Readonly<Record<string, number>>;
}

export interface SizingResult {
  /** instrument → share, in the input order; Σ = 1 (empty for no instruments). */
  shares: Record<string, number>;
  /** Shares pinned at min_weight / max_weight by the clamp. */
  atMin: string[];
  atMax: string[];
  /** Instruments without a usable vol (inverse_vol, risk_parity), sized with the fallback vol. */
  volMissing: string[];
  /** risk_parity: sweeps run and whether RP_TOLERANCE was met; 0 / true otherwise. */
  iterations: number;
  converged: boolean;
}

// ---- array cores

/** 1/n each. */
export function equalShares(n: number): number[] {
  return Array.from({ length: n }, () => 1 / n);
}

/** Shares ∝ 1/max(ε, σ_i); every σ must be finite and ≥ 0. */
export function inverseVolShares(vols: readonly number[]): number[] {
  const inv = vols.map((v) => {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`inverseVolShares: vol ${v} must be finite and ≥ 0`);
    return 1 / Math.max(VOL_EPSILON, v);
  });
  return normalise(inv);
}

/** Σ_ij = ρ_ij·σ_i·σ_j with ρ_ii = 1; `rho(i, j)` is asked for i < j only. */
export function covariance(vols: readonly number[], rho: (i: number, j: number) => number): number[][] {
  const n = vols.length;
  const cov = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    cov[i]![i] = vols[i]! * vols[i]!;
    for (let j = i + 1; j < n; j++) {
      const r = rho(i, j);
      if (!Number.isFinite(r) || r < -1 || r > 1) throw new RangeError(`covariance: correlation ${r} of ${i},${j} must be in [-1, 1]`);
      cov[i]![j] = cov[j]![i] = r * vols[i]! * vols[j]!;
    }
  }
  return cov;
}

/**
 * Equal risk contribution weights of covariance Σ (n×n, positive diagonal) by
 * cyclical coordinate descent (Griveau-Billion, Richard & Roncalli 2013,
 * "A fast algorithm for computing high-dimensional risk parity portfolios"):
 * minimise ½·x'Σx − Σ b_i·ln x_i with b_i = 1/n; coordinate i solves
 * Σ_ii·x_i² + c_i·x_i − b_i = 0, c_i = Σ_{j≠i} Σ_ij·x_j, whose positive root
 * x_i = (−c_i + √(c_i² + 4·Σ_ii·b_i)) / (2·Σ_ii) keeps every x_i > 0. The
 * minimiser has x_i·(Σx)_i = b_i for all i, i.e. equal risk contributions;
 * w = x/Σx. Starts from inverse vol (the exact answer for constant ρ).
 * Stops when a sweep moves no normalised weight by more than `tolerance`, or
 * after `maxSweeps` (then `converged` is false and the last iterate is
 * returned: still positive and summing to 1).
 */
export function riskParityShares(cov: readonly (readonly number[])[], tolerance = RP_TOLERANCE, maxSweeps = RP_MAX_SWEEPS): { shares: number[]; iterations: number; converged: boolean } {
  const n = cov.length;
  if (n === 0) return { shares: [], iterations: 0, converged: true };
  for (let i = 0; i < n; i++) {
    const d = cov[i]![i]!;
    if (!(d > 0) || !Number.isFinite(d)) throw new RangeError(`riskParityShares: variance ${d} of asset ${i} must be finite and > 0`);
  }
  const b = 1 / n;
  const x = cov.map((row, i) => 1 / Math.sqrt(row[i]!));
  for (let sweep = 1; sweep <= maxSweeps; sweep++) {
    const before = normalise(x);
    for (let i = 0; i < n; i++) {
      const row = cov[i]!;
      let c = 0;
      for (let j = 0; j < n; j++) if (j !== i) c += row[j]! * x[j]!;
      const d = row[i]!;
      x[i] = (-c + Math.sqrt(c * c + 4 * d * b)) / (2 * d);
    }
    const after = normalise(x);
    let moved = 0;
    for (let i = 0; i < n; i++) moved = Math.max(moved, Math.abs(after[i]! - before[i]!));
    if (moved <= tolerance) return { shares: after, iterations: sweep, converged: true };
  }
  return { shares: normalise(x), iterations: maxSweeps, converged: false };
}

/** Risk contributions w_i·(Σw)_i / w'Σw: all 1/n at equal risk contribution (for tests and docs). */
export function riskContributions(shares: readonly number[], cov: readonly (readonly number[])[]): number[] {
  const m = shares.map((_, i) => cov[i]!.reduce((s, c, j) => s + c * shares[j]!, 0));
  const total = shares.reduce((s, w, i) => s + w * m[i]!, 0);
  return shares.map((w, i) => (w * m[i]!) / total);
}

/**
 * Clamps shares to [lo, hi] and redistributes the leftover over the free
 * shares in proportion to their raw values until stable. The stable point is
 * w_i = clamp(λ·r_i, lo, hi) with the one λ that makes Σw = 1 (Σ is
 * piecewise linear and non-decreasing in λ, so λ is found exactly on the
 * segment between two breakpoints lo/r_i, hi/r_i). It is the fixed point of
 * "pin the violators, rescale the rest"; an actual pin-one-at-a-time loop can
 * stop elsewhere depending on which violator it pins first (a share pinned at
 * hi early may no longer exceed it once lo-pins took their mass), this
 * cannot. DESIGN §10: [.48,.24,.16,.12] in [.15,.40] → [.40,.27,.18,.15].
 *
 * Raw zeros stay at lo, except when every positive raw share is at hi and
 * Σ < 1: the zeros then share the remainder equally (never above hi).
 * Throws ConfigError naming ALLOC_MIN_WEIGHT / ALLOC_MAX_WEIGHT when
 * n·lo > 1 or n·hi < 1: no shares in the bounds sum to 1.
 */
export function clampShares(raw: readonly number[], lo: number, hi: number): number[] {
  const n = raw.length;
  if (n === 0) return [];
  checkBounds(n, lo, hi);
  for (const r of raw) if (!Number.isFinite(r) || r < 0) throw new RangeError(`clampShares: raw share ${r} must be finite and ≥ 0`);
  const positive = raw.some((r) => r > 0);
  const r = positive ? raw : raw.map(() => 1);
  const at = (lambda: number) => r.map((ri) => Math.min(hi, Math.max(lo, lambda * ri)));
  const sum = (w: number[]) => w.reduce((s, v) => s + v, 0);

  const breaks = [...new Set(r.flatMap((ri) => (ri > 0 ? [lo / ri, hi / ri] : [])))].sort((a, b) => a - b);
  let prev = 0;
  for (const bp of [...breaks, Infinity]) {
    if (bp !== Infinity && sum(at(bp)) < 1) {
      prev = bp;
      continue;
    }
    // Σ crosses 1 on [prev, bp]: the shares rising there (lo < λ·r_i < hi) are linear in λ.
    const mid = bp === Infinity ? prev + 1 : (prev + bp) / 2;
    let fixed = 0;
    let slope = 0;
    for (const ri of r) {
      const v = mid * ri;
      if (v <= lo) fixed += lo;
      else if (v >= hi) fixed += hi;
      else slope += ri;
    }
    if (slope > 0) {
      const w = at((1 - fixed) / slope);
      return polish(w, lo, hi);
    }
    const zeros = r.filter((ri) => ri === 0).length;
    // Σ is flat here, so it is 1 already (up to rounding) — or only raw zeros can still take the rest.
    if (fixed >= 1 - 1e-12 || zeros === 0) return polish(at(prev), lo, hi);
    // Every positive share is at hi: the zeros share the remainder equally.
    const extra = (1 - fixed) / zeros;
    return polish(r.map((ri) => (ri === 0 ? Math.min(hi, lo + extra) : hi)), lo, hi);
  }
  throw new Error('clampShares: unreachable');
}

/** n·lo ≤ 1 ≤ n·hi, lo ≤ hi, both in [0, 1]; else ConfigError naming the knob to change. */
export function checkBounds(n: number, lo: number, hi: number): void {
  const problems: { key: string; message: string }[] = [];
  if (!(lo >= 0 && lo <= 1)) problems.push({ key: 'ALLOC_MIN_WEIGHT', message: `=${lo}: must be in [0, 1]` });
  if (!(hi >= 0 && hi <= 1)) problems.push({ key: 'ALLOC_MAX_WEIGHT', message: `=${hi}: must be in [0, 1]` });
  if (lo > hi) problems.push({ key: 'ALLOC_MIN_WEIGHT', message: `=${lo}: must be ≤ ALLOC_MAX_WEIGHT=${hi}` });
  // 1e-12 of slack: 3 × (1/3) is 1 within rounding, and must count as feasible.
  if (n * lo > 1 + 1e-12) problems.push({ key: 'ALLOC_MIN_WEIGHT', message: `=${lo}: ${n} instruments × ${lo} = ${n * lo} > 1, so the shares cannot sum to 1; lower it to ≤ ${floorTo(1 / n)}` });
  if (n * hi < 1 - 1e-12) problems.push({ key: 'ALLOC_MAX_WEIGHT', message: `=${hi}: ${n} instruments × ${hi} = ${n * hi} < 1, so the shares cannot sum to 1; raise it to ≥ ${ceilTo(1 / n)}` });
  if (problems.length > 0) throw new ConfigError(problems);
}

// ---- keyed sizing

/**
 * Shares of `input.instruments` by `mode`, clamped to `bounds`. A missing,
 * non-finite or negative vol falls back to the largest usable vol among the
 * instruments (the smallest inverse-vol share of them; 1 when none has one)
 * and is reported in `volMissing`. Manual: raw = manualWeights[i] ?? 0,
 * normalised; instruments missing from the manual map end at min_weight.
 */
export function sizeShares(mode: SizingMode, input: SizingInput, bounds: ShareBounds): SizingResult {
  const names = input.instruments;
  if (new Set(names).size !== names.length) throw new RangeError(`sizeShares: instruments must be distinct, got ${names.join(',')}`);
  let raw: number[];
  let volMissing: string[] = [];
  let iterations = 0;
  let converged = true;
  switch (mode) {
    case 'equal':
      raw = equalShares(names.length);
      break;
    case 'inverse_vol':
    case 'risk_parity': {
      const v = volsOf(names, input.vols ?? {});
      volMissing = v.missing;
      if (mode === 'inverse_vol') {
        raw = inverseVolShares(v.vols);
      } else {
        // Σ needs σ > 0; VOL_EPSILON keeps a zero vol finite, as inverse_vol does.
        const sig = v.vols.map((s) => Math.max(VOL_EPSILON, s));
        const rp = riskParityShares(covariance(sig, (i, j) => correlationOf(input.correlations, names[i]!, names[j]!)));
        raw = rp.shares;
        iterations = rp.iterations;
        converged = rp.converged;
      }
      break;
    }
    case 'manual': {
      const m = input.manualWeights ?? {};
      raw = names.map((name) => {
        const w = Object.hasOwn(m, name) ? m[name]! : 0;
        if (!Number.isFinite(w) || w < 0) throw new RangeError(`sizeShares: manual weight ${w} of ${name} must be finite and ≥ 0`);
        return w;
      });
      const total = raw.reduce((s, w) => s + w, 0);
      raw = total > 0 ? raw.map((w) => w / total) : equalShares(names.length);
      break;
    }
  }
  const clamped = clampShares(raw, bounds.minWeight, bounds.maxWeight);
  const shares: Record<string, number> = {};
  const atMin: string[] = [];
  const atMax: string[] = [];
  names.forEach((name, i) => {
    const w = clamped[i]!;
    shares[name] = w;
    // Pinned: the clamp moved it onto a bound (a raw share exactly on a bound is not "clamped").
    if (w === bounds.minWeight && raw[i]! !== w && bounds.minWeight !== bounds.maxWeight) atMin.push(name);
    else if (w === bounds.maxWeight && raw[i]! !== w && bounds.minWeight !== bounds.maxWeight) atMax.push(name);
  });
  return { shares, atMin, atMax, volMissing, iterations, converged };
}

/** Correlation of a pair from a map keyed either way (a→b first, then b→a), 0 when absent. */
export function correlationOf(c: Correlations | undefined, a: string, b: string): number {
  if (!c) return 0;
  const ab = Object.hasOwn(c, a) && Object.hasOwn(c[a]!, b) ? c[a]![b] : undefined;
  if (ab !== undefined) return ab;
  const ba = Object.hasOwn(c, b) && Object.hasOwn(c[b]!, a) ? c[b]![a] : undefined;
  return ba ?? 0;
}

// ---- helpers

function volsOf(names: readonly string[], vols: Readonly<Record<string, number>>): { vols: number[]; missing: string[] } {
  const usable = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v) && v >= 0;
  const got = names.map((n) => (Object.hasOwn(vols, n) ? vols[n] : undefined));
  const known = got.filter(usable);
  const fallback = known.length > 0 ? Math.max(...known) : 1;
  const missing = names.filter((_, i) => !usable(got[i]));
  return { vols: got.map((v) => (usable(v) ? v : fallback)), missing };
}

function normalise(x: readonly number[]): number[] {
  const s = x.reduce((a, b) => a + b, 0);
  return x.map((v) => v / s);
}

/**
 * Moves the rounding residue of Σ (a few ulps) onto the largest share strictly
 * inside the bounds, so Σ = 1 to the last bits and pinned shares stay exactly
 * on their bound.
 */
function polish(w: number[], lo: number, hi: number): number[] {
  const out = w.map((v) => Math.min(hi, Math.max(lo, v)));
  const residue = 1 - out.reduce((s, v) => s + v, 0);
  if (residue === 0) return out;
  let k = -1;
  for (let i = 0; i < out.length; i++) {
    const v = out[i]! + residue;
    if (out[i]! > lo && out[i]! < hi && v >= lo && v <= hi && (k < 0 || out[i]! > out[k]!)) k = i;
  }
  if (k >= 0) out[k] = out[k]! + residue;
  return out;
}

const floorTo = (x: number) => Math.floor(x * 1e6) / 1e6;
const ceilTo = (x: number) => Math.ceil(x * 1e6) / 1e6;
