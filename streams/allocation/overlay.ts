/**
 * The allocation overlay as of one time (DESIGN §6.3; overlays tickets 17,
 * 18; docs/overlays.md): from the bars before `asOf`, the HRP cluster budget
 * and scales (hrp.ts) and each instrument's CVaR and weight cap (cvar.ts),
 * as the alloc.overlay.v1 record allocator-lite applies to its targets:
 *
 *   target' = min(target · scale(cluster), max_weight)
 *
 * `scale` shrinks a cluster whose open risk is over its HRP budget; the CVaR
 * guard caps the weight so that weight · |CVaR| ≤ RISK_BUDGET_PER_TRADE (and
 * at CVAR_MAX_LEVERAGE). An instrument without enough returns for a CVaR
 * (symbol or cluster) gets no cap and says so (`cvar_scope` none).
 *
 * Pure: the caller reads the bars (TimescaleDB's candles_1h for `sep
 * overlays`) and publishes the record (Redis and the topic).
 */
import { hrpOverlay, clusterOf, type HrpBudget } from './hrp.ts';
import { cvarWeightCap, cvarWithFallback, type CvarScope } from './cvar.ts';
import type { OverlayConfig } from './overlay-config.ts';
import { InputError } from '../runtime/errors.ts';

export interface OverlayInstrument {
  instrument: string;
  cluster: string;
  hrp_weight: number | null;
  scale: number;
  cvar: number | null;
  cvar_scope: CvarScope;
  max_weight: number | null;
  dropped: string | null;
}

/** The alloc.overlay.v1 record (schemas/avro/allocation-overlay.avsc). */
export interface AllocationOverlay {
  ts: number;
  from: number;
  timeframe: string;
  instruments: OverlayInstrument[];
  budget: HrpBudget;
  config_hash: string;
}

export interface OverlayInput {
  asOf: number;
  /** First bar's time. */
  from: number;
  /** Column names of `closes`. */
  instruments: readonly string[];
  /** Rows = bars oldest first, columns = instruments; NaN = no bar. */
  closes: readonly (readonly number[])[];
  /** Open risk per instrument, fraction of equity (the weights in force). */
  openRisk?: Readonly<Record<string, number>>;
  configHash: string;
}

/** Log returns of consecutive bars per column (NaN where either bar is missing). */
export function logReturnsOf(closes: readonly (readonly number[])[]): number[][] {
  const out: number[][] = [];
  for (let t = 1; t < closes.length; t++) {
    out.push(closes[t]!.map((c, j) => {
      const prev = closes[t - 1]![j]!;
      return c > 0 && prev > 0 ? Math.log(c / prev) : NaN;
    }));
  }
  return out;
}

export function computeOverlay(input: OverlayInput, config: OverlayConfig): AllocationOverlay {
  const returns = logReturnsOf(input.closes);
  const hrp = hrpOverlay({ instruments: input.instruments, returns, openRisk: input.openRisk }, config.hrp);
  const column = (j: number) => returns.map((r) => r[j]!).filter(Number.isFinite);
  const byCluster = new Map<string, number[]>();
  input.instruments.forEach((instrument, j) => {
    const c = clusterOf(config.hrp.clusterMap, instrument);
    byCluster.set(c, [...(byCluster.get(c) ?? []), ...column(j)]);
  });
  const dropped = new Map(hrp.dropped.map((d) => [d.instrument, d.reason]));
  const instruments = input.instruments.map((instrument, j): OverlayInstrument => {
    const cluster = clusterOf(config.hrp.clusterMap, instrument);
    const estimate = cvarWithFallback(column(j), byCluster.get(cluster) ?? [], config.cvar);
    return {
      instrument,
      cluster,
      hrp_weight: hrp.weights[instrument] ?? null,
      scale: hrp.budget[cluster]?.scale ?? 1,
      cvar: estimate.cvar ?? null,
      cvar_scope: estimate.scope,
      max_weight: estimate.cvar === undefined ? null : cvarWeightCap(estimate.cvar, config.cvar),
      dropped: dropped.get(instrument) ?? null,
    };
  }).sort((a, b) => (a.instrument < b.instrument ? -1 : a.instrument > b.instrument ? 1 : 0));
  return { ts: input.asOf, from: input.from, timeframe: config.hrp.timeframe, instruments, budget: hrp.budget, config_hash: input.configHash };
}

/** What allocate() takes from an overlay: per instrument, the cluster scale and the CVaR cap. */
export function overlayCaps(overlay: AllocationOverlay | null | undefined): Record<string, { scale: number; maxWeight: number | null }> {
  const out: Record<string, { scale: number; maxWeight: number | null }> = {};
  for (const i of overlay?.instruments ?? []) out[i.instrument] = { scale: i.scale, maxWeight: i.max_weight };
  return out;
}

/**
 * Checks an alloc.overlay.v1 record before the allocator uses it (the topic
 * takes records from `sep overlays` or any other producer): a bad one is
 * rejected with the field named — the runtime dead-letters it and the
 * allocator keeps the overlay it had.
 */
export function validateOverlay(v: unknown): AllocationOverlay {
  const o = v as AllocationOverlay;
  const bad = (field: string, message: string) => new InputError('invalid_value', field, `${message} (alloc.overlay.v1; sep overlays writes valid records)`);
  if (!Number.isSafeInteger(o?.ts)) throw bad('ts', `must be epoch ms, got ${o?.ts}`);
  if (!Array.isArray(o.instruments)) throw bad('instruments', 'must be an array');
  o.instruments.forEach((i, k) => {
    const at = `instruments[${k}]`;
    if (typeof i.instrument !== 'string' || i.instrument === '') throw bad(`${at}.instrument`, 'must be a non-empty string');
    if (!(Number.isFinite(i.scale) && i.scale >= 0 && i.scale <= 1)) throw bad(`${at}.scale`, `must be in [0, 1], got ${i.scale}`);
    if (i.max_weight !== null && !(Number.isFinite(i.max_weight) && i.max_weight >= 0)) throw bad(`${at}.max_weight`, `must be null or a finite number ≥ 0, got ${i.max_weight}`);
    if (i.cvar !== null && !Number.isFinite(i.cvar)) throw bad(`${at}.cvar`, `must be null or finite, got ${i.cvar}`);
  });
  return o;
}
