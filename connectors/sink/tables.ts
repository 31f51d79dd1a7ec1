/**
 * How each topic lands in TimescaleDB: target table, columns in order, the
 * conflict key for idempotent upsert, and the record → row mapping. Timestamps
 * travel as ISO-8601 strings so timestamptz gets the exact millisecond.
 */
import { TOPICS } from '../../streams/runtime/topics.ts';
import type { Candle } from '../../streams/model/records.ts';
import type { Feature } from '../../streams/features/features.ts';
import type { Markout } from '../../streams/markout/markout.ts';
import type { CostCalibration } from '../../streams/calibration/calibration.ts';

export interface TableMapping<T = any> {
  topic: string;
  table: string;
  columns: readonly string[];
  conflictKey: readonly string[];
  row(value: T, runId: string): unknown[];
}

const iso = (ms: number) => new Date(ms).toISOString();

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
};

/** INSERT … VALUES (…), (…) ON CONFLICT (key) DO UPDATE: a redelivered record rewrites the same row. */
export function upsertSql(m: TableMapping, rows: number): string {
  const n = m.columns.length;
  const values = Array.from({ length: rows }, (_, r) => `(${m.columns.map((_, c) => `$${r * n + c + 1}`).join(', ')})`).join(', ');
  const updates = m.columns.filter((c) => !m.conflictKey.includes(c)).map((c) => `${c} = EXCLUDED.${c}`).join(', ');
  return `INSERT INTO ${m.table} (${m.columns.join(', ')}) VALUES ${values} ON CONFLICT (${m.conflictKey.join(', ')}) DO UPDATE SET ${updates}`;
}
