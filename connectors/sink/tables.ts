/**
 * How each topic lands in TimescaleDB: target table, columns in order, the
 * conflict key for idempotent upsert, and the record → row mapping. Timestamps
 * travel as ISO-8601 strings so timestamptz gets the exact millisecond; text[]
 * columns as string arrays, jsonb as JSON text (both node-postgres and PGlite
 * pass a string through to jsonb unchanged).
 */
import { TOPICS } from '../../streams/runtime/topics.ts';
import { UsageError } from '../../streams/runtime/errors.ts';
import type { Candle, Fill, OrderEvent, Tick } from '../../streams/model/records.ts';
import type { Feature } from '../../streams/features/features.ts';
import type { Markout } from '../../streams/markout/markout.ts';
import type { CostCalibration } from '../../streams/calibration/calibration.ts';
import type { GateDecision } from '../../streams/gates/evaluate.ts';
import type { GatesBlob } from '../../streams/gates/blob.ts';
import type { AllocationOverlay } from '../../streams/allocation/overlay.ts';
import type { AllocationDecision } from '../../streams/allocation/allocator.ts';

export interface TableMapping<T = any> {
  topic: string;
  table: string;
  columns: readonly string[];
  conflictKey: readonly string[];
  /** One record → one row. A mapping that has `rows` throws here: use rowsOf(). */
  row(value: T, runId: string): unknown[];
  /**
   * One record → any number of rows (alloc.weights.v1: one per instrument
   * weight). Present only on such mappings; rowsOf() picks whichever applies.
   */
  rows?(value: T, runId: string): unknown[][];
}

/** The rows one record becomes in its table: `rows()` when the mapping has it, else `[row()]`. */
export function rowsOf<T>(m: TableMapping<T>, value: T, runId: string): unknown[][] {
  return m.rows ? m.rows(value, runId) : [m.row(value, runId)];
}

/** alloc.weights.v1 (schemas/avro/allocation.avsc), as allocator-lite produces it. */
export type Allocation = AllocationDecision;

