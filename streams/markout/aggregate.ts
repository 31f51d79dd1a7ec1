/**
 * Markout aggregates per horizon, colour and instrument, adverse fill rate
 * and the canary markout gate (DESIGN §6.4; seed: mm-bot README M1, M1.1;
 * docs/markout.md "Aggregates", "Canary gate").
 *
 * Fixed point (seed M1: "markout kept as an int, bps · 10000"): each markout
 * becomes the integer round(bps · 1e4), half away from zero so a buy and a
 * sell of opposite markouts round to opposite integers, and the sums add
 * those integers exactly as BigInt — no overflow, no dependence on order.
 * The state keeps a sum as a decimal string (JSON has no BigInt). avg_bps is
 * sum / count, rounded half away from zero to 6 decimals (seed M1) from the
 * exact integers, and the canary delta is computed the same way, so equal
 * inputs give the same digits in any order and on any replay.
 *
 * One InstrumentAggregate per instrument (a state store key); cumulative
 * since the state began — keeping one per window is the processor's choice.
 */
import type { Color } from '../model/records.ts';
import { capFor, type MarkoutConfig } from './config.ts';
import type { Markout } from './markout.ts';

export const COLORS: readonly Color[] = ['blue', 'green'];

/** One horizon and colour of one instrument. */
export interface Cell {
  count: number;
  /** Σ round(markout_bps · 1e4), a decimal integer string. */
  sum_bps_int: string;
  /** Markouts > 0 (metric markout_up_total). */
  up: number;
  /** Markouts < 0 (metric markout_down_total; adverse fills at the adverse horizon). */
  down: number;
}

export interface InstrumentAggregate {
  /** horizon_ms (as a string key) → colour → cell. */
  cells: Record<string, Partial<Record<Color, Cell>>>;
}

export interface AggregateRow {
  instrument: string;
  horizon_ms: number;
  color: Color;
  count: number;
  /** sum / count to 6 decimals; null without markouts. */
  avg_bps: number | null;
  sum_bps_int: string;
  up: number;
  down: number;
}

export interface AdverseRow {
  instrument: string;
  color: Color;
  horizon_ms: number;
  count: number;
  adverse: number;
  /** adverse / count; null without markouts. */
  adverse_fill_rate: number | null;
}

export interface CanaryHorizon {
  horizon_ms: number;
  samples_blue: number;
  samples_green: number;
  avg_bps_blue: number | null;
  avg_bps_green: number | null;
  /** avg green − avg blue to 6 decimals, from the exact sums; null when a colour has no markout. */
  delta_bps: number | null;
  /** The cap at a gated horizon (MARKOUT_CAP_BPS_JSON, else MARKOUT_CAP_BPS); null at other horizons. */
  cap_bps: number | null;
  /** Gated, evaluated, and delta_bps < −cap_bps. */
  breach: boolean;
}

export interface MarkoutAlert {
  kind: 'markout_regression';
  instrument: string;
  horizon_ms: number;
  delta_bps: number;
}

export type MarkoutGateStatus = 'pass' | 'breach' | 'insufficient_sample';

export interface MarkoutGateVerdict {
  instrument: string;
  /** insufficient_sample: some colour has < MARKOUT_MIN_SAMPLE markouts at some gated horizon; the gate is not evaluated. */
  status: MarkoutGateStatus;
  /** ['markout_delta_exceeds'] on a breach (the gate's reason string, seed M1.1), else []. */
  reasons: 'markout_delta_exceeds'[];
  /** markout_green_worse_<h>ms for each breached horizon, ascending. */
  hints: string[];
  alerts: MarkoutAlert[];
  /** Every configured horizon, ascending. */
  horizons: CanaryHorizon[];
}

export function emptyAggregate(): InstrumentAggregate {
  return { cells: {} };
}

/** round(bps · 1e4), half away from zero. */
export function bpsToInt(bps: number): bigint {
  if (!Number.isFinite(bps)) throw new RangeError(`markout_bps must be finite, got ${bps}`);
  const r = Math.round(Math.abs(bps) * 1e4);
  return bps < 0 ? -BigInt(r) : BigInt(r);
}

