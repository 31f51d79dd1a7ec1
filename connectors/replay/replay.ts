/**
 * Replay (DESIGN §8, issue 8): a time range of the input topics through the
 * pipeline again, as an isolated run.
 *
 * - **Isolated.** The run's consumer groups carry its run id (as every run's
 *   do) and everything it produces goes to its own topic namespace
 *   `<SEP_TOPIC_PREFIX>replay.<run id>.` (SEP_OUTPUT_PREFIX,
 *   streams/runtime/topics.ts): a consumer of the live alloc.weights.v1 (the
 *   executor) never sees a replay's decisions. It writes no Redis key, and
 *   its rows in TimescaleDB carry its run id.
 * - **Bounded.** Each input partition starts at its first record at or after
 *   T1 and stops before its first record at or after T2 (Kafka's ListOffsets
 *   by timestamp): the range as the log holds it. A record with a timestamp
 *   outside the range but between those offsets (late data) is replayed, as
 *   the live run saw it.
 * - **Clean.** State starts empty (or from a calibration snapshot); nothing
 *   of the run id may exist beforehand — checked before anything is created.
 *
 * This module holds the parts that talk to Kafka and the database;
 * src/cli/replay.ts sequences them.
 */
import type pg from 'pg';
import type { Admin } from '../../streams/runtime/kafka.ts';
import { TOPICS, TOPIC_PREFIX } from '../../streams/runtime/topics.ts';
import { SepError, UsageError } from '../../streams/runtime/errors.ts';

/** The topic namespace of a replay's outputs. */
export const replayNamespace = (runId: string) => `${TOPIC_PREFIX}replay.${runId}.`;

/** The topics a replay reads (in the live namespace) and bounds by the range. */
export const REPLAY_INPUTS: readonly string[] = [TOPICS.candles.name, TOPICS.ticks.name, TOPICS.orders.name, TOPICS.fills.name, TOPICS.allocationOverlay.name];

/** Why a replay cannot run as asked (a range without data, a run id in use); nothing was created. */
export class ReplayRefusedError extends SepError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

export type Offsets = Map<string, Map<number, bigint>>;

export interface ReplayRange {
  from: number;
  to: number;
  /** Per input topic and partition: the first offset at or after `from`. */
  starts: Offsets;
  /** Per input topic and partition: the first offset at or after `to` (the run stops before it). */
  stops: Offsets;
  /** Records in the range per input topic (offsets between start and stop: records, plus any transaction markers). */
  records: Record<string, number>;
}

/**
 * Finds the range's offsets on every input topic. Refused when an input
 * topic does not exist or the range holds no candle, tick, order or fill.
 */
export async function planRange(admin: Admin, from: number, to: number, topics: readonly string[] = REPLAY_INPUTS): Promise<ReplayRange> {
  if (!(from < to)) throw new UsageError(`--from ${new Date(from).toISOString()} is not before --to ${new Date(to).toISOString()}: the range is [from, to)`);
  const existing = new Set(await admin.listTopics());
  // The overlay topic exists once `sep overlays` or a run created it; without it there is no overlay to replay.
  const optional = new Set([TOPICS.allocationOverlay.name]);
  const missing = topics.filter((t) => !existing.has(t) && !optional.has(t));
  if (missing.length) throw new ReplayRefusedError(`no topic ${missing.join(', ')}${TOPIC_PREFIX ? ` (SEP_TOPIC_PREFIX=${TOPIC_PREFIX})` : ''}: import a recorded day first (\`sep import data/recorded/2026-11-13\`) or check SEP_TOPIC_PREFIX`);
  const starts: Offsets = new Map();
  const stops: Offsets = new Map();
  const records: Record<string, number> = {};
  const totals: Record<string, number> = {};
  for (const topic of topics.filter((t) => existing.has(t))) {
    const at = async (ts: number) => new Map((await admin.fetchTopicOffsetsByTimestamp(topic, ts)).map((o) => [o.partition, BigInt(o.offset)] as const));
    const start = await at(from);
    const stop = await at(to);
    starts.set(topic, start);
    stops.set(topic, stop);
    records[topic] = [...stop].reduce((n, [p, off]) => n + Number(off - (start.get(p) ?? off)), 0);
    totals[topic] = (await admin.fetchTopicOffsets(topic)).reduce((n, o) => n + Number(BigInt(o.high) - BigInt(o.low)), 0);
  }
  const data = topics.filter((t) => t !== TOPICS.allocationOverlay.name);
  if (data.every((t) => records[t] === 0)) {
    throw new ReplayRefusedError(`no records with timestamps in [${new Date(from).toISOString()}, ${new Date(to).toISOString()}) on ${data.join(', ')} ` +
      `(they hold ${data.map((t) => `${totals[t]!.toLocaleString('en-US')}`).join(', ')} records in all): check --from and --to against the recorded days you imported`);
  }
  return { from, to, starts, stops, records };
}

/** What already carries the run id: its consumer groups, its topics, its runs row. Empty when the id is free. */
export async function runIdUses(admin: Admin, db: pg.ClientBase, runId: string): Promise<string[]> {
  const uses: string[] = [];
  const { rows } = await db.query<{ kind: string; status: string; started_at: Date }>('SELECT kind, status, started_at FROM runs WHERE run_id = $1', [runId]);
  for (const r of rows) uses.push(`a ${r.kind} run in TimescaleDB (runs: status ${r.status}, started ${r.started_at.toISOString()})`);
  const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`${TOPIC_PREFIX}sep-`) && g.endsWith(`-${runId}`));
  if (groups.length) uses.push(`consumer groups ${groups.sort().join(', ')}`);
  const ns = replayNamespace(runId);
  const appPrefixes = [`${TOPIC_PREFIX}sep-features-${runId}-`, `${TOPIC_PREFIX}sep-gates-blob-${runId}-`];
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(ns) || appPrefixes.some((p) => t.startsWith(p)));
  if (topics.length) uses.push(`${topics.length} topic(s) (${topics.sort().slice(0, 3).join(', ')}${topics.length > 3 ? ', …' : ''})`);
  return uses;
}

/** {topic: {partition: offset}} as JSON-friendly strings (runs.end_offsets, summaries). */
export function offsetsJson(offsets: Offsets): Record<string, Record<string, string>> {
  return Object.fromEntries([...offsets].map(([t, parts]) => [t, Object.fromEntries([...parts].map(([p, off]) => [p, off.toString()]))]));
}
