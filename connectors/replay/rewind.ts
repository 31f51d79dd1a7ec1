/**
 * Rewind (DESIGN §8, issue 8): moves every consumer of one pipeline run back
 * to a time T, together, the way Kafka's application reset tool
 * (kafka-streams-application-reset, StreamsResetter) resets one Streams app:
 *
 * - Topics the run reads but does not produce (market data, executions) go
 *   to the first offset whose timestamp is at or after T (ListOffsets by
 *   timestamp; past the end → the end offset).
 * - Topics the run produces and reads again (gates.partial.v1 for the blob
 *   stage, the outputs for the sink) go to their end: the rewound apps write
 *   those records again, and what the first pass wrote there is superseded
 *   (StreamsResetter's "intermediate topics: seek to end").
 * - The apps' state is deleted (every store's changelog topic, the runtime's
 *   stream-time store included): it restarts clean at T, as after the reset
 *   tool. State *as of* T cannot be rebuilt: a store logs one write per key
 *   per transaction (streams/runtime/stores.ts) and compaction drops older
 *   ones, so the value a key had at T is generally gone.
 * - The sink's offsets live in TimescaleDB (sink_offsets, written with the
 *   rows: exactly-once), so the run's rows at or after T are deleted from
 *   every table and sink_offsets moved in ONE database transaction. The re-run
 *   writes them again: no duplicates (and the upsert keys guard too), and no
 *   row of the first pass at or after T survives beside them.
 * - The Redis mirrors (`keep`) stay where they are: they are newer-wins read
 *   models and read what the re-run writes after what they had.
 *
 * Refused (RewindRefusedError, nothing changed) while any of the run's
 * consumer groups has members; when a consumer has not yet processed records
 * before T (moving it would skip them); when the run processed nothing at or
 * after T (only its state would be lost). Applying is idempotent: a second
 * rewind to the same T finds nothing to do.
 */
import type pg from 'pg';
import type { Kafka } from 'kafkajs';
import type { Admin } from '../../streams/runtime/kafka.ts';
import { SepError } from '../../streams/runtime/errors.ts';

/** Where a consumer's offsets on a topic go: `datetime` to T, `end` to the end, `keep` unchanged. */
export type ResetRule = 'datetime' | 'end' | 'keep';

/** One consumer group of a run, as the caller (the CLI, which knows the pipeline's wiring) describes it. */
export interface RunConsumer {
  groupId: string;
  /** What it is, for the plan: "features app", "sink", "Redis mirror". */
  role: string;
  /** Where its committed offsets live: the Kafka group, or TimescaleDB sink_offsets (the sink; Kafka holds a copy). */
  offsetsIn: 'kafka' | 'database';
  topics: readonly { topic: string; rule: ResetRule }[];
  /** Changelog topics of its state stores (deleted: state restarts clean). */
  changelogs: readonly string[];
}

export interface RewindTarget {
  runId: string;
  consumers: readonly RunConsumer[];
  /** Hypertables holding the run's rows (a `run_id` column); their time column is read from TimescaleDB. */
  tables: readonly string[];
}

export interface RewindDeps {
  admin: Admin;
  /** For committing a group's new offsets (applyRewind). */
  kafka: Kafka;
  /** Opened only after the groups are known to be idle (the embedded TimescaleDB takes one connection, a running `sep run` holds it). */
  db: () => Promise<pg.ClientBase>;
  /** Epoch ms (default Date.now): T must not be after it. */
  now?: () => number;
}

/** Why a rewind cannot go ahead as asked; the message names what is in the way and the fix. Nothing was changed. */
export class RewindRefusedError extends SepError {
  constructor(message: string) {
    // No closer code in the closed list: like a usage problem, but about the run's state (exit 1, not 2).
    super('USAGE', message);
  }
}

/** A consumer group as Kafka describes it; `absent` when Kafka does not know it. */
export interface GroupStatus {
  groupId: string;
  state: string;
  members: readonly { clientId: string; clientHost: string; memberId?: string }[];
}

