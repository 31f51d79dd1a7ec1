/**
 * `sep overlays`: the allocation overlay — HRP cluster budget and scales,
 * CVaR caps (docs/overlays.md) — as of one time or of each day start in a
 * range, from the hourly candles in TimescaleDB; published on
 * alloc.overlay.v1 (allocator-lite applies the latest from its timestamp on),
 * Redis `hrp:budget:<YYYYMMDD>` and `cvar:<SYM>:<TF>` (under SEP_TOPIC_PREFIX).
 */
import type pg from 'pg';
import { UsageError } from '../../streams/runtime/errors.ts';
import { createProducer } from '../../streams/runtime/kafka.ts';
import { TOPICS, TOPIC_PREFIX } from '../../streams/runtime/topics.ts';
import { resolveOverlayConfig, HRP_BARS_PER_DAY } from '../../streams/allocation/overlay-config.ts';
import { computeOverlay, type AllocationOverlay } from '../../streams/allocation/overlay.ts';
import { hrpBudgetFields, hrpBudgetKey } from '../../streams/allocation/hrp.ts';
import { cvarKey } from '../../streams/allocation/cvar.ts';
import { configFingerprint } from '../../connectors/sink/runs.ts';
import { connectDatabase, connectRedis, connectServices } from '../pipeline/services.ts';
import { runIdFlag, type Command } from './command.ts';

const DAY_MS = 86_400_000;
const log = (line: string) => console.log(line);

function timeFlag(flag: string, v: string | boolean | undefined): number | undefined {
  if (v === undefined) return undefined;
  const ms = Date.parse(String(v));
  if (!Number.isFinite(ms) || ms % 3_600_000 !== 0) throw new UsageError(`--${flag} ${JSON.stringify(v)}: give an hour-aligned ISO-8601 UTC time, e.g. 2026-11-16T00:00:00Z`);
  return ms;
}

/** The as-of times: --as-of, or each day start in [--from, --to], or the current hour. */
export function asOfTimes(v: { 'as-of'?: string | boolean; from?: string | boolean; to?: string | boolean }, now = Date.now()): number[] {
  const at = timeFlag('as-of', v['as-of']);
  const from = timeFlag('from', v.from);
  const to = timeFlag('to', v.to);
  if (at !== undefined && (from !== undefined || to !== undefined)) throw new UsageError('give --as-of, or --from and --to, not both');
  if ((from === undefined) !== (to === undefined)) throw new UsageError('--from and --to go together: the overlay is computed as of each day start between them');
  if (from !== undefined && to !== undefined) {
    if (to < from) throw new UsageError(`--to ${new Date(to).toISOString()} is before --from ${new Date(from).toISOString()}`);
    const out: number[] = [];
    for (let t = Math.ceil(from / DAY_MS) * DAY_MS; t <= to; t += DAY_MS) out.push(t);
    if (out.length === 0) throw new UsageError('no day start between --from and --to; widen the range or use --as-of');
    if (out.length > 366) throw new UsageError(`${out.length} days: at most 366 per call`);
    return out;
  }
  return [at ?? Math.floor(now / 3_600_000) * 3_600_000];
}

/** Hourly closes of the run's instruments in [from, asOf), as a bars × instruments matrix (NaN = no bar). */
async function hourlyCloses(db: pg.ClientBase, runId: string, from: number, asOf: number): Promise<{ instruments: string[]; closes: number[][] }> {
  const { rows } = await db.query<{ instrument: string; t: string; close: number }>(
    `SELECT instrument, extract(epoch FROM period_start) * 1000 AS t, close FROM candles_1h
     WHERE run_id = $1 AND period_start >= $2 AND period_end <= $3 ORDER BY period_start, instrument`,
    [runId, new Date(from).toISOString(), new Date(asOf).toISOString()]);
  const instruments = [...new Set(rows.map((r) => r.instrument))].sort();
  const col = new Map(instruments.map((i, j) => [i, j]));
  const byTime = new Map<number, number[]>();
  for (const r of rows) {
    const t = Number(r.t);
    let row = byTime.get(t);
    if (!row) byTime.set(t, (row = instruments.map(() => NaN)));
    row[col.get(r.instrument)!] = r.close;
  }
  return { instruments, closes: [...byTime.entries()].sort(([a], [b]) => a - b).map(([, row]) => row) };
}

/** The weights in force at `asOf` (the latest allocation decision at or before it): the open risk HRP scales by. */
async function openRisk(db: pg.ClientBase, runId: string, portfolio: string, asOf: number): Promise<Record<string, number>> {
  const { rows } = await db.query<{ instrument: string; weight: number }>(
    `SELECT instrument, weight FROM allocations WHERE run_id = $1 AND portfolio = $2 AND instrument <> ''
       AND seq = (SELECT max(seq) FROM allocations WHERE run_id = $1 AND portfolio = $2 AND ts <= $3)`,
    [runId, portfolio, new Date(asOf).toISOString()]);
  return Object.fromEntries(rows.map((r) => [r.instrument, r.weight]));
}

