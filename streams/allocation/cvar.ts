/**
 * CVaR guard (seed ticket 18; DESIGN §6.3): the expected tail loss of a
 * symbol's samples (trade outcomes in R units, or returns), estimated either
 * empirically as empyrical does or with an EVT tail (peaks over threshold,
 * generalized Pareto), with a cluster-level fallback for sparse symbols, and
 * the sizing caps that keep the expected tail loss within the budget.
 * Pure functions: no clock, no I/O. Details and sources: docs/overlays.md.
 *
 * Sign convention: samples are gains (a loss is negative), so CVaR is ≤ 0
 * for a losing tail, like empyrical's conditional_value_at_risk and the seed's
 * `cvar_r: -1.35`. The EVT functions work on losses (L = −x ≥ 0 in the tail).
 */
import { InputError } from '../runtime/errors.ts';

export type CvarMode = 'empirical' | 'evt';

export interface CvarParams {
  /** CVAR_ALPHA (seed ALPHA), confidence level; default 0.95. The empirical cutoff is 1 − alpha. */
  alpha: number;
  /** CVAR_MODE (seed "CV estimation mode"): empirical | evt; default empirical. */
  mode: CvarMode;
  /** CVAR_MIN_SAMPLES, finite samples a symbol needs for its own estimate, else its cluster's pool; default 30. */
  minSamples: number;
  /** CVAR_EVT_THRESHOLD_Q, quantile of the losses used as the POT threshold u; default 0.90. */
  evtThresholdQ: number;
  /** CVAR_EVT_MIN_EXCEEDANCES, losses above u needed for a GPD fit, else the empirical estimate; default 20. */
  evtMinExceedances: number;
  /** RISK_BUDGET_PER_TRADE, fraction of equity the expected tail loss may take; default 0.005. */
  riskBudgetPerTrade: number;
  /** CVAR_MAX_LEVERAGE, the cap when the tail is mild (notional / equity); default 10. */
  maxLeverage: number;
}

// ── Empirical CVaR (empyrical) ───────────────────────────────────────────────

/**
 * empyrical.conditional_value_at_risk: with n samples,
 * k = int((n − 1) · cutoff), the mean of the k + 1 smallest. So n = 100 and
 * cutoff 0.05 → the mean of the 5 smallest; n = 20 → the minimum.
 * Non-finite samples are dropped first (empyrical would count a NaN in n);
 * NaN for no samples, as empyrical. The sum runs over the sorted tail, so the
 * last bit may differ from numpy's (np.partition leaves an unspecified order).
 */
export function empiricalCvar(samples: readonly number[], cutoff = 0.05): number {
  const xs = finiteSorted(samples);
  if (xs.length === 0) return NaN;
  const k = Math.trunc((xs.length - 1) * cutoff);
  let s = 0;
  for (let i = 0; i <= k; i++) s += xs[i]!;
  return s / (k + 1);
}

/**
 * The empirical cutoff for a confidence level: 1 − alpha, rounded to 12
 * decimals so that alpha 0.9 gives exactly 0.1 (1 − 0.9 is 0.0999…98 in
 * binary, which would move k = int((n − 1)·cutoff) down by one at n = 11).
 */
export function cutoffOf(alpha: number): number {
  return Math.round((1 - alpha) * 1e12) / 1e12;
}

// ── EVT: peaks over threshold with a generalized Pareto tail ─────────────────

/** ξ with |ξ| below this is the exponential tail (the ξ → 0 limit of the formulas). */
export const XI_ZERO = 1e-9;

/**
 * VaR_q = u + (β/ξ)(((n/N_u)(1 − q))^(−ξ) − 1); for ξ = 0, u − β ln((n/N_u)(1 − q))
 * (McNeil & Frey 2000, eq. 2.4; McNeil, Frey & Embrechts, QRM §5.2.3). Losses
 * positive. DESIGN §10: u .02, β .01, ξ .2, n 1000, N_u 50, q .99 → 0.0389865.
 */
