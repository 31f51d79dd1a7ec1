/**
 * Allocator-lite, one decision at stream time `now` (DESIGN §6.3; seeds:
 * operations-reference, operations-runbook, allocator-telemetry-log). Pure
 * and deterministic: the state comes in and goes out as plain JSON (a
 * changelog-backed store holds it), time is an argument, nothing reads the
 * clock, Kafka or Redis. docs/allocation.md has the full rules.
 *
 * 1. Stale hold: no blob, or a blob older than GATES_BLOB_MAX_AGE_SEC → the
 *    previous weights stay, `stale` (operations-reference: "retains prior
 *    weights and logs a warning"; runbook: "do not force entries").
 * 2. Candidates: gates[i] true, no cooldown running at the blob's ts, finite
 *    calmar and hazard. score = calmar − ALLOC_SCORE_WEIGHT_HAZARD·hazard.
 * 3. Top-K by score, ties by instrument name (code-unit order).
 * 4. Shares by ALLOC_SIZING_MODE (sizing.ts), × RISK_ALLOC_TARGET_PCT, each
 *    capped at min(total/K, PM_MAX_PER_POS_PCT); what a cap removes stays
 *    unallocated (total ≤ target, operations-reference "Exposure cap").
 * 5. The overlay multiplier (HRP/CVaR, wired by the caller), then the cost
 *    chain (cost-chain.ts): the target weight.
 * 6. From the weights in force to the targets: decreases at once; increases
 *    at most PM_RAMP_STEP_PCT per ALLOC_INTERVAL_SEC, and none while the kill
 *    switch is on or margin is paused (utilisation ≥ MARGIN_HYST_HIGH, until
 *    < MARGIN_HYST_LOW).
 */
import type { GatesBlob } from '../gates/blob.ts';
import type { CostCalibration } from '../calibration/calibration.ts';
import { costParamsFor, type AllocatorConfig } from './config.ts';
import { sizeShares, type Correlations } from './sizing.ts';
import { applyCostChain, type CostBreakdown } from './cost-chain.ts';

/**
 * Why a weight is what it is, in pipeline order; a weight's `reasons` follow
 * this order. docs/allocation.md "Reasons".
 */
export const ALLOCATION_REASONS = [
  'stale_hold',       // blob missing or older than GATES_BLOB_MAX_AGE_SEC: previous weight kept
  'top_k',            // selected this decision
  'not_top_k',        // eligible but ranked below ALLOC_TOP_K: target 0
  'ineligible',       // not eligible in the blob (or not in it, or no calmar/hazard): target 0
  'cooldown',         // a cooldown runs at the blob's ts: target 0
  'bounds_relaxed',   // fewer than K selected and n·ALLOC_MAX_WEIGHT < 1: shares bounded by 1/n instead
  'min_weight',       // share raised to ALLOC_MIN_WEIGHT
  'max_weight',       // share lowered to ALLOC_MAX_WEIGHT
  'vol_missing',      // no usable vol: sized with the fallback vol
  'rp_not_converged', // risk parity stopped at RP_MAX_SWEEPS
  'capped',           // weight lowered to min(total/K, PM_MAX_PER_POS_PCT)
  'overlay',          // overlay multiplier < 1
  'cost',             // L6 cost/slippage attenuation < 1
  'fill_rate',        // L6.3 fill-rate attenuation < 1
  'liquidity',        // L6.4 liquidity attenuation < 1
  'turnover',         // L7 turnover factor < 1
  'final_clamp',      // the chain's final clamp changed the weight
  'min_guard',        // min_guard raised the weight
  'ramp',             // increase limited by PM_RAMP_STEP_PCT
  'kill_switch',      // increase blocked by the kill switch
  'margin_pause',     // increase blocked by margin hysteresis
] as const;
export type AllocationReason = (typeof ALLOCATION_REASONS)[number];

/** The allocator's memory between decisions; plain JSON. */
export interface AllocatorState {
  /** seq of the last decision; 0 before the first. */
  seq: number;
  /** Stream time of the last decision, epoch ms; null before the first. */
  lastTs: number | null;
  /** Weights in force, instrument → fraction of margin, > 0 only, keys sorted. */
  weights: Record<string, number>;
  /** Margin hysteresis latch: true while increases are paused. */
  marginPaused: boolean;
}

export function initialAllocatorState(): AllocatorState {
  return { seq: 0, lastTs: null, weights: {}, marginPaused: false };
}