export const overlaysCmd: Command = {
  usage: `usage: sep overlays [--as-of T | --from T1 --to T2] [--run-id ID] [--portfolio P] [--dry-run]
  The allocation overlay (HRP cluster budget and scales, CVaR caps; docs/overlays.md)
  as of T (default: the current hour) or of each day start in [T1, T2], from the
  run's hourly candles in TimescaleDB (HRP_LOOKBACK_D days before it) and the
  weights in force then (open risk). Published on alloc.overlay.v1 (allocator-lite
  applies the latest from its timestamp on), Redis hrp:budget:<YYYYMMDD> and
  cvar:<SYM>:<TF>. --dry-run prints the overlay and publishes nothing.
  --run-id ID     whose candles and allocations (default live)
  --portfolio P   whose weights are the open risk (default main)`,
  options: { 'as-of': { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, 'run-id': { type: 'string' }, portfolio: { type: 'string' }, 'dry-run': { type: 'boolean' } },
  async run(v) {
    const times = asOfTimes(v);
    const runId = runIdFlag(v['run-id'], 'live');
    const portfolio = String(v.portfolio ?? 'main');
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(portfolio)) throw new UsageError(`--portfolio ${JSON.stringify(portfolio)}: use 1–64 letters, digits, '.', '_' or '-' (the ALLOC_PORTFOLIO of the run)`);
    const config = resolveOverlayConfig();
    if (config.hrp.timeframe !== '1h') throw new UsageError(`HRP_TIMEFRAME=${config.hrp.timeframe}: sep overlays reads candles_1h; use 1h`);
    const { hash } = configFingerprint(config);
    const lookbackMs = config.hrp.lookbackDays * DAY_MS;
    const services = await connectServices({ clientId: 'sep-overlays', log });
    const db = await connectDatabase(services.urls.DATABASE_URL);
    const overlays: AllocationOverlay[] = [];
    try {
      for (const asOf of times) {
        const from = asOf - lookbackMs;
        const { instruments, closes } = await hourlyCloses(db, runId, from, asOf);
        if (instruments.length === 0) throw new UsageError(`no hourly candles for run ${runId} in ${new Date(from).toISOString()} … ${new Date(asOf).toISOString()}; import and run that range first, or pick another --run-id / time`);
        const overlay = computeOverlay({ asOf, from, instruments, closes, openRisk: await openRisk(db, runId, portfolio, asOf), configHash: hash }, config);
        overlays.push(overlay);
        const cvars = overlay.instruments.filter((i) => i.cvar !== null).length;
        log(`overlay as of ${new Date(asOf).toISOString()}: ${closes.length} of ${config.hrp.lookbackDays * HRP_BARS_PER_DAY['1h']} hourly bars, ${instruments.length} instruments, clusters ${Object.entries(overlay.budget).map(([c, b]) => `${c} ${b.max_equity_risk.toFixed(4)} × ${b.scale.toFixed(2)}`).join(', ')}; CVaR for ${cvars}`);
      }
    } finally {
      await db.end();
    }
    if (v['dry-run']) {
      console.log(JSON.stringify(overlays, null, 2));
      await services.close();
      return 0;
    }
    const redis = await connectRedis(services.urls.REDIS_URL);
    const producer = await createProducer(services.kafka);
    try {
      for (const o of overlays) {
        await producer.send({ topic: TOPICS.allocationOverlay.name, acks: -1, messages: [{ key: 'overlay', value: services.serde.encode(TOPICS.allocationOverlay.name, o), timestamp: String(o.ts) }] });
        const budgetKey = `${TOPIC_PREFIX}${hrpBudgetKey(o.ts)}`;
        await redis.multi().del(budgetKey).hset(budgetKey, hrpBudgetFields(o.budget)).exec();
        for (const i of o.instruments) {
          if (i.cvar === null) continue;
          await redis.set(`${TOPIC_PREFIX}${cvarKey(i.instrument, o.timeframe)}`, JSON.stringify({ alpha: config.cvar.alpha, cvar_r: i.cvar, last_update: new Date(o.ts).toISOString().replace(/\.000Z$/, 'Z'), mode: config.cvar.mode, scope: i.cvar_scope }));
        }
      }
      log(`published ${overlays.length} overlay(s) on ${TOPICS.allocationOverlay.name}, ${overlays.length} ${TOPIC_PREFIX}hrp:budget:<YYYYMMDD> hash(es) and the cvar:<SYM>:${config.hrp.timeframe} keys`);
    } finally {
      await producer.disconnect();
      redis.disconnect();
      await services.close();
    }
    return 0;
  },
};