export function evtVar(u: number, beta: number, xi: number, n: number, nU: number, q: number): number {
  const tail = (n / nU) * (1 - q);
  return Math.abs(xi) < XI_ZERO ? u - beta * Math.log(tail) : u + (beta / xi) * (tail ** -xi - 1);
}

/**
 * ES_q = (VaR_q + β − ξu) / (1 − ξ), for ξ < 1 (the mean excess of a GPD is
 * linear in the level); ξ = 0 gives VaR_q + β. DESIGN §10: → 0.0562331
 * (ξ = 0: 0.0460944). Infinity for ξ ≥ 1 (the tail has no mean).
 */
export function evtEs(varQ: number, u: number, beta: number, xi: number): number {
  if (xi >= 1) return Infinity;
  return (varQ + beta - xi * u) / (1 - xi);
}

export interface GpdFit {
  /** Scale β > 0, in the exceedances' units. */
  beta: number;
  /** Shape ξ (tail index); searched in [GPD_XI_RANGE]. */
  xi: number;
  /** Log-likelihood at (β, ξ). */
  logLik: number;
  /** True when ξ sits on an end of the search range (the likelihood still rose there). */
  atBound: boolean;
}

/**
 * The ξ searched: ≥ −0.5 because below it the maximum-likelihood estimator is
 * not regular and, below −1, the likelihood is unbounded (Smith 1985); ≤ 2
 * because loss tails of traded instruments sit well inside it (and ξ ≥ 1
 * already means no expected shortfall).
 */
export const GPD_XI_RANGE = [-0.5, 2] as const;

/** GPD log-likelihood of exceedances y > 0 (ξ = 0: the exponential); −Infinity outside the support. */
export function gpdLogLik(y: readonly number[], beta: number, xi: number): number {
  if (!(beta > 0)) return -Infinity;
  let s = 0;
  if (Math.abs(xi) < XI_ZERO) {
    for (const v of y) s += v;
    return -y.length * Math.log(beta) - s / beta;
  }
  for (const v of y) {
    const a = 1 + (xi * v) / beta;
    if (!(a > 0)) return -Infinity;
    s += Math.log(a);
  }
  return -y.length * Math.log(beta) - (1 + 1 / xi) * s;
}

/**
 * Maximum-likelihood GPD fit of exceedances y > 0 by a 1-D profile search
 * (Grimshaw 1993): with θ = ξ/β, the likelihood is maximised over ξ in
 * closed form, ξ(θ) = mean ln(1 + θy), leaving
 *   ℓ(θ)/N = −ln(ξ(θ)/θ) − 1 − ξ(θ)          (ℓ(0)/N = −ln ȳ − 1, exponential).
 * ξ(θ) rises with θ, so the ξ range maps to a θ interval. ℓ is searched on a
 * 512-point grid over that interval (in s = ln(1 + θ·max y), which spreads it
 * evenly across the pole at θ = −1/max y and large θ), then refined by golden
 * section around the best grid point: no starting value, no gradient, and a
 * flat or multi-modal likelihood cannot throw it outside the range. Data are
 * scaled by ȳ first (the fit is scale-equivariant).
 */
