/**
 * Data for the schema tests: the bundled recorded day (docs/recorded-day.md)
 * written through the sink's own mappings (TABLES + rowsOf + upsertSql), and
 * the outputs no file holds yet — features, gate decisions, allocations,
 * markouts, calibrations — synthesized from it deterministically:
 *
 * - features: close and log return of each candle, signal = sign of the
 *   15-bar momentum, spread 0.8–1.2 bps with every 7th minute missing;
 * - gate decisions every 5 minutes per instrument: calmar = 1000 × the
 *   60-bar return, eligible when ≥ 0.15 (reason 'calmar' otherwise), and
 *   the gates blob of each evaluation (streams/gates/blob.ts buildGatesBlob);
 * - allocations at each evaluation: the Top-3 eligible by calmar, weights
 *   ∝ calmar scaled to a total of 0.30 and capped at 0.15; no eligible → a
 *   decision without weights; the kill switch is on 10:00–11:00 UTC on Friday;
 * - markouts: each fill at horizons 200 ms … 60 s against the as-of M1 close
 *   (a stand-in for the tick mid);
 * - cost calibrations: one update per fill with made-up EWMAs.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { TABLES, rowsOf, upsertSql, type Allocation, type TableMapping } from '../../../connectors/sink/tables.ts';
import { TOPICS } from '../../../streams/runtime/topics.ts';
import { buildGatesBlob } from '../../../streams/gates/blob.ts';
import type { GateDecision } from '../../../streams/gates/evaluate.ts';
import type { TestDb } from './pglite.ts';

export const DAY_DIR = path.resolve(import.meta.dirname, '..', '..', '..', 'data', 'recorded', '2026-11-13');
export const HORIZONS_MS = [200, 500, 1000, 5000, 60_000] as const;

/** NDJSON records with ISO `ts` turned into epoch ms, as the topics carry them; at most `limit`. */
export async function readRecords(file: string, limit = Infinity): Promise<Record<string, any>[]> {
  const full = path.join(DAY_DIR, file);
  const input = full.endsWith('.gz') ? createReadStream(full).pipe(createGunzip()) : createReadStream(full);
  const lines = createInterface({ input, crlfDelay: Infinity });
  const out: Record<string, any>[] = [];
  for await (const line of lines) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as Record<string, any>;
    if (typeof r.ts === 'string') r.ts = Date.parse(r.ts);
    out.push(r);
    if (out.length >= limit) break;
  }
  lines.close();
  input.destroy();
  return out;
}

/** Writes records the way the sink does: rowsOf each record, multi-row upserts of `per` rows. Returns the rows written. */
export async function writeRecords(t: TestDb, mapping: TableMapping, records: readonly unknown[], runId = 'live', per = 1000): Promise<number> {
  const rows = records.flatMap((r) => rowsOf(mapping, r, runId));
  for (let i = 0; i < rows.length; i += per) {
    const chunk = rows.slice(i, i + per);
    await t.client.query(upsertSql(mapping, chunk.length), chunk.flat());
  }
  return rows.length;
}

const SYNTH_FEATURES = `
INSERT INTO features (run_id, instrument, granularity, ts, bar_index, close, log_return, volume_usd, spread_bps, signal)
SELECT run_id, instrument, granularity, ts,
       row_number() OVER w - 1,
       close,
       ln(close / lag(close) OVER w),
       volume * close,
       CASE WHEN extract(minute FROM ts)::int % 7 = 0 THEN NULL ELSE 0.8 + (extract(minute FROM ts)::int % 5) * 0.1 END,
       coalesce(sign(close - lag(close, 15) OVER w), 0)::smallint
FROM candles
WHERE run_id = $1
WINDOW w AS (PARTITION BY run_id, instrument, granularity ORDER BY ts)`;

const SYNTH_GATES = `
INSERT INTO gate_decisions (run_id, instrument, ts, eligible, raw_pass, trades, calmar, buf, repetition, hazard, span_ok, session_open, cooldown_until, consecutive_misses, reasons)
SELECT run_id, instrument, ts, calmar >= 0.15, calmar >= 0.15, 12, calmar, 0.1, 3, 0.2, true, true, NULL,
       CASE WHEN calmar >= 0.15 THEN 0 ELSE 1 END,
       CASE WHEN calmar >= 0.15 THEN '{}'::text[] ELSE '{calmar}'::text[] END
FROM (SELECT run_id, instrument, ts, coalesce((close / lag(close, 60) OVER w - 1) * 1000, 0) AS calmar
      FROM candles WHERE run_id = $1
      WINDOW w AS (PARTITION BY run_id, instrument ORDER BY ts)) c
WHERE extract(minute FROM ts)::int % 5 = 0`;