/** The blob fields the allocator reads (gates/blob.ts). */
export type AllocatorBlob = Pick<GatesBlob, 'ts' | 'gates' | 'cooldowns' | 'calmar' | 'hazard'>;

export interface AllocatorInput {
  /** Stream time of the decision, epoch ms. */
  now: number;
  /** The latest gates blob, or null before the first. */
  blob: AllocatorBlob | null;
  /** Volatility per instrument (inverse_vol, risk_parity), e.g. the features' EWMA σ. */
  vols?: Readonly<Record<string, number>>;
  /** Pairwise correlations (risk_parity); a missing pair is 0. */
  correlations?: Correlations;
  /** Latest calib.cost.v1 per instrument; an absent one uses the static knobs. */
  calibrations?: Readonly<Record<string, Pick<CostCalibration, 'spread_bps_ewma' | 'volume_usd_ewma' | 'fill_rate_ewma' | 'turnover_usd_ewma' | 'k_eff' | 'cap_eff_bps'>>>;
  /** Book depth per instrument, USD (L6.4); absent = unknown (no attenuation). */
  depthUsd?: Readonly<Record<string, number>>;
  /** Redis ops:kill_switch; OR-ed with KILL_SWITCH. */
  killSwitch?: boolean;
  /** marginUsed / (marginUsed + marginAvailable), ≥ 0; null/absent keeps the latch as it is. */
  marginUtilisation?: number | null;
  /**
   * The overlay hook: a multiplier in [0, 1] per instrument on its capped
   * target weight, before the cost chain (HRP cluster scale × CVaR cap, say).
   * Absent = 1.
   */
  overlay?: Readonly<Record<string, number>>;
  /**
   * The latest alloc.overlay.v1 per instrument (overlay.ts): the HRP cluster
   * scale multiplies the capped target, the CVaR guard caps it at maxWeight
   * (null: no cap). Applied with `overlay`, before the cost chain.
   */
  overlayCaps?: Readonly<Record<string, { scale: number; maxWeight: number | null }>>;
}

/** One weight of alloc.weights.v1. */
export interface InstrumentWeight {
  instrument: string;
  weight: number;
  reasons: AllocationReason[];
}

/** The alloc.weights.v1 record (schemas/avro/allocation.avsc), field for field. */
export interface AllocationDecision {
  portfolio: string;
  seq: number;
  ts: number;
  interval_sec: number;
  weights: InstrumentWeight[];
  total: number;
  stale: boolean;
  stale_age_sec: number | null;
  kill_switch: boolean;
  gates_ts: number | null;
  config_hash: string;
}

/** What the decision rests on, for metrics and logs (not published on the topic). */
export interface AllocationDetails {
  stale: boolean;
  /** Age of the blob at `now`, seconds (≥ 0); null without a blob. */
  blobAgeSec: number | null;
  killSwitch: boolean;
  marginPaused: boolean;
  /** Share of PM_RAMP_STEP_PCT allowed at this decision: elapsed / ALLOC_INTERVAL_SEC, at most 1. */
  rampFraction: number;
  /** Candidates, sorted by name. */
  eligible: string[];
  /** Instruments whose cooldown runs at the blob's ts (sep_allocator_cooldown), sorted. */
  cooldown: string[];
  /** The Top-K, best first (sep_allocator_selected). */
  selected: string[];
  /** Score per candidate. */
  scores: Record<string, number>;
  /** Share of the selection per selected instrument (Σ = 1). */
  shares: Record<string, number>;
  /** Weight per selected instrument after the cap, before the overlay: what a multiplier applies to. */
  preOverlay: Record<string, number>;
  /** Target weight per selected instrument, after caps, overlay and the cost chain. */
  targets: Record<string, number>;
  /** The cost chain per selected instrument (allocator_* gauges). */
  cost: Record<string, CostBreakdown>;
  sizing: { mode: AllocatorConfig['sizing']['mode']; iterations: number; converged: boolean; boundsRelaxed: boolean };
}

export interface AllocationStep {
  state: AllocatorState;
  decision: AllocationDecision;
  details: AllocationDetails;
}