export function fitGpd(exceedances: readonly number[]): GpdFit {
  const y = exceedances;
  if (y.length < 2 || y.some((v) => !(v > 0) || !Number.isFinite(v))) {
    throw new InputError('invalid_value', 'exceedances', `a GPD fit needs at least 2 finite exceedances > 0, got ${y.length}`);
  }
  const mean = y.reduce((a, b) => a + b, 0) / y.length;
  const z = y.map((v) => v / mean);
  const zmax = Math.max(...z);
  const thetaOf = (s: number) => Math.expm1(s) / zmax;
  const xiOf = (theta: number) => {
    let a = 0;
    for (const v of z) a += Math.log1p(theta * v);
    return a / z.length;
  };
  // Profile log-likelihood per observation; exact exponential near θ = 0 (no 0/0).
  const profile = (s: number) => {
    const theta = thetaOf(s);
    if (Math.abs(s) < XI_ZERO) return -1;
    const xi = xiOf(theta);
    return -Math.log(xi / theta) - 1 - xi;
  };
  const sAt = (target: number) => bisect((s) => xiOf(thetaOf(s)) - target, -60, 60);
  const lo = sAt(GPD_XI_RANGE[0]);
  const hi = sAt(GPD_XI_RANGE[1]);
  const GRID = 512;
  let best = 0;
  let bestValue = -Infinity;
  for (let k = 0; k <= GRID; k++) {
    const v = profile(lo + ((hi - lo) * k) / GRID);
    if (v > bestValue) [best, bestValue] = [k, v];
  }
  const s = goldenMax(profile, lo + ((hi - lo) * Math.max(0, best - 1)) / GRID, lo + ((hi - lo) * Math.min(GRID, best + 1)) / GRID);
  const theta = thetaOf(s);
  const xi = Math.abs(s) < XI_ZERO ? 0 : xiOf(theta);
  const beta = (Math.abs(s) < XI_ZERO ? 1 : xi / theta) * mean;
  const atBound = Math.abs(xi - GPD_XI_RANGE[0]) < 1e-6 || Math.abs(xi - GPD_XI_RANGE[1]) < 1e-6;
  return { beta, xi, logLik: gpdLogLik(y, beta, xi), atBound };
}

export interface EvtTail {
  /** Threshold u: the loss at the CVAR_EVT_THRESHOLD_Q quantile (an order statistic). */
  u: number;
  beta: number;
  xi: number;
  /** Samples (n) and losses strictly above u (N_u). */
  n: number;
  nU: number;
  /** VaR_q and ES_q as losses (positive = a loss). */
  var: number;
  es: number;
}

/**
 * Peaks over threshold on the losses L = −x of `samples` at level q: u is the
 * (n − N)-th smallest loss with N = ⌊n(1 − thresholdQ)⌋ (so the N largest lie
 * above it, ties at u excepted), the exceedances L − u > 0 are fitted by
 * fitGpd, and VaR/ES come from evtVar/evtEs with n and N_u. Undefined when
 * fewer than `minExceedances` losses exceed u.
 */
export function evtTail(samples: readonly number[], q: number, thresholdQ: number, minExceedances: number): EvtTail | undefined {
  const losses = finiteSorted(samples).map((x) => -x).reverse(); // ascending losses
  const n = losses.length;
  // cutoffOf: 1 − 0.9 is 0.0999…98 in binary, and ⌊1000 · that⌋ would be 99.
  const above = Math.floor(n * cutoffOf(thresholdQ));
  if (above < Math.max(2, minExceedances) || above >= n) return undefined;
  const u = losses[n - above - 1]!;
  const y = losses.slice(n - above).map((l) => l - u).filter((v) => v > 0);
  if (y.length < Math.max(2, minExceedances)) return undefined;
  const fit = fitGpd(y);
  const v = evtVar(u, fit.beta, fit.xi, n, y.length, q);
  return { u, beta: fit.beta, xi: fit.xi, n, nU: y.length, var: v, es: evtEs(v, u, fit.beta, fit.xi) };
}

// ── The estimate, with the cluster fallback ──────────────────────────────────

export type CvarScope = 'symbol' | 'cluster' | 'none';

export interface CvarEstimate {
  /** ≤ 0 for a losing tail (gains convention); undefined when scope is "none". */
  cvar: number | undefined;
  /** The estimator that produced `cvar`: "evt" falls back to "empirical" when its tail is unusable (see evtFallback). */
  mode: CvarMode;
  /** Whose samples: the symbol's own, its cluster's pool, or none (too few anywhere). */
  scope: CvarScope;
  /** Finite samples used. */
  n: number;
  /** Why EVT was asked for but not used: "few_exceedances" or "infinite_mean" (fitted ξ ≥ 1). */
  evtFallback?: 'few_exceedances' | 'infinite_mean';
  /** The EVT tail when it was used. */
  tail?: EvtTail;
}