const SYNTH_MARKOUTS = `
INSERT INTO markouts (run_id, cid, instrument, fill_ts, horizon_ms, side, price, mid, mid_ts, markout_bps, color)
SELECT f.run_id, f.cid, f.instrument, f.ts, h, f.side, f.price, m.close, m.ts,
       CASE WHEN f.side = 'buy' THEN 1 ELSE -1 END * (m.close - f.price) / f.price * 1e4,
       f.color
FROM fills f
CROSS JOIN unnest($2::int[]) AS h
CROSS JOIN LATERAL (
  SELECT c.close, c.ts FROM candles c
  WHERE c.run_id = f.run_id AND c.instrument = f.instrument AND c.granularity = 'M1'
    AND c.ts <= f.ts + h * interval '1 millisecond'
  ORDER BY c.ts DESC LIMIT 1) m
WHERE f.run_id = $1`;

const SYNTH_CALIBRATIONS = `
INSERT INTO cost_calibrations (run_id, instrument, ts, spread_bps_ewma, volume_usd_ewma, slippage_bps_ewma, fill_rate_ewma, turnover_usd_ewma, k_eff, cap_eff_bps, samples)
SELECT run_id, instrument, ts,
       0.9 + (row_number() OVER w % 10) * 0.01,
       1e6,
       0.5 + (row_number() OVER w % 13) * 0.02,
       0.7,
       qty * price,
       0.001 * (row_number() OVER w % 4),
       2.5,
       row_number() OVER w
FROM fills WHERE run_id = $1
WINDOW w AS (PARTITION BY run_id, instrument ORDER BY ts, cid)
ON CONFLICT DO NOTHING`;

/** Allocation decisions at each gate evaluation time (see the module comment). */
export function synthAllocations(gates: readonly { instrument: string; ts: number; eligible: boolean; calmar: number }[], portfolio = 'main'): Allocation[] {
  const byTs = new Map<number, typeof gates[number][]>();
  for (const g of gates) (byTs.get(g.ts) ?? byTs.set(g.ts, []).get(g.ts)!).push(g);
  const out: Allocation[] = [];
  let seq = 0;
  for (const ts of [...byTs.keys()].sort((a, b) => a - b)) {
    const top = byTs.get(ts)!.filter((g) => g.eligible)
      .sort((a, b) => b.calmar - a.calmar || (a.instrument < b.instrument ? -1 : 1)).slice(0, 3);
    const sum = top.reduce((s, g) => s + g.calmar, 0);
    const weights = top.map((g) => {
      const w = Math.min(0.15, (0.3 * g.calmar) / sum);
      return { instrument: g.instrument, weight: w, reasons: w === 0.15 ? ['capped' as const] : [] };
    });
    const hour = new Date(ts).getUTCHours();
    const friday = new Date(ts).getUTCDay() === 5;
    seq += 1;
    out.push({
      portfolio, seq, ts, interval_sec: 300, weights,
      total: weights.reduce((s, w) => s + w.weight, 0),
      stale: seq % 50 === 0, stale_age_sec: seq % 50 === 0 ? 912.5 : null,
      kill_switch: friday && hour === 10, gates_ts: ts, config_hash: 'cfg-synth-1',
    });
  }
  return out;
}

export interface DayCounts { candles: number; fills: number; orders: number; features: number; gates: number; blobs: number; allocations: number; decisions: number; markouts: number; calibrations: number }

/** The recorded day under `runId` plus the synthesized outputs. */
export async function loadDay(t: TestDb, runId = 'live'): Promise<DayCounts> {
  const candles = await writeRecords(t, TABLES[TOPICS.candles.name]!, await readRecords('candles.ndjson'), runId);
  const fills = await writeRecords(t, TABLES[TOPICS.fills.name]!, await readRecords('fills.ndjson'), runId);
  const orders = await writeRecords(t, TABLES[TOPICS.orders.name]!, await readRecords('orders.ndjson'), runId);
  await t.db.query(SYNTH_FEATURES, [runId]);
  await t.db.query(SYNTH_GATES, [runId]);
  await t.db.query(SYNTH_MARKOUTS, [runId, [...HORIZONS_MS]]);
  await t.db.query(SYNTH_CALIBRATIONS, [runId]);
  const gates = (await t.rows<Omit<GateDecision, 'ts' | 'cooldown_until'> & { ts: Date; cooldown_until: Date | null }>(
    'SELECT * FROM gate_decisions WHERE run_id = $1 ORDER BY ts, instrument', [runId]))
    .map(({ run_id: _, ...g }: Record<string, any>) => ({ ...g, ts: g.ts.getTime(), cooldown_until: g.cooldown_until?.getTime() ?? null }) as GateDecision);
  const byTs = new Map<number, GateDecision[]>();
  for (const g of gates) (byTs.get(g.ts) ?? byTs.set(g.ts, []).get(g.ts)!).push(g);
  const blobs = await writeRecords(t, TABLES[TOPICS.gatesBlob.name]!, [...byTs].map(([ts, ds]) => buildGatesBlob(ts, ds)), runId);
  const decisions = synthAllocations(gates);
  const allocations = await writeRecords(t, TABLES[TOPICS.allocations.name]!, decisions, runId);
  const count = async (table: string) => Number((await t.rows<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE run_id = $1`, [runId]))[0]!.n);
  return {
    candles, fills, orders, blobs, allocations, decisions: decisions.length,
    features: await count('features'), gates: gates.length, markouts: await count('markouts'), calibrations: await count('cost_calibrations'),
  };
}