/** Adds one markout to its instrument's aggregate (in place). */
export function addMarkout(agg: InstrumentAggregate, m: Pick<Markout, 'horizon_ms' | 'color' | 'markout_bps'>): void {
  const v = bpsToInt(m.markout_bps); // throws before anything changes
  const byColor = (agg.cells[String(m.horizon_ms)] ??= {});
  const c = (byColor[m.color] ??= { count: 0, sum_bps_int: '0', up: 0, down: 0 });
  c.count += 1;
  c.sum_bps_int = (BigInt(c.sum_bps_int) + v).toString();
  if (m.markout_bps > 0) c.up += 1;
  else if (m.markout_bps < 0) c.down += 1;
}

/** sum_bps_int / count in bps, rounded half away from zero to 6 decimals; null for count 0. */
export function avgBps(sumBpsInt: bigint | string, count: number): number | null {
  if (count === 0) return null;
  // bps · 1e6 = sum · 100 / count.
  return Number(roundDiv(BigInt(sumBpsInt) * 100n, BigInt(count))) / 1e6;
}

/** avg(green) − avg(blue) in bps, exact from the integers, rounded like avgBps; null if a colour has no markout. */
export function deltaBps(green: Pick<Cell, 'count' | 'sum_bps_int'> | undefined, blue: Pick<Cell, 'count' | 'sum_bps_int'> | undefined): number | null {
  if (!green?.count || !blue?.count) return null;
  const ng = BigInt(green.count);
  const nb = BigInt(blue.count);
  const num = BigInt(green.sum_bps_int) * nb - BigInt(blue.sum_bps_int) * ng;
  return Number(roundDiv(num * 100n, ng * nb)) / 1e6;
}

/** One row per instrument, horizon and colour with markouts; by horizon, then blue before green, then instrument. */
export function aggregateRows(aggs: Iterable<readonly [string, InstrumentAggregate]>): AggregateRow[] {
  const rows: AggregateRow[] = [];
  for (const [instrument, agg] of aggs) {
    for (const [h, byColor] of Object.entries(agg.cells)) {
      for (const color of COLORS) {
        const c = byColor[color];
        if (!c) continue;
        rows.push({ instrument, horizon_ms: Number(h), color, count: c.count, avg_bps: avgBps(c.sum_bps_int, c.count), sum_bps_int: c.sum_bps_int, up: c.up, down: c.down });
      }
    }
  }
  return rows.sort((a, b) => a.horizon_ms - b.horizon_ms || COLORS.indexOf(a.color) - COLORS.indexOf(b.color) || compare(a.instrument, b.instrument));
}

/** adverse_fill_rate per instrument and colour: the share of markouts < 0 at `horizonMs` (5 s by default). By instrument, then colour. */
export function adverseFillRates(aggs: Iterable<readonly [string, InstrumentAggregate]>, horizonMs: number): AdverseRow[] {
  const rows: AdverseRow[] = [];
  for (const [instrument, agg] of aggs) {
    for (const color of COLORS) {
      const c = agg.cells[String(horizonMs)]?.[color];
      if (!c) continue;
      rows.push({ instrument, color, horizon_ms: horizonMs, count: c.count, adverse: c.down, adverse_fill_rate: c.count === 0 ? null : c.down / c.count });
    }
  }
  return rows.sort((a, b) => compare(a.instrument, b.instrument) || COLORS.indexOf(a.color) - COLORS.indexOf(b.color));
}

/**
 * The canary markout gate of one instrument (seed M1.1):
 * 1. min-sample guard: unless both colours have ≥ MARKOUT_MIN_SAMPLE markouts
 *    at every gated horizon, the gate is not evaluated (insufficient_sample);
 * 2. breach when delta_h < −cap_h at any gated horizon (green worse than blue
 *    by more than the cap), reason `markout_delta_exceeds`, one hint and one
 *    alert per breached horizon.
 */