export interface PartitionFacts {
  topic: string;
  partition: number;
  rule: ResetRule;
  /** Next offset the consumer would read, as committed; null when nothing is committed. */
  committed: bigint | null;
  /** First offset with a timestamp at or after T (the end offset when there is none). */
  atTime: bigint;
  /** The end offset (high watermark). */
  end: bigint;
}

export interface ConsumerFacts {
  consumer: RunConsumer;
  partitions: PartitionFacts[];
}

/** Everything the plan depends on, gathered by planRewind (or given by a test). */
export interface RewindFacts {
  runId: string;
  /** T, epoch ms. */
  to: number;
  consumers: ConsumerFacts[];
  /** Existing changelog topics of the run's consumers, with their record count (sum of high − low). */
  changelogs: { topic: string; records: bigint }[];
  /** The run's rows at or after T per table. */
  rows: { table: string; timeColumn: string; count: number }[];
}

export interface OffsetMove {
  groupId: string;
  role: string;
  offsetsIn: 'kafka' | 'database';
  topic: string;
  partition: number;
  rule: ResetRule;
  from: bigint | null;
  /** Equal to `from` (or null) when the offset stays. */
  to: bigint | null;
  /** Why it goes there (or stays), for the plan: "to T", "to end", "already at T", … */
  reason: string;
}

export interface RewindPlan {
  runId: string;
  to: number;
  /** Every partition of every consumer, moved or not. */
  offsets: OffsetMove[];
  deleteTopics: { topic: string; records: bigint }[];
  rows: { table: string; timeColumn: string; count: number }[];
  /** Non-empty: the rewind would be wrong as asked; applyRewind refuses. */
  refusals: string[];
}

export interface RewindResult {
  offsetsMoved: number;
  groups: string[];
  topicsDeleted: string[];
  rowsDeleted: { table: string; count: number }[];
}

const iso = (ms: number) => new Date(ms).toISOString();
const isMove = (m: OffsetMove) => m.to !== null && m.to !== m.from;
/** Longest wait for deleted topics to disappear from the metadata, ms. */
const TOPIC_DELETION_TIMEOUT_MS = 30_000;

/** The problem with a run whose groups still have members, or undefined when every group is Empty, Dead or absent. */
export function activeGroupsProblem(runId: string, groups: readonly GroupStatus[]): string | undefined {
  const active = groups.filter((g) => !['Empty', 'Dead', 'absent'].includes(g.state));
  if (active.length === 0) return undefined;
  const lines = active.map((g) => {
    const members = g.members.length === 0 ? 'no members listed yet'
      : g.members.map((m) => `${m.clientId} on ${m.clientHost.replace(/^\//, '')}`).join(', ');
    return `  ${g.groupId} (${g.state}): ${members}`;
  });
  return `run ${runId} is running: ${active.length} of its consumer groups ${active.length === 1 ? 'has' : 'have'} active members\n${lines.join('\n')}\n` +
    `stop \`sep run --run-id ${runId}\` (and any \`sep sink --run-id ${runId}\`) first, then rewind; a member that crashed leaves its group once its session times out (10 s)`;
}

/**
 * The plan from the facts (pure). A consumer with state is refused when it
 * has not reached T on a partition (its state is deleted, so it could not
 * carry on from where it stopped); one without state (the sink) simply stays
 * there on `datetime` topics. On `end` topics, records before T not yet
 * processed would be skipped: refused.
 */