/** CVaR of one sample by CVAR_MODE; EVT falls back to empirical when its tail is unusable (recorded in `evtFallback`). */
export function estimateCvar(samples: readonly number[], params: Pick<CvarParams, 'alpha' | 'mode' | 'evtThresholdQ' | 'evtMinExceedances'>): Omit<CvarEstimate, 'scope'> {
  const n = countFinite(samples);
  const empirical = () => empiricalCvar(samples, cutoffOf(params.alpha));
  if (params.mode === 'empirical') return { cvar: empirical(), mode: 'empirical', n };
  const tail = evtTail(samples, params.alpha, params.evtThresholdQ, params.evtMinExceedances);
  if (!tail) return { cvar: empirical(), mode: 'empirical', n, evtFallback: 'few_exceedances' };
  // ξ ≥ 1: the fitted tail has no mean; the sample's own tail mean is what is left.
  if (!Number.isFinite(tail.es)) return { cvar: empirical(), mode: 'empirical', n, evtFallback: 'infinite_mean' };
  return { cvar: -tail.es, mode: 'evt', n, tail };
}

/**
 * Seed ticket 18, step 1 and acceptance: a symbol with at least
 * CVAR_MIN_SAMPLES finite samples is estimated on its own; a sparser one on
 * its cluster's pooled samples (which should include its own), and then the
 * more severe of that and its own empirical CVaR (when it has any), so the
 * fallback never reports a milder tail than the symbol has shown. Neither
 * with enough samples → scope "none", cvar undefined: the caller should block
 * increases (as for a stale blob) rather than size without a tail estimate.
 */
export function cvarWithFallback(
  symbolSamples: readonly number[],
  clusterSamples: readonly number[],
  params: Pick<CvarParams, 'alpha' | 'mode' | 'evtThresholdQ' | 'evtMinExceedances' | 'minSamples'>,
): CvarEstimate {
  const own = countFinite(symbolSamples);
  if (own >= params.minSamples) return { ...estimateCvar(symbolSamples, params), scope: 'symbol' };
  if (countFinite(clusterSamples) < params.minSamples) return { cvar: undefined, mode: params.mode, scope: 'none', n: own };
  const pooled = estimateCvar(clusterSamples, params);
  const ownCvar = own > 0 ? empiricalCvar(symbolSamples, cutoffOf(params.alpha)) : Infinity;
  return { ...pooled, cvar: Math.min(pooled.cvar!, ownCvar), scope: 'cluster' };
}

// ── Caps ─────────────────────────────────────────────────────────────────────

/** Tail loss per unit of risk, ≥ 1: a stop loses at least 1 R, so the guard only ever tightens plain stop-based sizing. */
export function tailMultiple(cvarR: number): number {
  return Math.max(1, -cvarR);
}

export interface SizingRequest {
  /** Account equity, in the quote currency of `price`. */
  equity: number;
  /** Entry price. */
  price: number;
  /** Stop distance in ATRs (seed sl_kATR) and the ATR in price units: 1 R = slKAtr · atr per unit. */
  slKAtr: number;
  atr: number;
  /** The symbol's CVaR in R units (≤ 0), e.g. −1.35. */
  cvarR: number;
}

/**
 * Seed ticket 18 step 4 (`POST /sizing` → {max_size, max_lev}): the largest
 * size whose expected tail loss |cvar_r| · slKAtr · atr · size stays within
 * RISK_BUDGET_PER_TRADE · equity, then capped at CVAR_MAX_LEVERAGE:
 *   max_size = min(budget · equity / (max(1, |cvar_r|) · slKAtr · atr), maxLev · equity / price)
 *   max_lev  = max_size · price / equity.
 * A more negative CVaR (a volatile regime) gives a smaller max_lev.
 */