export function markoutGate(instrument: string, agg: InstrumentAggregate, config: Pick<MarkoutConfig, 'horizonsMs' | 'gateHorizonsMs' | 'minSample' | 'capBps' | 'capOverrides'>): MarkoutGateVerdict {
  const count = (h: number, color: Color) => agg.cells[String(h)]?.[color]?.count ?? 0;
  const evaluated = config.gateHorizonsMs.every((h) => count(h, 'blue') >= config.minSample && count(h, 'green') >= config.minSample);
  const horizons = config.horizonsMs.map((h): CanaryHorizon => {
    const blue = agg.cells[String(h)]?.blue;
    const green = agg.cells[String(h)]?.green;
    const delta = deltaBps(green, blue);
    const cap = config.gateHorizonsMs.includes(h) ? capFor(config, instrument, h) : null;
    return {
      horizon_ms: h,
      samples_blue: blue?.count ?? 0,
      samples_green: green?.count ?? 0,
      avg_bps_blue: blue ? avgBps(blue.sum_bps_int, blue.count) : null,
      avg_bps_green: green ? avgBps(green.sum_bps_int, green.count) : null,
      delta_bps: delta,
      cap_bps: cap,
      breach: evaluated && cap !== null && delta !== null && delta < -cap,
    };
  });
  const breached = horizons.filter((h) => h.breach);
  return {
    instrument,
    status: !evaluated ? 'insufficient_sample' : breached.length > 0 ? 'breach' : 'pass',
    reasons: breached.length > 0 ? ['markout_delta_exceeds'] : [],
    hints: breached.map((h) => `markout_green_worse_${h.horizon_ms}ms`),
    alerts: breached.map((h) => ({ kind: 'markout_regression', instrument, horizon_ms: h.horizon_ms, delta_bps: h.delta_bps! })),
    horizons,
  };
}

/** markoutGate for every instrument, by instrument. */
export function markoutGates(aggs: Iterable<readonly [string, InstrumentAggregate]>, config: Parameters<typeof markoutGate>[2]): MarkoutGateVerdict[] {
  return [...aggs].sort(([a], [b]) => compare(a, b)).map(([instrument, agg]) => markoutGate(instrument, agg, config));
}

/**
 * The seed's markout snapshot, {"<horizon_ms>": {"<color>": {"<instrument>":
 * {count, avg_bps, sum_bps_int}}}}, as deterministic JSON text: keys sorted
 * (horizons numerically), no spaces, sum_bps_int written as a bare integer of
 * any size (exact; JSON allows it, JavaScript's JSON.parse would round it
 * beyond 2^53).
 */
export function snapshotJson(aggs: Iterable<readonly [string, InstrumentAggregate]>): string {
  const tree = new Map<number, Map<Color, Map<string, AggregateRow>>>();
  for (const r of aggregateRows(aggs)) {
    const byColor = tree.get(r.horizon_ms) ?? tree.set(r.horizon_ms, new Map()).get(r.horizon_ms)!;
    const byInstrument = byColor.get(r.color) ?? byColor.set(r.color, new Map()).get(r.color)!;
    byInstrument.set(r.instrument, r);
  }
  const obj = (entries: string[]) => `{${entries.join(',')}}`;
  return obj([...tree].map(([h, byColor]) => `"${h}":${obj([...byColor].map(([color, byInstrument]) =>
    `"${color}":${obj([...byInstrument].sort(([a], [b]) => compare(a, b)).map(([instrument, r]) =>
      `${JSON.stringify(instrument)}:{"avg_bps":${JSON.stringify(r.avg_bps)},"count":${r.count},"sum_bps_int":${r.sum_bps_int}}`))}`))}`));
}

/** num / den rounded half away from zero; den > 0. */
function roundDiv(num: bigint, den: bigint): bigint {
  const q = (2n * (num < 0n ? -num : num) + den) / (2n * den);
  return num < 0n ? -q : q;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