export function computeRewindPlan(facts: RewindFacts): RewindPlan {
  const T = iso(facts.to);
  const offsets: OffsetMove[] = [];
  const refusals: string[] = [];
  for (const { consumer: c, partitions } of facts.consumers) {
    const stateful = c.changelogs.length > 0;
    const notReached: string[] = [];
    const skipped: string[] = [];
    for (const p of partitions) {
      const base = { groupId: c.groupId, role: c.role, offsetsIn: c.offsetsIn, topic: p.topic, partition: p.partition, rule: p.rule, from: p.committed };
      const behind = (p.committed ?? 0n) < p.atTime;
      let to: bigint | null = p.committed;
      let reason: string;
      if (p.rule === 'keep') {
        reason = 'kept (Redis read model, newer wins)';
      } else if (behind) {
        const where = `${p.topic}[${p.partition}] at ${p.committed ?? 'none'}, T at ${p.atTime}`;
        if (p.rule === 'end') skipped.push(where);
        else if (stateful) notReached.push(where);
        reason = p.rule === 'datetime' && !stateful ? 'before T: goes on from here' : 'refused';
      } else {
        to = p.rule === 'datetime' ? p.atTime : p.end;
        reason = p.rule === 'datetime' ? 'to T' : 'to end';
      }
      // Nothing committed and nothing to skip: left uncommitted (it starts from the beginning either way).
      if (p.committed === null && to === 0n) to = null;
      if (to === p.committed && reason.startsWith('to ')) reason = reason.replace('to ', 'already at ');
      offsets.push({ ...base, to, reason });
    }
    if (notReached.length) {
      refusals.push(`${c.groupId} (${c.role}) has not processed its input up to ${T} yet (${notReached.join('; ')}): its state would be deleted before it got there; let the run catch up first (\`sep run --run-id ${facts.runId} --until-caught-up\`) or choose an earlier time`);
    }
    if (skipped.length) {
      refusals.push(`${c.groupId} (${c.role}) still has records before ${T} to process (${skipped.join('; ')}): moving it to the end would skip them; let the run catch up first (\`sep run --run-id ${facts.runId} --until-caught-up\`), then rewind`);
    }
  }
  // A rewind that moves no input of a stateful app would only throw its state away.
  const stateful = new Set(facts.consumers.filter((f) => f.consumer.changelogs.length > 0).map((f) => f.consumer.groupId));
  const inputs = offsets.filter((m) => m.rule === 'datetime' && stateful.has(m.groupId));
  const stateRecords = facts.changelogs.reduce((n, c) => n + c.records, 0n);
  if (refusals.length === 0 && inputs.length > 0 && !inputs.some(isMove) && stateRecords > 0n) {
    refusals.push(`run ${facts.runId} has processed nothing at or after ${T}: the rewind would only delete its state (${stateRecords} changelog records); choose an earlier time`);
  }
  return { runId: facts.runId, to: facts.to, offsets, deleteTopics: facts.changelogs, rows: facts.rows, refusals };
}

/** True when applying the plan would change something. */
export function planChanges(plan: RewindPlan): boolean {
  return plan.offsets.some(isMove) || plan.deleteTopics.length > 0 || plan.rows.some((r) => r.count > 0);
}

/**
 * Gathers the facts and computes the plan. Throws RewindRefusedError when T
 * is in the future, when no consumer group of the run exists, and while any
 * has members — checked before the database is opened.
 */
