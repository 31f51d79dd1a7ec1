/**
 * The canary replay report (seed: mm-bot README S3.1–S3.3, S4 "Canary replay
 * (offline)", M1.1; docs/canary.md): `sep canary` replays one time range
 * twice, blue (baseline) and green (candidate) configuration, and this module
 * compares the two runs' gates.v1, alloc.weights.v1 and markout.v1 records:
 *
 * 1. allocation drift — the L1 distance of the weights in force, time-weighted;
 * 2. gate flips — (instrument, ts) where `eligible` differs; rejection rates;
 * 3. markout deltas — streams/markout's canary gate, blue run vs green run;
 *
 * and gives a PASS/FAIL verdict with its reasons in the seed's order.
 *
 * Pure and deterministic: no clock, every input sorted and de-duplicated
 * first, so the same records in any order (any partition interleaving) give
 * byte-identical JSON and Markdown. Numbers in the report are rounded half
 * away from zero to 6 decimals, and the verdict compares the rounded numbers
 * it prints, so a reader can check each reason against the table.
 */
import type { AllocationDecision, InstrumentWeight } from '../../streams/allocation/allocator.ts';
import { canonicalJson } from '../../streams/calibration/snapshot.ts';
import type { GateDecision, GateReason } from '../../streams/gates/evaluate.ts';
import { addMarkout, COLORS, emptyAggregate, markoutGates, type InstrumentAggregate, type MarkoutGateVerdict } from '../../streams/markout/aggregate.ts';
import { CAP_RANGE_BPS, DEFAULT_MARKOUT_CONFIG, type MarkoutConfig } from '../../streams/markout/config.ts';
import type { Markout } from '../../streams/markout/markout.ts';
import { INSTRUMENT_NAME } from '../../streams/model/instruments.ts';
import type { Color } from '../../streams/model/records.ts';
import { ConfigError, UsageError } from '../../streams/runtime/errors.ts';

/**
 * Every canary reason, in the order a verdict lists them (seed S3.3, with
 * M1.1's markout_delta_exceeds before latency_delta_exceeds). A replay of
 * recorded data has no executor latency: the latency and SLO reasons never
 * fire here, they keep their place for the live canary.
 */
export const CANARY_REASONS = [
  'killswitch_fired',
  'rollout_drift',
  'reject_delta_exceeds',
  'markout_delta_exceeds',
  'latency_delta_exceeds',
  'latency_tail_p95_exceeds',
  'latency_tail_p99_exceeds',
  'slo_tail_p95_breach',
  'slo_tail_p99_breach',
] as const;
export type CanaryReason = (typeof CANARY_REASONS)[number];

/** At most this many flips are listed one by one (the earliest, by ts then instrument); all are counted. */
export const LISTED_FLIPS = 20;

// ---------------------------------------------------------------- thresholds

/** The markout gate's knobs (streams/markout/config.ts) plus the thresholds file's global per-horizon caps. */
export interface MarkoutGateThresholds extends Pick<MarkoutConfig, 'horizonsMs' | 'gateHorizonsMs' | 'minSample' | 'capBps' | 'capOverrides'> {
  /** canary_gate.markout_cap_bps_<h>, bps, by horizon: the cap of every instrument without its own; absent → capBps. */
  capBpsByHorizon: Readonly<Record<string, number>>;
}

export interface CanaryThresholds {
  /** drift_cap_pct: largest time-weighted mean L1 allocation drift, % of NAV; default 5 (seed S3.1). */
  driftCapPct: number;
  /** max_reject_delta: largest rise of the gate rejection rate, green − blue, a share; default 0.02 (seed S3.1). */
  maxRejectDelta: number;
  /** min_sample_gates: gate decisions each colour needs before the reject delta is judged; default 200 (seed min_sample_fills). */
  minSampleGates: number;
  /** The markout canary gate (seed M1.1); default: DEFAULT_MARKOUT_CONFIG (min sample 50, 0.5 bps at 200 and 500 ms). */
  markout: MarkoutGateThresholds;
}

/** Turns a resolved MarkoutConfig (the baseline run's) into canary thresholds with the seed's other defaults. */
export function canaryThresholdsOf(markout: MarkoutConfig): CanaryThresholds {
  const { horizonsMs, gateHorizonsMs, minSample, capBps, capOverrides } = markout;
  return { driftCapPct: 5, maxRejectDelta: 0.02, minSampleGates: 200, markout: { horizonsMs, gateHorizonsMs, minSample, capBps, capOverrides, capBpsByHorizon: {} } };
}

export const DEFAULT_CANARY_THRESHOLDS: CanaryThresholds = Object.freeze(canaryThresholdsOf(DEFAULT_MARKOUT_CONFIG));

/** An L1 distance of two allocations, each at most 100 % of NAV, is at most 200 %. */
const DRIFT_CAP_RANGE_PCT = [0, 200] as const;
const SAMPLE_RANGE = [1, 1_000_000_000] as const;
const CAP_KEY = /^markout_cap_bps_(\d+)$/;
/** Seed keys of the live canary, measured on executor latency, which a replay does not have. */
const LIVE_ONLY_KEYS = [
  'max_latency_delta_ms', 'min_sample_fills', 'tail_min_sample', 'tail_p95_cap_ms', 'tail_p99_cap_ms', 'slo_tail_min_sample', 'slo_tail_p95_cap_ms', 'slo_tail_p99_cap_ms',
];
const GLOBAL_KEYS = ['drift_cap_pct', 'max_reject_delta', 'min_sample_gates', 'markout_min_sample'];