/** The allocations row of a decision without weights: every seq is in the table (sql/timescale/006). */
export const NO_INSTRUMENT = '';

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));
/** Keys of a blob map whose value passes `keep`, in code-unit order (as buildGatesBlob writes them). */
const keysWhere = <V>(map: Record<string, V>, keep: (v: V) => boolean) =>
  Object.keys(map).filter((k) => keep(map[k]!)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

export const TABLES: Record<string, TableMapping> = {
  [TOPICS.candles.name]: {
    topic: TOPICS.candles.name,
    table: 'candles',
    columns: ['run_id', 'instrument', 'granularity', 'ts', 'open', 'high', 'low', 'close', 'volume', 'complete'],
    conflictKey: ['run_id', 'instrument', 'granularity', 'ts'],
    row: (c: Candle, runId) => [runId, c.instrument, c.granularity, iso(c.ts), c.open, c.high, c.low, c.close, c.volume, c.complete],
  },
  [TOPICS.features.name]: {
    topic: TOPICS.features.name,
    table: 'features',
    columns: ['run_id', 'instrument', 'granularity', 'ts', 'bar_index', 'close', 'log_return', 'ewma_vol', 'true_range', 'atr14', 'volume_usd', 'spread_bps', 'entropy', 'coherence', 'rupture', 'stability', 'hazard', 'repetition', 'signal'],
    conflictKey: ['run_id', 'instrument', 'granularity', 'ts'],
    row: (f: Feature, runId) => [runId, f.instrument, f.granularity, iso(f.ts), f.bar_index, f.close, f.log_return, f.ewma_vol, f.true_range, f.atr14, f.volume_usd, f.spread_bps, f.entropy, f.coherence, f.rupture, f.stability, f.hazard, f.repetition, f.signal],
  },
  [TOPICS.markouts.name]: {
    topic: TOPICS.markouts.name,
    table: 'markouts',
    columns: ['run_id', 'cid', 'instrument', 'fill_ts', 'horizon_ms', 'side', 'price', 'mid', 'mid_ts', 'markout_bps', 'color'],
    conflictKey: ['run_id', 'instrument', 'cid', 'horizon_ms', 'fill_ts'],
    row: (m: Markout, runId) => [runId, m.cid, m.instrument, iso(m.fill_ts), m.horizon_ms, m.side, m.price, m.mid, iso(m.mid_ts), m.markout_bps, m.color],
  },
  [TOPICS.costCalibration.name]: {
    topic: TOPICS.costCalibration.name,
    table: 'cost_calibrations',
    columns: ['run_id', 'instrument', 'ts', 'spread_bps_ewma', 'volume_usd_ewma', 'slippage_bps_ewma', 'fill_rate_ewma', 'turnover_usd_ewma', 'k_eff', 'cap_eff_bps', 'samples'],
    conflictKey: ['run_id', 'instrument', 'ts'],
    row: (c: CostCalibration, runId) => [runId, c.instrument, iso(c.ts), c.spread_bps_ewma, c.volume_usd_ewma, c.slippage_bps_ewma, c.fill_rate_ewma, c.turnover_usd_ewma, c.k_eff, c.cap_eff_bps, c.samples],
  },
  [TOPICS.ticks.name]: {
    topic: TOPICS.ticks.name,
    table: 'ticks',
    columns: ['run_id', 'instrument', 'ts', 'bid', 'ask', 'bid_size', 'ask_size'],
    // Two quotes in one millisecond share a key: the later one stands, as in the markout as-of join.
    conflictKey: ['run_id', 'instrument', 'ts'],
    row: (t: Tick, runId) => [runId, t.instrument, iso(t.ts), t.bid, t.ask, t.bid_size, t.ask_size],
  },
  [TOPICS.orders.name]: {
    topic: TOPICS.orders.name,
    table: 'orders',
    columns: ['run_id', 'cid', 'instrument', 'ts', 'kind', 'side', 'price', 'qty', 'color'],
    conflictKey: ['run_id', 'instrument', 'cid', 'kind', 'ts'],
    row: (o: OrderEvent, runId) => [runId, o.cid, o.instrument, iso(o.ts), o.kind, o.side, o.price, o.qty, o.color],
  },
  [TOPICS.fills.name]: {
    topic: TOPICS.fills.name,
    table: 'fills',
    columns: ['run_id', 'cid', 'instrument', 'ts', 'side', 'price', 'qty', 'fee_bps', 'liquidity', 'color'],
    conflictKey: ['run_id', 'instrument', 'cid', 'ts'],
    row: (f: Fill, runId) => [runId, f.cid, f.instrument, iso(f.ts), f.side, f.price, f.qty, f.fee_bps, f.liquidity, f.color],
  },
  [TOPICS.gates.name]: {
    topic: TOPICS.gates.name,
    table: 'gate_decisions',
    columns: ['run_id', 'instrument', 'ts', 'eligible', 'raw_pass', 'trades', 'calmar', 'buf', 'repetition', 'hazard', 'span_ok', 'session_open', 'cooldown_until', 'consecutive_misses', 'reasons'],
    conflictKey: ['run_id', 'instrument', 'ts'],
    row: (g: GateDecision, runId) => [runId, g.instrument, iso(g.ts), g.eligible, g.raw_pass, g.trades, g.calmar, g.buf, g.repetition, g.hazard, g.span_ok, g.session_open, isoOrNull(g.cooldown_until), g.consecutive_misses, [...g.reasons]],
  },
  [TOPICS.gatesBlob.name]: {
    topic: TOPICS.gatesBlob.name,
    table: 'gates_blobs',
    columns: ['run_id', 'ts', 'instruments', 'eligible', 'eligible_count', 'cooldowns', 'span_ok', 'payload'],
    conflictKey: ['run_id', 'ts'],
    row: (b: GatesBlob, runId) => {
      const eligible = keysWhere(b.gates, (v) => v);
      return [runId, iso(b.ts), Object.keys(b.gates).length, eligible, eligible.length, keysWhere(b.cooldowns, () => true), Object.values(b.span_ok).every((v) => v), JSON.stringify(b)];
    },
  },
  [TOPICS.allocations.name]: {
    topic: TOPICS.allocations.name,
    table: 'allocations',
    columns: ['run_id', 'portfolio', 'seq', 'ts', 'instrument', 'weight', 'reasons', 'interval_sec', 'total', 'stale', 'stale_age_sec', 'kill_switch', 'gates_ts', 'config_hash'],
    conflictKey: ['run_id', 'portfolio', 'seq', 'instrument', 'ts'],
    row: () => {
      throw new UsageError(`${TOPICS.allocations.name} maps one record to one row per instrument weight; write rowsOf(mapping, value, runId), not mapping.row()`);
    },
    // Long form (DESIGN §7); a decision without weights becomes one NO_INSTRUMENT row of weight 0.
    rows: (a: Allocation, runId) => {
      const weights = a.weights.length > 0 ? a.weights : [{ instrument: NO_INSTRUMENT, weight: 0, reasons: [] }];
      return weights.map((w) => [runId, a.portfolio, a.seq, iso(a.ts), w.instrument, w.weight, [...w.reasons], a.interval_sec, a.total, a.stale, a.stale_age_sec, a.kill_switch, isoOrNull(a.gates_ts), a.config_hash]);
    },
  },
  [TOPICS.allocationOverlay.name]: {
    topic: TOPICS.allocationOverlay.name,
    table: 'allocation_overlays',
    columns: ['run_id', 'ts', 'instrument', 'range_from', 'timeframe', 'cluster', 'hrp_weight', 'scale', 'cvar', 'cvar_scope', 'max_weight', 'dropped', 'config_hash'],
    conflictKey: ['run_id', 'instrument', 'ts'],
    row: () => { throw new UsageError('alloc.overlay.v1 maps to one row per instrument: use rowsOf()'); },
    rows: (o: AllocationOverlay, runId) => o.instruments.map((i) => [runId, iso(o.ts), i.instrument, iso(o.from), o.timeframe, i.cluster, i.hrp_weight, i.scale, i.cvar, i.cvar_scope, i.max_weight, i.dropped, o.config_hash]),
  },
};

/** INSERT … VALUES (…), (…) ON CONFLICT (key) DO UPDATE: a redelivered record rewrites the same row. */
export function upsertSql(m: TableMapping, rows: number): string {
  const n = m.columns.length;
  const values = Array.from({ length: rows }, (_, r) => `(${m.columns.map((_, c) => `$${r * n + c + 1}`).join(', ')})`).join(', ');
  const updates = m.columns.filter((c) => !m.conflictKey.includes(c)).map((c) => `${c} = EXCLUDED.${c}`).join(', ');
  return `INSERT INTO ${m.table} (${m.columns.join(', ')}) VALUES ${values} ON CONFLICT (${m.conflictKey.join(', ')}) DO UPDATE SET ${updates}`;
}