/** One decision. Never mutates `state` or `input`. */
export function allocate(state: AllocatorState, input: AllocatorInput, cfg: AllocatorConfig): AllocationStep {
  const { now, blob } = input;
  if (!Number.isFinite(now)) throw new RangeError(`allocate: now ${now} must be finite epoch ms`);
  const killSwitch = cfg.killSwitch || input.killSwitch === true;
  const marginPaused = nextMarginLatch(state.marginPaused, input.marginUtilisation, cfg);
  // A blob stamped after `now` (its topic ran ahead) is fresh, not negative-aged.
  const blobAgeSec = blob ? Math.max(0, now - blob.ts) / 1000 : null;
  const stale = blobAgeSec === null || blobAgeSec > cfg.blobMaxAgeSec;
  const elapsedMs = state.lastTs === null ? Infinity : Math.max(0, now - state.lastTs);
  const rampFraction = Math.min(1, elapsedMs / (cfg.intervalSec * 1000));
  const base = {
    stale, blobAgeSec, killSwitch, marginPaused, rampFraction,
    eligible: [] as string[], cooldown: [] as string[], selected: [] as string[],
    scores: {}, shares: {}, preOverlay: {}, targets: {}, cost: {},
    sizing: { mode: cfg.sizing.mode, iterations: 0, converged: true, boundsRelaxed: false },
  };
  const record = (weights: InstrumentWeight[]): AllocationDecision => ({
    portfolio: cfg.portfolio,
    seq: state.seq + 1,
    ts: now,
    interval_sec: cfg.intervalSec,
    weights,
    total: weights.reduce((s, w) => s + w.weight, 0),
    stale,
    stale_age_sec: blobAgeSec,
    kill_switch: killSwitch,
    gates_ts: blob ? blob.ts : null,
    config_hash: cfg.configHash,
  });
  const nextState = (weights: InstrumentWeight[]): AllocatorState => ({
    seq: state.seq + 1,
    lastTs: now,
    weights: Object.fromEntries(weights.filter((w) => w.weight > 0).map((w) => [w.instrument, w.weight])),
    marginPaused,
  });

  if (stale || !blob) {
    const held = sortedNames(Object.keys(state.weights)).map((instrument): InstrumentWeight => ({ instrument, weight: state.weights[instrument]!, reasons: ['stale_hold'] }));
    return { state: nextState(held), decision: record(held), details: { ...base, cooldown: cooldownsOf(blob) } };
  }

  // ---- 2, 3: candidates and Top-K
  const cooldown = cooldownsOf(blob);
  const scores: Record<string, number> = {};
  for (const instrument of sortedNames(Object.keys(blob.gates))) {
    const calmar = valueOf(blob.calmar, instrument);
    const hazard = valueOf(blob.hazard, instrument);
    if (blob.gates[instrument] !== true || cooldown.includes(instrument) || calmar === undefined || hazard === undefined) continue;
    scores[instrument] = calmar - cfg.scoreWeightHazard * hazard;
  }
  const eligible = Object.keys(scores);
  const ranked = [...eligible].sort((a, b) => scores[b]! - scores[a]! || byName(a, b));
  const selected = ranked.slice(0, cfg.topK);

  // ---- 4: shares, target, caps
  const n = selected.length;
  const boundsRelaxed = n > 0 && n * cfg.sizing.maxWeight < 1 - 1e-12;
  const bounds = { minWeight: cfg.sizing.minWeight, maxWeight: boundsRelaxed ? 1 / n : cfg.sizing.maxWeight };
  const sizing = sizeShares(cfg.sizing.mode, { instruments: selected, vols: input.vols, correlations: input.correlations, manualWeights: cfg.sizing.manualWeights }, bounds);
  const cap = Math.min(cfg.targetPct / cfg.topK, cfg.maxPerPosPct);

  const reasons = new Map<string, Set<AllocationReason>>();
  const why = (i: string, r: AllocationReason) => (reasons.get(i) ?? reasons.set(i, new Set()).get(i)!).add(r);
  const preOverlay: Record<string, number> = {};
  const targets: Record<string, number> = {};
  const cost: Record<string, CostBreakdown> = {};
  for (const instrument of selected) {
    why(instrument, 'top_k');
    if (boundsRelaxed) why(instrument, 'bounds_relaxed');
    if (sizing.atMin.includes(instrument)) why(instrument, 'min_weight');
    if (sizing.atMax.includes(instrument)) why(instrument, 'max_weight');
    if (sizing.volMissing.includes(instrument)) why(instrument, 'vol_missing');
    if (!sizing.converged) why(instrument, 'rp_not_converged');
    let w = sizing.shares[instrument]! * cfg.targetPct;
    if (w > cap) {
      w = cap;
      why(instrument, 'capped');
    }
    preOverlay[instrument] = w;
    // ---- 5: overlay hook, cost chain
    const m = overlayOf(input.overlay, instrument);
    if (m < 1) {
      w *= m;
      why(instrument, 'overlay');
    }
    const caps = input.overlayCaps && Object.hasOwn(input.overlayCaps, instrument) ? input.overlayCaps[instrument]! : undefined;
    if (caps) {
      const capped = Math.min(w * Math.min(1, Math.max(0, caps.scale)), caps.maxWeight === null ? Infinity : Math.max(0, caps.maxWeight));
      if (capped < w) {
        w = capped;
        why(instrument, 'overlay');
      }
    }
    const chain = applyCostChain(costParamsFor(cfg.cost, instrument), {
      weight: w,
      budgetUsd: cfg.budgetUsd,
      calibration: input.calibrations && Object.hasOwn(input.calibrations, instrument) ? input.calibrations[instrument]! : null,
      depthUsd: input.depthUsd && Object.hasOwn(input.depthUsd, instrument) ? input.depthUsd[instrument]! : null,
    });
    let before = w;
    for (const s of chain.stages) {
      // Stages 1–4 may only shrink; final_clamp and min_guard are named whenever they change anything.
      if (s.stage === 'final_clamp' || s.stage === 'min_guard' ? s.weight !== before : s.weight < before) why(instrument, s.stage);
      before = s.weight;
    }
    cost[instrument] = chain;
    targets[instrument] = chain.weight;
  }

  // ---- 6: from the weights in force to the targets
  const maxIncrease = cfg.rampStepPct * rampFraction;
  const names = sortedNames([...new Set([...Object.keys(state.weights), ...selected])]);
  const weights = names.map((instrument): InstrumentWeight => {
    const prev = valueOf(state.weights, instrument) ?? 0;
    let target = targets[instrument];
    if (target === undefined) {
      target = 0;
      why(instrument, cooldown.includes(instrument) ? 'cooldown' : Object.hasOwn(scores, instrument) ? 'not_top_k' : 'ineligible');
    }
    let weight = target;
    if (target > prev) {
      if (killSwitch) why(instrument, 'kill_switch');
      if (marginPaused) why(instrument, 'margin_pause');
      if (killSwitch || marginPaused) weight = prev;
      else if (target - prev > maxIncrease) {
        weight = Math.min(target, prev + maxIncrease);
        why(instrument, 'ramp');
      }
    }
    return { instrument, weight, reasons: ordered(reasons.get(instrument)) };
  });

  return {
    state: nextState(weights),
    decision: record(weights),
    details: {
      ...base, eligible, cooldown, selected, scores, shares: sizing.shares, preOverlay, targets, cost,
      sizing: { mode: cfg.sizing.mode, iterations: sizing.iterations, converged: sizing.converged, boundsRelaxed },
    },
  };
}