export async function planRewind(deps: RewindDeps, target: RewindTarget, to: number): Promise<RewindPlan> {
  const now = (deps.now ?? Date.now)();
  if (to > now) throw new RewindRefusedError(`--to-datetime ${iso(to)} is in the future (now ${iso(now)}): a rewind goes back to a time the run has already processed`);
  const { admin } = deps;
  const known = new Set((await admin.listGroups()).groups.map((g) => g.groupId));
  const ids = target.consumers.map((c) => c.groupId);
  if (!ids.some((id) => known.has(id))) {
    throw new RewindRefusedError(`run ${target.runId} has no consumer groups (looked for ${ids.join(', ')}): check --run-id and SEP_TOPIC_PREFIX`);
  }
  const statuses = await groupStatuses(admin, ids, known);
  const problem = activeGroupsProblem(target.runId, statuses);
  if (problem) throw new RewindRefusedError(problem);

  const db = await deps.db();
  const topics = new Set(await admin.listTopics());
  const bounds = new Map<string, { end: Map<number, bigint>; atTime: Map<number, bigint> }>();
  const boundsOf = async (topic: string) => {
    let b = bounds.get(topic);
    if (!b) {
      const end = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)] as const));
      // kafkajs answers the end offset for a partition without a record at or after T, as StreamsResetter seeks to the end.
      const atTime = new Map((await admin.fetchTopicOffsetsByTimestamp(topic, to)).map((o) => [o.partition, BigInt(o.offset)] as const));
      b = { end, atTime };
      bounds.set(topic, b);
    }
    return b;
  };
  const consumers: ConsumerFacts[] = [];
  for (const consumer of target.consumers) {
    const inKafka = known.has(consumer.groupId);
    if (!inKafka && consumer.offsetsIn === 'kafka') continue;
    const readable = consumer.topics.filter((t) => topics.has(t.topic));
    const committed = inKafka ? await kafkaCommitted(admin, consumer.groupId, readable.map((t) => t.topic)) : new Map<string, bigint>();
    if (consumer.offsetsIn === 'database') {
      // The database is the truth; the sink starts from Kafka's copy only where it has no row.
      for (const [k, v] of await sinkOffsets(db, consumer.groupId)) committed.set(k, v);
    }
    const partitions: PartitionFacts[] = [];
    for (const { topic, rule } of readable) {
      const { end, atTime } = await boundsOf(topic);
      for (const [partition, high] of [...end].sort(([a], [b]) => a - b)) {
        partitions.push({ topic, partition, rule, committed: committed.get(`${topic}/${partition}`) ?? null, atTime: atTime.get(partition) ?? high, end: high });
      }
    }
    consumers.push({ consumer, partitions });
  }
  const changelogs: { topic: string; records: bigint }[] = [];
  for (const c of consumers) {
    if (!known.has(c.consumer.groupId)) continue;
    for (const topic of c.consumer.changelogs) {
      if (!topics.has(topic)) continue;
      const records = (await admin.fetchTopicOffsets(topic)).reduce((n, o) => n + BigInt(o.high) - BigInt(o.low), 0n);
      changelogs.push({ topic, records });
    }
  }
  const rows = await rowsAtOrAfter(db, target, to);
  return computeRewindPlan({ runId: target.runId, to, consumers, changelogs, rows });
}

/**
 * Applies a plan: the Kafka side first (changelog topics, then offsets), then
 * the database in one transaction (rows at or after T, sink_offsets). Each
 * step is idempotent, so after a failure the same rewind can simply be run
 * again. Kafka first: should the database part fail, the sink has not moved
 * and rewinding again finishes the job, whereas rows deleted under an app that
 * was not rewound would never be written again.
 *
 * The continuous aggregates are not refreshed here (on the embedded database
 * a refresh recomputes the touched buckets of every run, a minute or more):
 * the deletes are in TimescaleDB's invalidation log, so the refresh the re-run
 * does when it completes (or a server's policies, or CALL refresh_aggregates())
 * drops them.
 */
