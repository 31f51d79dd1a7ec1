/**
 * Calmar ratio with empyrical's definitions (empyrical/stats.py), so a number
 * here can be checked against the Python library:
 *
 * - cum_returns_final = Π(1 + r_i) − 1 (compounded);
 * - max_drawdown      = min over t of (V_t − max_{s≤t} V_s) / max_{s≤t} V_s on
 *                       the compounded curve V with its starting point V_0
 *                       included (so a first-bar loss is a drawdown); ≤ 0;
 * - annual_return     = (1 + cum)^(1/years) − 1 with years = n / periodsPerYear;
 * - calmar_ratio      = annual_return / |max_drawdown|.
 *
 * NaN returns count as 0, as empyrical's nan-aware functions do (we extend
 * that to ±Infinity so nothing here can produce NaN or Infinity).
 *
 * Where empyrical answers NaN we answer a number (docs/gates.md):
 * - zero drawdown: `calmarCap` when the annual return is > 0, else 0 (a flat or
 *   empty span earns nothing, and must not pass a positive floor);
 * - an annual return that overflows double precision: `calmarCap` (and the
 *   annual return itself is reported as the largest finite double);
 * - an ending value ≤ 0 (a short losing more than 100%): annual return −1.
 * The ratio is then clamped to [−calmarCap, calmarCap] so that a span with a
 * tiny drawdown cannot outrank one with none.
 */

export interface CalmarParams {
  /** Return periods per year, for annualisation; M1 FX default 362 880 = 252 × 1440. */
  periodsPerYear: number;
  /** Value reported for zero drawdown with a positive return, and bound of |calmar|; default 1000. */
  calmarCap: number;
}

export interface CalmarStats {
  /** Compounded return of the whole span, empyrical's cum_returns_final. */
  totalReturn: number;
  /** ≤ 0, empyrical's max_drawdown. */
  maxDrawdown: number;
  /** empyrical's annual_return (−1 when the curve ends at or below 0). */
  annualReturn: number;
  /** Never NaN nor Infinity; within [−calmarCap, calmarCap]. */
  calmar: number;
}

/** empyrical starts its drawdown curve at 100; kept so results match to the last bit. */
const START = 100;

/** Π(1 + r) − 1 over the returns, non-finite returns as 0. */
export function cumReturnsFinal(returns: readonly number[]): number {
  return finite(walk(returns).growth - 1);
}

/** Largest peak-to-trough loss of the compounded curve, starting point included; ≤ 0, and 0 for no returns. */
export function maxDrawdown(returns: readonly number[]): number {
  return walk(returns).worst;
}

/** (1 + cum)^(periodsPerYear / n) − 1; 0 for no returns, −1 when the curve ends at or below 0. */
export function annualReturn(returns: readonly number[], periodsPerYear: number): number {
  return annualise(walk(returns).growth, returns.length, periodsPerYear);
}

/** annual return / |max drawdown| with the documented cap instead of NaN. */
export function calmarRatio(returns: readonly number[], p: CalmarParams): number {
  return calmarStats(returns, p).calmar;
}

/** All four figures from one pass over the returns. */
export function calmarStats(returns: readonly number[], p: CalmarParams): CalmarStats {
  const { growth, worst } = walk(returns);
  const annual = annualise(growth, returns.length, p.periodsPerYear);
  return { totalReturn: finite(growth - 1), maxDrawdown: worst, annualReturn: annual, calmar: ratio(annual, worst, p.calmarCap) };
}

/** The compounded growth factor Π(1 + r) and the worst drawdown on the way, as empyrical builds them. */
function walk(returns: readonly number[]): { growth: number; worst: number } {
  let growth = 1;
  let peak = START;
  let worst = 0;
  for (const r of returns) {
    growth *= growthFactor(r);
    const value = growth * START;
    if (value > peak) peak = value;
    const dd = (value - peak) / peak;
    if (dd < worst) worst = dd; // NaN (an overflowed curve) compares false and is skipped
  }
  return { growth, worst };
}

/** One step of the compounded curve: 1 + r, a non-finite return counting as 0. */
export function growthFactor(r: number): number {
  return 1 + (Number.isFinite(r) ? r : 0);
}

/**
 * The compounded curve of `walk`, fed one growth factor (`growthFactor(r)`)
 * at a time, for callers that keep their factors between evaluations (the
 * evaluator's span series, evaluate.ts). The operations and their order are
 * walk's, so `stats` is bit-identical to calmarStats over the same returns.
 */
export class CompoundedCurve {
  private n = 0;
  private growth = 1;
  private peak = START;
  private worst = 0;

  /** Back to the empty curve, so one instance serves many evaluations. */
  reset(): this {
    this.n = 0;
    this.growth = 1;
    this.peak = START;
    this.worst = 0;
    return this;
  }

  step(factor: number): void {
    this.growth *= factor;
    const value = this.growth * START;
    if (value > this.peak) this.peak = value;
    const dd = (value - this.peak) / this.peak;
    if (dd < this.worst) this.worst = dd;
    this.n += 1;
  }

  /**
   * `count` steps with a factor of exactly 1 (a flat bar): they change
   * nothing but the number of periods. growth·1 is growth, so the value is
   * the one the previous step had (or START, which is the starting peak); the
   * peak already covers it, and its drawdown equals the previous step's (0
   * at the start), which `worst` already covers. So flat steps may be
   * counted in any place, without walking them.
   */
  flat(count: number): void {
    this.n += count;
  }

  /** Steps through factors[from] … factors[to − 1]. */
  steps(factors: Float64Array, from: number, to: number): void {
    let growth = this.growth;
    let peak = this.peak;
    let worst = this.worst;
    for (let i = from; i < to; i++) {
      growth *= factors[i]!;
      const value = growth * START;
      if (value > peak) peak = value;
      const dd = (value - peak) / peak;
      if (dd < worst) worst = dd;
    }
    this.growth = growth;
    this.peak = peak;
    this.worst = worst;
    this.n += Math.max(0, to - from);
  }

  stats(p: CalmarParams): CalmarStats {
    const annual = annualise(this.growth, this.n, p.periodsPerYear);
    return { totalReturn: finite(this.growth - 1), maxDrawdown: this.worst, annualReturn: annual, calmar: ratio(annual, this.worst, p.calmarCap) };
  }
}

function annualise(growth: number, n: number, periodsPerYear: number): number {
  if (n === 0) return 0;
  if (growth <= 0) return -1;
  // empyrical: ending_value ** (1 / num_years) with num_years = n / factor; same operations, same rounding.
  return finite(growth ** (1 / (n / periodsPerYear)) - 1);
}

function ratio(annual: number, drawdown: number, cap: number): number {
  if (drawdown >= 0) return annual > 0 ? cap : 0;
  const value = annual / Math.abs(drawdown);
  return Number.isNaN(value) ? 0 : Math.min(cap, Math.max(-cap, value));
}

/** An overflow is reported as the largest finite double, so JSON and Avro never see Infinity. */
function finite(x: number): number {
  if (Number.isNaN(x)) return 0;
  return Math.min(Number.MAX_VALUE, Math.max(-Number.MAX_VALUE, x));
}