/**
 * The margin latch (operations-reference "Margin gating"): pause at
 * utilisation ≥ HIGH, resume below LOW, keep in between; an unknown
 * utilisation keeps it (a replay without an account feed never pauses).
 */
export function nextMarginLatch(paused: boolean, utilisation: number | null | undefined, cfg: Pick<AllocatorConfig, 'marginHystLow' | 'marginHystHigh'>): boolean {
  if (utilisation === null || utilisation === undefined) return paused;
  if (!Number.isFinite(utilisation) || utilisation < 0) throw new RangeError(`allocate: marginUtilisation ${utilisation} must be finite and ≥ 0`);
  if (utilisation >= cfg.marginHystHigh) return true;
  if (utilisation < cfg.marginHystLow) return false;
  return paused;
}

// ---- helpers

/** Code-unit order, not localeCompare: the order must not depend on the host's locale. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedNames(names: string[]): string[] {
  return names.sort(byName);
}

function valueOf(map: Readonly<Record<string, number>>, key: string): number | undefined {
  const v = Object.hasOwn(map, key) ? map[key] : undefined;
  return v !== undefined && Number.isFinite(v) ? v : undefined;
}

function cooldownsOf(blob: AllocatorBlob | null): string[] {
  if (!blob) return [];
  return sortedNames(Object.keys(blob.cooldowns).filter((i) => blob.cooldowns[i]! > blob.ts));
}

function overlayOf(overlay: Readonly<Record<string, number>> | undefined, instrument: string): number {
  if (!overlay || !Object.hasOwn(overlay, instrument)) return 1;
  const m = overlay[instrument]!;
  if (!Number.isFinite(m) || m < 0 || m > 1) throw new RangeError(`allocate: overlay multiplier ${m} of ${instrument} must be in [0, 1]`);
  return m;
}

function ordered(set: Set<AllocationReason> | undefined): AllocationReason[] {
  return set ? ALLOCATION_REASONS.filter((r) => set.has(r)) : [];
}