export async function applyRewind(deps: RewindDeps, target: RewindTarget, plan: RewindPlan, log: (line: string) => void = () => {}): Promise<RewindResult> {
  if (plan.refusals.length) throw new RewindRefusedError(plan.refusals.join('\n'));
  const { admin } = deps;
  // Again, right before changing anything: a run may have started since the plan.
  const known = new Set((await admin.listGroups()).groups.map((g) => g.groupId));
  const problem = activeGroupsProblem(plan.runId, await groupStatuses(admin, target.consumers.map((c) => c.groupId), known));
  if (problem) throw new RewindRefusedError(problem);

  const moves = plan.offsets.filter(isMove);
  const byGroup = new Map<string, OffsetMove[]>();
  for (const m of moves) byGroup.set(m.groupId, [...(byGroup.get(m.groupId) ?? []), m]);
  const topicsDeleted = plan.deleteTopics.map((t) => t.topic);
  const again = `run the same \`sep rewind\` again (it is idempotent) before \`sep run --run-id ${plan.runId}\``;
  try {
    // State first: stopped after it, a second rewind still sees the offsets to move (stopped after the
    // offsets, it would find the apps at T beside their old state and refuse).
    if (topicsDeleted.length) {
      await admin.deleteTopics({ topics: topicsDeleted, timeout: TOPIC_DELETION_TIMEOUT_MS });
      await waitUntilGone(admin, topicsDeleted);
      log(`deleted ${topicsDeleted.length} changelog topic(s): ${topicsDeleted.join(', ')}`);
    }
    for (const [groupId, list] of byGroup) {
      // The sink's Kafka copy too: it follows the database (lag monitoring), the sink re-aligns it at start anyway.
      await commitAsGroup(deps.kafka, groupId, list)
        .catch((err: Error) => { throw new Error(`could not move ${groupId} (is a consumer of run ${plan.runId} running again? stop it first): ${err.message}`); });
      const topics = [...new Set(list.map((m) => m.topic))];
      for (const t of topics) log(`moved ${groupId} on ${t}: ${list.filter((m) => m.topic === t).map((m) => `[${m.partition}] ${m.from ?? 'none'} → ${m.to}`).join(', ')}`);
    }
  } catch (err) {
    throw new SepError('KAFKA_UNAVAILABLE', `the rewind stopped part-way in Kafka (${(err as Error).message}); the database is untouched: ${again}`, { cause: err });
  }

  const db = await deps.db();
  const rowsDeleted: { table: string; count: number }[] = [];
  try {
    await db.query('BEGIN');
    for (const r of plan.rows) {
      const res = await db.query(`DELETE FROM ${quoteIdent(r.table)} WHERE run_id = $1 AND ${quoteIdent(r.timeColumn)} >= $2`, [plan.runId, iso(plan.to)]);
      rowsDeleted.push({ table: r.table, count: res.rowCount ?? 0 });
    }
    for (const m of moves.filter((x) => x.offsetsIn === 'database')) {
      await db.query(
        `INSERT INTO sink_offsets (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
         ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
        [m.groupId, m.topic, m.partition, m.to!.toString()]);
    }
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {});
    throw new SepError('DATABASE_UNAVAILABLE', `the Kafka side of the rewind is done but the database part failed (${(err as Error).message}); nothing was deleted there: ${again}`, { cause: err });
  }
  const deleted = rowsDeleted.reduce((n, r) => n + r.count, 0);
  if (deleted > 0) log(`deleted ${deleted} rows of run ${plan.runId} at or after ${iso(plan.to)}; sink_offsets moved in the same transaction`);
  return { offsetsMoved: moves.length, groups: [...new Set(moves.map((m) => m.groupId))], topicsDeleted, rowsDeleted };
}

/** The plan as a table: offsets (committed → new), changelog topics, rows. */
export function formatPlan(plan: RewindPlan): string {
  const T = iso(plan.to);
  const out: string[] = [];
  // Partitions that never held anything for the consumer (empty topics): one line, not a row each.
  const idle = (m: OffsetMove) => !isMove(m) && (m.from === null || m.from === 0n) && (m.to === null || m.to === 0n);
  const rows = plan.offsets.filter((m) => !idle(m)).map((m) => [
    `${m.groupId} (${m.role})`, m.topic, String(m.partition), m.from === null ? 'none' : String(m.from),
    isMove(m) ? '→' : '=', m.to === null ? 'none' : String(m.to), m.reason,
  ]);
  out.push(`offsets (${plan.offsets.filter(isMove).length} to move):`);
  out.push(...table(['group', 'topic', 'partition', 'committed', '', 'new', ''], rows, [false, false, true, true, false, true, false]));
  const idleTopics = [...new Set(plan.offsets.filter(idle).map((m) => m.topic))];
  if (idleTopics.length) out.push(`  (and ${plan.offsets.filter(idle).length} partitions at offset 0 or never committed, unchanged: ${idleTopics.join(', ')})`);
  out.push('');
  if (plan.deleteTopics.length) {
    out.push('changelog topics to delete (state restarts clean at T):');
    for (const t of plan.deleteTopics) out.push(`  ${t.topic} (${t.records} records)`);
  } else {
    out.push('changelog topics to delete: none');
  }
  out.push('');
  const total = plan.rows.reduce((n, r) => n + r.count, 0);
  out.push(`TimescaleDB rows of run ${plan.runId} at or after ${T} to delete (${total}), sink_offsets moved with them:`);
  out.push(...table(['table', 'rows'], plan.rows.map((r) => [`${r.table}.${r.timeColumn} ≥ T`, String(r.count)]), [false, true]));
  return out.join('\n');
}

function table(header: string[], rows: string[][], right: boolean[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ')}`.trimEnd();
  return [line(header), ...rows.map(line)];
}

async function groupStatuses(admin: Admin, ids: readonly string[], known: Set<string>): Promise<GroupStatus[]> {
  const present = ids.filter((id) => known.has(id));
  const described = present.length ? (await admin.describeGroups(present)).groups : [];
  return ids.map((groupId) => {
    const g = described.find((d) => d.groupId === groupId);
    return g ? { groupId, state: g.state, members: g.members.map((m) => ({ clientId: m.clientId, clientHost: m.clientHost, memberId: m.memberId })) } : { groupId, state: 'absent', members: [] };
  });
}

async function kafkaCommitted(admin: Admin, groupId: string, topics: string[]): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  if (topics.length === 0) return out;
  for (const t of await admin.fetchOffsets({ groupId, topics })) {
    for (const p of t.partitions) if (Number(p.offset) >= 0) out.set(`${t.topic}/${p.partition}`, BigInt(p.offset));
  }
  return out;
}

async function sinkOffsets(db: pg.ClientBase, groupId: string): Promise<Map<string, bigint>> {
  const { rows } = await db.query<{ topic: string; partition: number; next_offset: string }>(
    'SELECT topic, partition, next_offset FROM sink_offsets WHERE consumer_group = $1', [groupId]);
  return new Map(rows.map((r) => [`${r.topic}/${r.partition}`, BigInt(r.next_offset)]));
}

/** The run's rows at or after T per table, by each hypertable's time dimension (markouts: fill_ts). */
async function rowsAtOrAfter(db: pg.ClientBase, target: RewindTarget, to: number): Promise<RewindFacts['rows']> {
  const { rows: dims } = await db.query<{ table: string; column: string }>(
    `SELECT hypertable_name AS table, column_name AS column FROM timescaledb_information.dimensions
     WHERE dimension_number = 1 AND hypertable_name = ANY($1)`, [[...target.tables]]);
  const out: RewindFacts['rows'] = [];
  for (const table of target.tables) {
    const timeColumn = dims.find((d) => d.table === table)?.column;
    if (!timeColumn) throw new SepError('USAGE', `table ${table} is not a hypertable with a time dimension; run \`sep migrate\``);
    const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteIdent(table)} WHERE run_id = $1 AND ${quoteIdent(timeColumn)} >= $2`, [target.runId, iso(to)]);
    out.push({ table, timeColumn, count: Number(rows[0]!.n) });
  }
  return out;
}

/**
 * Commits offsets for an idle group by joining it once: subscribe to its
 * topics, join (the only member: every partition is ours), commit, leave.
 * kafkajs' admin.setOffsets joins once per topic and waits for a fetch each
 * time, seconds per topic; this is one join per group.
 */
async function commitAsGroup(kafka: Kafka, groupId: string, moves: readonly OffsetMove[]): Promise<void> {
  const topics = [...new Set(moves.map((m) => m.topic))];
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, sessionTimeout: 10_000, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    // Nothing is processed or auto-committed; run() returns once the group is joined.
    await consumer.run({ autoCommit: false, eachBatch: async () => {} });
    consumer.pause(topics.map((topic) => ({ topic })));
    await consumer.commitOffsets(moves.map((m) => ({ topic: m.topic, partition: m.partition, offset: m.to!.toString() })));
  } finally {
    await consumer.disconnect();
  }
}

async function waitUntilGone(admin: Admin, topics: string[]): Promise<void> {
  const deadline = Date.now() + TOPIC_DELETION_TIMEOUT_MS;
  for (;;) {
    const left = new Set(await admin.listTopics());
    if (!topics.some((t) => left.has(t))) return;
    if (Date.now() > deadline) throw new SepError('KAFKA_UNAVAILABLE', `deleted topics still listed after ${TOPIC_DELETION_TIMEOUT_MS / 1000} s: ${topics.filter((t) => left.has(t)).join(', ')}; run the rewind again before \`sep run\``);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