/**
 * Reads a thresholds file's JSON (seed S3.1 shape, every key optional) over
 * `base`: `{"canary_gate": {...}, "canary_gate_per_symbol": {"EUR_USD":
 * {"markout_cap_bps_200": 1.0}}}`. Throws one ConfigError listing every
 * problem, each naming `source`, the key path and the fix.
 */
export function parseCanaryThresholds(json: unknown, source: string, base: CanaryThresholds = DEFAULT_CANARY_THRESHOLDS): CanaryThresholds {
  const problems: { key: string; message: string }[] = [];
  const problem = (path: string, message: string) => problems.push({ key: `${source}: ${path}`, message });
  const gated = base.markout.gateHorizonsMs;
  const capKeys = gated.map((h) => `markout_cap_bps_${h}`).join(', ');
  /** A gated horizon named by a markout_cap_bps_<h> key, or null after reporting why not. */
  const capHorizon = (path: string, key: string): string | null => {
    const h = Number(CAP_KEY.exec(key)![1]);
    if (gated.includes(h)) return String(h);
    problem(path, `names ${h} ms, which is not a gated markout horizon (MARKOUT_GATE_HORIZONS_MS=${gated.join(',')}); use one of ${capKeys}`);
    return null;
  };
  const cap = (path: string, v: unknown) => checkNumber(problem, path, v, CAP_RANGE_BPS, false, 'bps green may be worse than blue, e.g. 0.5');

  const capBpsByHorizon: Record<string, number> = { ...base.markout.capBpsByHorizon };
  const out: CanaryThresholds = { ...base, markout: { ...base.markout, capBpsByHorizon } };
  if (!isObject(json)) {
    problem('(top level)', `must be a JSON object like {"canary_gate": {"drift_cap_pct": 5}}, got ${describe(json)}`);
    throw new ConfigError(problems);
  }
  for (const key of Object.keys(json).sort()) {
    if (key !== 'canary_gate' && key !== 'canary_gate_per_symbol') problem(key, `is not a thresholds section; use canary_gate and canary_gate_per_symbol`);
  }
  const gate = json['canary_gate'];
  if (gate !== undefined && !isObject(gate)) problem('canary_gate', `must be an object of threshold → value, got ${describe(gate)}`);
  if (isObject(gate)) {
    for (const key of Object.keys(gate).sort()) {
      const path = `canary_gate.${key}`;
      const v = gate[key];
      if (key === 'drift_cap_pct') out.driftCapPct = checkNumber(problem, path, v, DRIFT_CAP_RANGE_PCT, false, '% of NAV, time-weighted mean L1 drift, e.g. 5') ?? out.driftCapPct;
      else if (key === 'max_reject_delta') out.maxRejectDelta = checkNumber(problem, path, v, [0, 1], false, 'a share of gate decisions, e.g. 0.02 for 2 points') ?? out.maxRejectDelta;
      else if (key === 'min_sample_gates') out.minSampleGates = checkNumber(problem, path, v, SAMPLE_RANGE, true, 'gate decisions per colour, e.g. 200') ?? out.minSampleGates;
      else if (key === 'markout_min_sample') out.markout.minSample = checkNumber(problem, path, v, SAMPLE_RANGE, true, 'markouts per colour and gated horizon, e.g. 50') ?? out.markout.minSample;
      else if (CAP_KEY.test(key)) {
        const h = capHorizon(path, key);
        const c = cap(path, v);
        if (h !== null && c !== null) capBpsByHorizon[h] = c;
      } else if (LIVE_ONLY_KEYS.includes(key)) problem(path, `is a live-canary threshold on executor latency; a replay of recorded data has no latency, remove it from this file`);
      else problem(path, `is not a canary threshold; known: ${[...GLOBAL_KEYS, capKeys].join(', ')}`);
    }
  }
  const perSymbol = json['canary_gate_per_symbol'];
  if (perSymbol !== undefined && !isObject(perSymbol)) problem('canary_gate_per_symbol', `must be an object of instrument → thresholds, e.g. {"EUR_USD": {"markout_cap_bps_200": 1.0}}, got ${describe(perSymbol)}`);
  if (isObject(perSymbol)) {
    const overrides: Record<string, number | Readonly<Record<string, number>>> = { ...base.markout.capOverrides };
    for (const instrument of Object.keys(perSymbol).sort()) {
      const entry = perSymbol[instrument];
      const at = `canary_gate_per_symbol.${instrument}`;
      if (!INSTRUMENT_NAME.test(instrument)) {
        problem(at, `is not an instrument name like EUR_USD`);
        continue;
      }
      if (!isObject(entry)) {
        problem(at, `must be an object like {"markout_cap_bps_200": 1.0}, got ${describe(entry)}`);
        continue;
      }
      const prev = overrides[instrument];
      const caps: Record<string, number> = typeof prev === 'number' ? Object.fromEntries(gated.map((h) => [String(h), prev])) : { ...prev };
      for (const key of Object.keys(entry).sort()) {
        const path = `${at}.${key}`;
        if (CAP_KEY.test(key)) {
          const h = capHorizon(path, key);
          const c = cap(path, entry[key]);
          if (h !== null && c !== null) caps[h] = c;
        } else if (GLOBAL_KEYS.includes(key) || LIVE_ONLY_KEYS.includes(key)) {
          problem(path, `cannot be set per symbol here: drift and rejection rate are measured over the whole portfolio and minimum samples are global; move it to canary_gate or remove it (per symbol: ${capKeys})`);
        } else problem(path, `is not a per-symbol canary threshold; known: ${capKeys}`);
      }
      overrides[instrument] = caps;
    }
    out.markout.capOverrides = overrides;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

/**
 * The cap of one instrument at one gated horizon: its own (canary_gate_per_symbol
 * over MARKOUT_CAP_BPS_JSON) → canary_gate.markout_cap_bps_<h> → MARKOUT_CAP_BPS.
 */
export function markoutCapFor(t: MarkoutGateThresholds, instrument: string, horizonMs: number): number {
  const h = String(horizonMs);
  const own = Object.hasOwn(t.capOverrides, instrument) ? t.capOverrides[instrument] : undefined;
  if (typeof own === 'number') return own;
  if (own && Object.hasOwn(own, h)) return own[h]!;
  return globalCap(t, horizonMs);
}

/** The cap of an instrument without its own: canary_gate.markout_cap_bps_<h> → MARKOUT_CAP_BPS. */
function globalCap(t: MarkoutGateThresholds, horizonMs: number): number {
  const h = String(horizonMs);
  return Object.hasOwn(t.capBpsByHorizon, h) ? t.capBpsByHorizon[h]! : t.capBps;
}

/** The thresholds applied, in the thresholds file's own shape (seed `used_thresholds`): parseCanaryThresholds reads it back. */
export function usedThresholds(t: CanaryThresholds): UsedThresholds {
  const caps = (cap: (h: number) => number) => Object.fromEntries(t.markout.gateHorizonsMs.map((h) => [`markout_cap_bps_${h}`, cap(h)]));
  return {
    canary_gate: {
      drift_cap_pct: t.driftCapPct,
      max_reject_delta: t.maxRejectDelta,
      min_sample_gates: t.minSampleGates,
      markout_min_sample: t.markout.minSample,
      ...caps((h) => globalCap(t.markout, h)),
    },
    canary_gate_per_symbol: Object.fromEntries(Object.keys(t.markout.capOverrides).sort().map((i) => [i, caps((h) => markoutCapFor(t.markout, i, h))])),
  };
}

export interface UsedThresholds {
  canary_gate: Record<string, number>;
  canary_gate_per_symbol: Record<string, Record<string, number>>;
}

// ---------------------------------------------------------------- inputs

/** The fields of a gates.v1 record the report reads. */
export type CanaryGate = Pick<GateDecision, 'instrument' | 'ts' | 'eligible' | 'reasons'>;
/** The fields of an alloc.weights.v1 record the report reads. */
export type CanaryAllocation = Pick<AllocationDecision, 'seq' | 'ts' | 'kill_switch' | 'stale'> & { weights: readonly Pick<InstrumentWeight, 'instrument' | 'weight'>[] };
/** The fields of a markout.v1 record the report reads; its `color` is ignored (the run decides the colour). */
export type CanaryMarkout = Pick<Markout, 'cid' | 'instrument' | 'fill_ts' | 'horizon_ms' | 'markout_bps'>;

/** One run's decoded output records, in any order. */
export interface CanaryOutputs {
  gates: readonly CanaryGate[];
  allocations: readonly CanaryAllocation[];
  markouts: readonly CanaryMarkout[];
}

export interface CanaryRunMeta {
  runId: string;
  configHash: string;
  /** The knob overrides the run used, knob → value. */
  config?: Readonly<Record<string, string>>;
}

export interface CanaryMeta {
  /** Start of the replayed range, epoch ms, inclusive. */
  from: number;
  /** End of the replayed range, epoch ms, exclusive. */
  to: number;
  blue: CanaryRunMeta;
  green: CanaryRunMeta;
}

// ---------------------------------------------------------------- report

export interface CanaryReport {
  kind: 'sep.canary.report';
  version: 1;
  decision: 'PASS' | 'FAIL';
  /** Unique, in CANARY_REASONS order. */
  reasons: CanaryReason[];
  /** markout_green_worse_<h>ms for each horizon breached by some instrument, ascending. */
  hints: string[];
  used_thresholds: UsedThresholds;
  window: { from: number; to: number; from_iso: string; to_iso: string };
  runs: Record<Color, RunSummary>;
  /** Knobs whose value differs (null: not set by that run), by knob. */
  config_diff: { knob: string; blue: string | null; green: string | null }[];
  drift: DriftSection;
  gates: GateSection;
  markout: MarkoutSection;
}

export interface RunSummary {
  run_id: string;
  config_hash: string;
  /** Records inside [from, to) after de-duplication, per topic. */
  records: { gates: number; allocations: number; markouts: number };
  /** Records outside [from, to), all topics (allocations before `from` still give the weights in force at `from`). */
  outside_window: number;
  /** Repeated records dropped, all topics (see docs/canary.md "Inputs"). */
  duplicates: number;
}

export interface DriftSection {
  /** no_decisions: neither run has an allocation decision before `to`; nothing is compared. */
  status: 'evaluated' | 'no_decisions';
  decisions: Record<Color, number>;
  kill_switch_decisions: Record<Color, number>;
  stale_decisions: Record<Color, number>;
  /** Comparison points: both runs' decision times in [from, to), and `from` when a decision before it is in force. */
  points: number;
  /** The first point; the mean covers [start, to). */
  start: number | null;
  /** Time-weighted mean of Σ_i |w_green_i − w_blue_i| · 100, % of NAV. */
  mean_pct: number | null;
  max_pct: number | null;
  /** The first point at max_pct. */
  max_at: number | null;
  cap_pct: number;
  breach: boolean;
  /** Per instrument held by either run at some point, by instrument. */
  instruments: { instrument: string; mean_abs_delta_pct: number; max_abs_delta_pct: number; max_at: number }[];
}

export interface GateSection extends FlipCounts {
  /** insufficient_sample: a colour has fewer than min_sample_gates decisions; the reject delta is not judged. */
  status: 'evaluated' | 'insufficient_sample';
  decisions: Record<Color, number>;
  rejected: Record<Color, number>;
  /** rejected / decisions; null without decisions. */
  reject_rate: Record<Color, number | null>;
  /** reject_rate green − blue; null when a colour has no decision. */
  reject_delta: number | null;
  max_reject_delta: number;
  min_sample_gates: number;
  breach: boolean;
  instruments: GateInstrument[];
  /** The first LISTED_FLIPS flips by ts, then instrument. */
  listed_flips: GateFlip[];
}

/** How two runs' gate decisions line up: over the portfolio, or one instrument's. */
export interface FlipCounts {
  /** (instrument, ts) decided by both runs. */
  aligned: number;
  flips: number;
  /** Ineligible in blue, eligible in green. */
  became_eligible: number;
  /** Eligible in blue, ineligible in green. */
  became_ineligible: number;
  only_blue: number;
  only_green: number;
}

export interface GateInstrument extends FlipCounts {
  instrument: string;
  decisions_blue: number;
  decisions_green: number;
  first_flip_ts: number | null;
}

export interface GateFlip {
  ts: number;
  instrument: string;
  blue_eligible: boolean;
  green_eligible: boolean;
  blue_reasons: GateReason[];
  green_reasons: GateReason[];
}

export interface MarkoutSection {
  /** Markouts with fill_ts in [from, to), per colour. */
  markouts: Record<Color, number>;
  breached: string[];
  insufficient_sample: string[];
  /** markoutGate per instrument with markouts in either run, by instrument. */
  instruments: MarkoutGateVerdict[];
}

/** Compares the two runs; throws UsageError for an empty or invalid window. */
export function canaryReport(meta: CanaryMeta, blue: CanaryOutputs, green: CanaryOutputs, thresholds: CanaryThresholds): CanaryReport {
  if (!Number.isSafeInteger(meta.from) || !Number.isSafeInteger(meta.to) || meta.from >= meta.to) {
    throw new UsageError(`the canary window needs --from before --to (epoch ms ${meta.from} .. ${meta.to}); give a non-empty range the recorded data covers`);
  }
  const runs = { blue: prepare(blue, meta), green: prepare(green, meta) };
  const drift = driftSection(runs.blue, runs.green, meta, thresholds.driftCapPct);
  const gates = gateSection(runs.blue.gates, runs.green.gates, thresholds);
  const markout = markoutSection(runs.blue.markouts, runs.green.markouts, thresholds.markout);

  const fired = new Set<CanaryReason>();
  if (drift.kill_switch_decisions.green > drift.kill_switch_decisions.blue) fired.add('killswitch_fired');
  if (drift.breach) fired.add('rollout_drift');
  if (gates.breach) fired.add('reject_delta_exceeds');
  for (const v of markout.instruments) for (const r of v.reasons) fired.add(r);
  const reasons = CANARY_REASONS.filter((r) => fired.has(r));
  const hints = [...new Set(markout.instruments.flatMap((v) => v.hints))].sort((a, b) => hintMs(a) - hintMs(b));

  const summary = (color: Color): RunSummary => ({
    run_id: meta[color].runId,
    config_hash: meta[color].configHash,
    records: { gates: runs[color].gates.length, allocations: runs[color].allocations.length, markouts: runs[color].markouts.length },
    outside_window: runs[color].outside,
    duplicates: runs[color].duplicates,
  });
  return {
    kind: 'sep.canary.report',
    version: 1,
    decision: reasons.length > 0 ? 'FAIL' : 'PASS',
    reasons,
    hints,
    used_thresholds: usedThresholds(thresholds),
    window: { from: meta.from, to: meta.to, from_iso: iso(meta.from), to_iso: iso(meta.to) },
    runs: { blue: summary('blue'), green: summary('green') },
    config_diff: configDiff(meta.blue.config ?? {}, meta.green.config ?? {}),
    drift,
    gates,
    markout,
  };
}

/** The report as canonical JSON (keys sorted, no spaces, ASCII) and a newline: byte-identical for identical inputs. */
export function canaryReportJson(report: CanaryReport): string {
  return `${canonicalJson(report)}\n`;
}

// ---------------------------------------------------------------- preparation

interface Prepared {
  gates: CanaryGate[];
  /** Decisions in [from, to), by ts then seq. */
  allocations: CanaryAllocation[];
  /** Decisions before `to` (those before `from` give the weights in force at `from`), by ts then seq. */
  history: CanaryAllocation[];
  markouts: CanaryMarkout[];
  outside: number;
  duplicates: number;
}

/**
 * Sorts and de-duplicates one run's records. A key seen twice (a record
 * delivered again) counts once: gates by (instrument, ts), an ineligible copy
 * winning; allocations by (ts, seq); markouts by (instrument, cid, horizon).
 * Among copies that differ, the choice depends on their content only.
 */
function prepare(out: CanaryOutputs, meta: CanaryMeta): Prepared {
  const inWindow = (ts: number) => ts >= meta.from && ts < meta.to;
  let outside = 0;
  let duplicates = 0;
  const unique = <T>(records: readonly T[], key: (r: T) => string, order: (a: T, b: T) => number): T[] => {
    const sorted = [...records].sort(order);
    const kept = sorted.filter((r, i) => i === 0 || key(r) !== key(sorted[i - 1]!));
    duplicates += sorted.length - kept.length;
    return kept;
  };
  const gates = unique(out.gates, (g) => `${g.instrument}|${g.ts}`, (a, b) =>
    compare(a.instrument, b.instrument) || a.ts - b.ts || Number(a.eligible) - Number(b.eligible) || compare(canonicalJson(a.reasons), canonicalJson(b.reasons)));
  const allocations = unique(out.allocations, (d) => `${d.ts}|${d.seq}`, (a, b) =>
    a.ts - b.ts || a.seq - b.seq || compare(allocationKey(a), allocationKey(b)));
  const markouts = unique(out.markouts, (m) => `${m.instrument}|${m.cid}|${m.horizon_ms}`, (a, b) =>
    compare(a.instrument, b.instrument) || compare(a.cid, b.cid) || a.horizon_ms - b.horizon_ms || a.markout_bps - b.markout_bps || a.fill_ts - b.fill_ts);
  const keep = <T>(records: T[], ts: (r: T) => number) => {
    const kept = records.filter((r) => inWindow(ts(r)));
    outside += records.length - kept.length;
    return kept;
  };
  return {
    gates: keep(gates, (g) => g.ts),
    allocations: keep(allocations, (d) => d.ts),
    history: allocations.filter((d) => d.ts < meta.to),
    markouts: keep(markouts, (m) => m.fill_ts),
    outside,
    duplicates,
  };
}

const allocationKey = (d: CanaryAllocation) => canonicalJson({ kill_switch: d.kill_switch, stale: d.stale, weights: d.weights.map((w) => [w.instrument, w.weight]) });

// ---------------------------------------------------------------- drift

interface Step {
  ts: number;
  weights: ReadonlyMap<string, number>;
}

/** The weights in force from each decision time on: the highest seq at each ts, ascending. A missing instrument has weight 0. */
function stepsOf(history: readonly CanaryAllocation[]): Step[] {
  const steps: Step[] = [];
  for (const d of history) {
    const weights = new Map(d.weights.map((w) => [w.instrument, w.weight]));
    if (steps.length > 0 && steps[steps.length - 1]!.ts === d.ts) steps[steps.length - 1] = { ts: d.ts, weights };
    else steps.push({ ts: d.ts, weights });
  }
  return steps;
}

/**
 * L1 drift between the weights in force, as of each comparison point, each
 * point holding until the next (the last until `to`). Weights are fractions
 * of NAV; ×100 gives % of NAV.
 */
function driftSection(blue: Prepared, green: Prepared, meta: CanaryMeta, capPct: number): DriftSection {
  const count = (f: (d: CanaryAllocation) => boolean) => ({ blue: blue.allocations.filter(f).length, green: green.allocations.filter(f).length });
  const section = {
    decisions: count(() => true),
    kill_switch_decisions: count((d) => d.kill_switch),
    stale_decisions: count((d) => d.stale),
    cap_pct: capPct,
  };
  const steps = { blue: stepsOf(blue.history), green: stepsOf(green.history) };
  const times = new Set<number>();
  for (const color of COLORS) for (const s of steps[color]) times.add(Math.max(s.ts, meta.from));
  const points = [...times].sort((a, b) => a - b);
  if (points.length === 0) {
    return { status: 'no_decisions', ...section, points: 0, start: null, mean_pct: null, max_pct: null, max_at: null, breach: false, instruments: [] };
  }
  const cursor = { blue: -1, green: -1 };
  const perInstrument = new Map<string, { area: number; max: number; maxAt: number }>();
  let area = 0;
  let max = -1;
  let maxAt = points[0]!;
  points.forEach((t, k) => {
    const inForce = (color: Color) => {
      while (cursor[color] + 1 < steps[color].length && steps[color][cursor[color] + 1]!.ts <= t) cursor[color] += 1;
      return cursor[color] < 0 ? new Map<string, number>() : steps[color][cursor[color]]!.weights;
    };
    const wb = inForce('blue');
    const wg = inForce('green');
    const dt = (points[k + 1] ?? meta.to) - t;
    let l1 = 0;
    for (const i of [...new Set([...wb.keys(), ...wg.keys()])].sort(compare)) {
      const d = Math.abs((wg.get(i) ?? 0) - (wb.get(i) ?? 0));
      l1 += d;
      const acc = perInstrument.get(i) ?? perInstrument.set(i, { area: 0, max: -1, maxAt: t }).get(i)!;
      acc.area += d * dt;
      if (round6(d * 100) > acc.max) Object.assign(acc, { max: round6(d * 100), maxAt: t });
    }
    area += l1 * dt;
    if (round6(l1 * 100) > max) [max, maxAt] = [round6(l1 * 100), t];
  });
  const span = meta.to - points[0]!;
  const meanPct = round6((area / span) * 100);
  return {
    status: 'evaluated',
    ...section,
    points: points.length,
    start: points[0]!,
    mean_pct: meanPct,
    max_pct: max,
    max_at: maxAt,
    breach: meanPct > capPct,
    instruments: [...perInstrument].sort(([a], [b]) => compare(a, b)).map(([instrument, acc]) => ({
      instrument, mean_abs_delta_pct: round6((acc.area / span) * 100), max_abs_delta_pct: acc.max, max_at: acc.maxAt,
    })),
  };
}

// ---------------------------------------------------------------- gates

function gateSection(blue: readonly CanaryGate[], green: readonly CanaryGate[], t: CanaryThresholds): GateSection {
  const byKey = (gates: readonly CanaryGate[]) => new Map(gates.map((g) => [`${g.instrument}|${g.ts}`, g]));
  const greenByKey = byKey(green);
  const blueByKey = byKey(blue);
  const rows = new Map<string, GateInstrument>();
  const row = (instrument: string) => rows.get(instrument) ?? rows.set(instrument, {
    instrument, decisions_blue: 0, decisions_green: 0, aligned: 0, flips: 0, became_eligible: 0, became_ineligible: 0, only_blue: 0, only_green: 0, first_flip_ts: null,
  }).get(instrument)!;
  const flips: GateFlip[] = [];
  for (const b of blue) {
    const r = row(b.instrument);
    r.decisions_blue += 1;
    const g = greenByKey.get(`${b.instrument}|${b.ts}`);
    if (!g) {
      r.only_blue += 1;
      continue;
    }
    r.aligned += 1;
    if (g.eligible === b.eligible) continue;
    r.flips += 1;
    if (g.eligible) r.became_eligible += 1;
    else r.became_ineligible += 1;
    r.first_flip_ts ??= b.ts; // blue is sorted by instrument, then ts
    flips.push({ ts: b.ts, instrument: b.instrument, blue_eligible: b.eligible, green_eligible: g.eligible, blue_reasons: [...b.reasons], green_reasons: [...g.reasons] });
  }
  for (const g of green) {
    const r = row(g.instrument);
    r.decisions_green += 1;
    if (!blueByKey.has(`${g.instrument}|${g.ts}`)) r.only_green += 1;
  }
  const instruments = [...rows.values()].sort((a, b) => compare(a.instrument, b.instrument));
  const sum = (f: (r: GateInstrument) => number) => instruments.reduce((s, r) => s + f(r), 0);

  const decisions = { blue: blue.length, green: green.length };
  const rejected = { blue: blue.filter((g) => !g.eligible).length, green: green.filter((g) => !g.eligible).length };
  const rate = (c: Color) => (decisions[c] === 0 ? null : round6(rejected[c] / decisions[c]));
  const reject_rate = { blue: rate('blue'), green: rate('green') };
  // From the exact counts, not the rounded rates: (rg·nb − rb·ng) / (ng·nb).
  const reject_delta = decisions.blue === 0 || decisions.green === 0 ? null
    : round6((rejected.green * decisions.blue - rejected.blue * decisions.green) / (decisions.green * decisions.blue));
  const evaluated = decisions.blue >= t.minSampleGates && decisions.green >= t.minSampleGates;
  return {
    status: evaluated ? 'evaluated' : 'insufficient_sample',
    decisions,
    rejected,
    reject_rate,
    reject_delta,
    max_reject_delta: t.maxRejectDelta,
    min_sample_gates: t.minSampleGates,
    breach: evaluated && reject_delta !== null && reject_delta > t.maxRejectDelta,
    aligned: sum((r) => r.aligned),
    flips: sum((r) => r.flips),
    became_eligible: sum((r) => r.became_eligible),
    became_ineligible: sum((r) => r.became_ineligible),
    only_blue: sum((r) => r.only_blue),
    only_green: sum((r) => r.only_green),
    instruments,
    listed_flips: flips.sort((a, b) => a.ts - b.ts || compare(a.instrument, b.instrument)).slice(0, LISTED_FLIPS),
  };
}

// ---------------------------------------------------------------- markout

/**
 * The markout canary gate (streams/markout/aggregate.ts markoutGate) with the
 * blue run's markouts as colour blue and the green run's as green — both runs
 * replay the same fills, so each record's own colour says nothing here.
 */
function markoutSection(blue: readonly CanaryMarkout[], green: readonly CanaryMarkout[], t: MarkoutGateThresholds): MarkoutSection {
  const aggs = new Map<string, InstrumentAggregate>();
  for (const [color, markouts] of [['blue', blue], ['green', green]] as const) {
    for (const m of markouts) {
      const agg = aggs.get(m.instrument) ?? aggs.set(m.instrument, emptyAggregate()).get(m.instrument)!;
      addMarkout(agg, { horizon_ms: m.horizon_ms, color, markout_bps: m.markout_bps });
    }
  }
  // Every instrument gets its resolved caps, so the gate's own capFor sees the file's global per-horizon caps too.
  const capOverrides = Object.fromEntries([...aggs.keys()].map((i) => [i, Object.fromEntries(t.gateHorizonsMs.map((h) => [String(h), markoutCapFor(t, i, h)]))]));
  const instruments = markoutGates(aggs, { horizonsMs: t.horizonsMs, gateHorizonsMs: t.gateHorizonsMs, minSample: t.minSample, capBps: t.capBps, capOverrides });
  return {
    markouts: { blue: blue.length, green: green.length },
    breached: instruments.filter((v) => v.status === 'breach').map((v) => v.instrument),
    insufficient_sample: instruments.filter((v) => v.status === 'insufficient_sample').map((v) => v.instrument),
    instruments,
  };
}

// ---------------------------------------------------------------- Markdown

/** The report for people: verdict and reasons first, then one section per comparison. Deterministic like the JSON. */
export function canaryReportMarkdown(r: CanaryReport): string {
  const lines: string[] = [];
  const add = (...l: string[]) => lines.push(...l);
  add(`# Canary replay: ${r.decision}`, '');
  add(`Window [${r.window.from_iso}, ${r.window.to_iso}) — from=${r.window.from}, to=${r.window.to}.`, '');
  add(...table(['', 'blue (baseline)', 'green (candidate)'], [
    ['run', code(r.runs.blue.run_id), code(r.runs.green.run_id)],
    ['config hash', code(r.runs.blue.config_hash), code(r.runs.green.config_hash)],
    ['gate decisions', num(r.runs.blue.records.gates), num(r.runs.green.records.gates)],
    ['allocation decisions', num(r.runs.blue.records.allocations), num(r.runs.green.records.allocations)],
    ['markouts', num(r.runs.blue.records.markouts), num(r.runs.green.records.markouts)],
    ['records outside the window', num(r.runs.blue.outside_window), num(r.runs.green.outside_window)],
    ['duplicate records dropped', num(r.runs.blue.duplicates), num(r.runs.green.duplicates)],
  ]), '');

  add('## Verdict', '');
  add(r.reasons.length === 0 ? `**PASS**: no reason fired.` : `**FAIL**, ${r.reasons.length} reason${r.reasons.length > 1 ? 's' : ''} in order:`, '');
  r.reasons.forEach((reason, k) => add(`${k + 1}. \`${reason}\`: ${explain(reason, r)}`));
  if (r.reasons.length > 0) add('');
  if (r.hints.length > 0) add(`Hints: ${r.hints.map(code).join(', ')}.`, '');
  add('Not judged:', '');
  if (r.drift.status === 'no_decisions') add('- allocation drift: neither run made an allocation decision before the end of the window.');
  if (r.gates.status === 'insufficient_sample') {
    add(`- reject delta: insufficient sample (blue ${r.gates.decisions.blue}, green ${r.gates.decisions.green} gate decisions; min_sample_gates ${r.gates.min_sample_gates} each).`);
  }
  if (r.markout.insufficient_sample.length > 0) {
    add(`- markout gate, insufficient sample (< ${r.used_thresholds.canary_gate['markout_min_sample']} markouts per colour at a gated horizon): ${r.markout.insufficient_sample.join(', ')}.`);
  }
  add(`- ${CANARY_REASONS.slice(CANARY_REASONS.indexOf('latency_delta_exceeds')).map(code).join(', ')}: not applicable, a replay of recorded data has no executor latency.`, '');

  add('## Configuration differences', '');
  if (r.config_diff.length === 0) add('No knob differs between the runs.', '');
  else add(...table(['knob', 'blue', 'green'], r.config_diff.map((d) => [code(d.knob), d.blue === null ? '(unset)' : code(d.blue), d.green === null ? '(unset)' : code(d.green)])), '');

  const d = r.drift;
  add('## Allocation drift', '');
  add(...table(['', 'blue', 'green'], [
    ['decisions', num(d.decisions.blue), num(d.decisions.green)],
    ['kill-switch decisions', num(d.kill_switch_decisions.blue), num(d.kill_switch_decisions.green)],
    ['stale decisions', num(d.stale_decisions.blue), num(d.stale_decisions.green)],
  ]), '');
  if (d.status === 'no_decisions') add('No allocation decisions in either run: no drift to measure (not a failure by itself).', '');
  else {
    add(`Σ|w_green - w_blue| at ${d.points} comparison point${d.points === 1 ? '' : 's'} from ${iso(d.start!)}: time-weighted mean **${num(d.mean_pct)} %** of NAV (cap ${num(d.cap_pct)} %${d.breach ? ', exceeded' : ''}), max ${num(d.max_pct)} % at ${iso(d.max_at!)}.`, '');
    add(...table(['instrument', 'mean abs Δw %', 'max abs Δw %', 'max at'], d.instruments.map((i) => [i.instrument, num(i.mean_abs_delta_pct), num(i.max_abs_delta_pct), iso(i.max_at)])), '');
  }

  const g = r.gates;
  add('## Gate flips', '');
  add(...table(['', 'blue', 'green'], [
    ['decisions', num(g.decisions.blue), num(g.decisions.green)],
    ['ineligible', num(g.rejected.blue), num(g.rejected.green)],
    ['rejection rate', num(g.reject_rate.blue), num(g.reject_rate.green)],
    ['only in this run', num(g.only_blue), num(g.only_green)],
  ]), '');
  add(`reject_delta ${num(g.reject_delta)} (max ${num(g.max_reject_delta)}, ${g.status === 'evaluated' ? (g.breach ? 'exceeded' : 'within') : 'not judged: insufficient sample'}). ${g.flips} flips in ${g.aligned} aligned decisions: ${g.became_eligible} became eligible, ${g.became_ineligible} became ineligible in green.`, '');
  if (g.instruments.length > 0) {
    add(...table(['instrument', 'blue', 'green', 'aligned', 'flips', '→ eligible', '→ ineligible', 'only blue', 'only green', 'first flip'], g.instruments.map((i) => [
      i.instrument, num(i.decisions_blue), num(i.decisions_green), num(i.aligned), num(i.flips), num(i.became_eligible), num(i.became_ineligible), num(i.only_blue), num(i.only_green), i.first_flip_ts === null ? '–' : iso(i.first_flip_ts),
    ])), '');
  }
  if (g.listed_flips.length > 0) {
    add(`First ${g.listed_flips.length} of ${g.flips} flips:`, '');
    add(...table(['ts', 'instrument', 'blue', 'green', 'blue reasons', 'green reasons'], g.listed_flips.map((f) => [
      iso(f.ts), f.instrument, eligibility(f.blue_eligible), eligibility(f.green_eligible), f.blue_reasons.join(', ') || '–', f.green_reasons.join(', ') || '–',
    ])), '');
  }

  add('## Markout', '');
  add(`${r.markout.markouts.blue} blue and ${r.markout.markouts.green} green markouts; delta = avg green - avg blue (bps), breach when delta < -cap at a gated horizon (a cap shown); horizons without markouts are left out.`, '');
  if (r.markout.instruments.length > 0) {
    add(...table(['instrument', 'status', 'horizon ms', 'n blue', 'n green', 'avg blue', 'avg green', 'delta', 'cap', 'breach'], r.markout.instruments.flatMap((v) => v.horizons.filter((h) => h.cap_bps !== null || h.samples_blue + h.samples_green > 0).map((h) => [
      v.instrument, v.status, num(h.horizon_ms), num(h.samples_blue), num(h.samples_green), num(h.avg_bps_blue), num(h.avg_bps_green), num(h.delta_bps), num(h.cap_bps), h.breach ? 'yes' : '',
    ]))), '');
  }

  add('## Thresholds used', '');
  const used = r.used_thresholds;
  add(...table(['threshold', 'value'], [
    ...Object.keys(used.canary_gate).sort().map((k) => [`canary_gate.${k}`, num(used.canary_gate[k]!)]),
    ...Object.keys(used.canary_gate_per_symbol).sort().flatMap((i) => Object.keys(used.canary_gate_per_symbol[i]!).sort().map((k) => [`canary_gate_per_symbol.${i}.${k}`, num(used.canary_gate_per_symbol[i]![k]!)])),
  ]));
  return `${lines.join('\n')}\n`;
}

function explain(reason: CanaryReason, r: CanaryReport): string {
  switch (reason) {
    case 'killswitch_fired':
      return `decisions with the kill switch on: green ${r.drift.kill_switch_decisions.green}, blue ${r.drift.kill_switch_decisions.blue}.`;
    case 'rollout_drift':
      return `time-weighted mean allocation drift ${num(r.drift.mean_pct)} % of NAV > drift_cap_pct ${num(r.drift.cap_pct)} %.`;
    case 'reject_delta_exceeds':
      return `gate rejection rate green ${num(r.gates.reject_rate.green)} − blue ${num(r.gates.reject_rate.blue)} = ${num(r.gates.reject_delta)} > max_reject_delta ${num(r.gates.max_reject_delta)}.`;
    case 'markout_delta_exceeds':
      return `${r.markout.instruments.flatMap((v) => v.alerts.map((a) => `${a.instrument} at ${a.horizon_ms} ms: delta ${num(a.delta_bps)} bps < -${num(v.horizons.find((h) => h.horizon_ms === a.horizon_ms)!.cap_bps)} bps`)).join('; ')}.`;
    default:
      return 'measured on executor latency (live canary only).';
  }
}

// ---------------------------------------------------------------- helpers

function configDiff(blue: Readonly<Record<string, string>>, green: Readonly<Record<string, string>>): CanaryReport['config_diff'] {
  const value = (c: Readonly<Record<string, string>>, k: string) => (Object.hasOwn(c, k) ? c[k]! : null);
  return [...new Set([...Object.keys(blue), ...Object.keys(green)])].sort(compare)
    .map((knob) => ({ knob, blue: value(blue, knob), green: value(green, knob) }))
    .filter((d) => d.blue !== d.green);
}

/** Half away from zero to 6 decimals; never −0. */
function round6(x: number): number {
  const r = Math.round(Math.abs(x) * 1e6) / 1e6;
  return x < 0 && r !== 0 ? -r : r;
}

function checkNumber(
  problem: (path: string, message: string) => void, path: string, v: unknown, [min, max]: readonly [number, number], integer: boolean, what: string,
): number | null {
  if (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max && (!integer || Number.isInteger(v))) return v;
  problem(path, `=${describe(v)}: must be ${integer ? 'a whole number' : 'a number'} in [${min}, ${max}] (${what})`);
  return null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v);
}

function hintMs(hint: string): number {
  return Number(/_(\d+)ms$/.exec(hint)?.[1] ?? 0);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function num(x: number | null): string {
  return x === null ? '–' : String(x);
}

function code(s: string): string {
  return `\`${s.replace(/`/g, "'")}\``;
}

function eligibility(e: boolean): string {
  return e ? 'eligible' : 'ineligible';
}

function table(head: string[], rows: string[][]): string[] {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
  return [`| ${head.map(cell).join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)];
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