export function maxSize(req: SizingRequest, params: Pick<CvarParams, 'riskBudgetPerTrade' | 'maxLeverage'>): { max_size: number; max_lev: number } {
  for (const key of ['equity', 'price', 'slKAtr', 'atr'] as const) {
    if (!(req[key] > 0) || !Number.isFinite(req[key])) throw new InputError('invalid_value', key, `must be a finite number > 0, got ${req[key]}`);
  }
  if (!Number.isFinite(req.cvarR)) throw new InputError('invalid_value', 'cvarR', `must be a finite number, got ${req.cvarR}`);
  const byTail = (params.riskBudgetPerTrade * req.equity) / (tailMultiple(req.cvarR) * req.slKAtr * req.atr);
  const max_size = Math.min(byTail, (params.maxLeverage * req.equity) / req.price);
  return { max_size, max_lev: (max_size * req.price) / req.equity };
}

/**
 * For returns instead of R units (the allocator's weights, notional / equity):
 * the largest weight w with w · |CVaR| ≤ RISK_BUDGET_PER_TRADE, capped at
 * CVAR_MAX_LEVERAGE; a CVaR ≥ 0 (no losing tail) leaves only that cap. The
 * horizon is the samples' period (hourly returns → a one-hour tail).
 */
export function cvarWeightCap(cvar: number, params: Pick<CvarParams, 'riskBudgetPerTrade' | 'maxLeverage'>): number {
  if (Number.isNaN(cvar)) throw new InputError('invalid_value', 'cvar', 'is NaN');
  return cvar >= 0 ? params.maxLeverage : Math.min(params.maxLeverage, params.riskBudgetPerTrade / -cvar);
}

/** The multiplier the guard applies to a proposed size (or weight): min(1, cap / |proposed|); 1 for a zero proposal. */
export function capMultiplier(proposed: number, cap: number): number {
  const p = Math.abs(proposed);
  return p === 0 ? 1 : Math.min(1, Math.max(0, cap) / p);
}

// ── Published value ──────────────────────────────────────────────────────────

/**
 * The Redis value of `cvar:<SYM>:<TF>` (and its notification), JSON: the seed's
 * {alpha, cvar_r, last_update} plus how it was made. Consumers that know only
 * the seed's three fields keep working.
 */
export interface CvarValue {
  alpha: number;
  /** CVaR in the samples' units (R multiples for trade outcomes, the seed's case), ≤ 0 for a losing tail. */
  cvar_r: number;
  /** ISO-8601 UTC of the computation's stream time, e.g. "2025-08-13T00:00:00Z". */
  last_update: string;
  mode: CvarMode;
  scope: Exclude<CvarScope, 'none'>;
  /** Finite samples used. */
  n: number;
}

/** The Redis key `cvar:<SYM>:<TF>`. */
export function cvarKey(symbol: string, timeframe: string): string {
  return `cvar:${symbol}:${timeframe}`;
}

/** The published value of an estimate; undefined for scope "none" (nothing to publish). */
export function cvarValue(estimate: CvarEstimate, alpha: number, tsMs: number): CvarValue | undefined {
  if (estimate.scope === 'none' || estimate.cvar === undefined) return undefined;
  return {
    alpha,
    cvar_r: estimate.cvar,
    last_update: new Date(tsMs).toISOString().replace(/\.000Z$/, 'Z'),
    mode: estimate.mode,
    scope: estimate.scope,
    n: estimate.n,
  };
}

// ── helpers ──────────────────────────────────────────────────────────────────

function finiteSorted(xs: readonly number[]): number[] {
  return xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
}

function countFinite(xs: readonly number[]): number {
  let n = 0;
  for (const x of xs) if (Number.isFinite(x)) n++;
  return n;
}

/** A root of an increasing f on [lo, hi] by bisection (f(lo) < 0 < f(hi) assumed; clamps otherwise). */
function bisect(f: (x: number) => number, lo: number, hi: number): number {
  for (let k = 0; k < 200 && hi - lo > 1e-12; k++) {
    const mid = (lo + hi) / 2;
    if (f(mid) < 0) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Maximum of a unimodal f on [a, b] by golden-section search, to 1e-12. */
function goldenMax(f: (x: number) => number, a: number, b: number): number {
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  let fc = f(c);
  let fd = f(d);
  while (b - a > 1e-12) {
    if (fc >= fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - g * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + g * (b - a);
      fd = f(d);
    }
  }
  return (a + b) / 2;
}
