/**
 * `sep replay --delete ID`: removes a replay completely — its output topics
 * (`<prefix>replay.<ID>.*`), its apps' changelog topics, its consumer groups,
 * and in one database transaction its rows in every table, its sink offsets
 * and its runs row. Only replays (runs of kind replay or canary): a live run's
 * history is not this command's to delete.
 */
import type pg from 'pg';
import type { Admin } from '../../streams/runtime/kafka.ts';
import { TOPIC_PREFIX } from '../../streams/runtime/topics.ts';
import { TABLES } from '../sink/tables.ts';
import { replayNamespace, ReplayRefusedError } from './replay.ts';

export interface DeletedRun {
  topics: string[];
  groups: string[];
  rows: number;
}

export async function deleteRun(admin: Admin, db: pg.ClientBase, runId: string, opts: { sinkGroupId: string }): Promise<DeletedRun> {
  const { rows: runs } = await db.query<{ kind: string }>('SELECT kind FROM runs WHERE run_id = $1', [runId]);
  const apps = [`${TOPIC_PREFIX}sep-features-${runId}`, `${TOPIC_PREFIX}sep-gates-blob-${runId}`];
  const ns = replayNamespace(runId);
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(ns) || apps.some((a) => t.startsWith(`${a}-`))).sort();
  const listed = (await admin.listGroups()).groups.map((g) => g.groupId);
  const groups = listed.filter((g) => g === opts.sinkGroupId || apps.some((a) => g === a || g.startsWith(`${a}-restore-`))).sort();
  if (runs.length === 0 && topics.length === 0 && groups.length === 0) {
    const { rows } = await db.query<{ run_id: string }>(`SELECT run_id FROM runs WHERE kind IN ('replay', 'canary') ORDER BY started_at DESC LIMIT 10`);
    throw new ReplayRefusedError(`unknown run id ${JSON.stringify(runId)}: no runs row, topic or consumer group carries it; ${rows.length ? `recent replays: ${rows.map((r) => r.run_id).join(', ')}` : 'there are no replays'}`);
  }
  const kind = runs[0]?.kind;
  if (kind !== undefined && kind !== 'replay' && kind !== 'canary') {
    throw new ReplayRefusedError(`run ${runId} is a ${kind} run: \`sep replay --delete\` removes only replays (kind replay or canary); rewind a live run with \`sep rewind\``);
  }
  const described = groups.length ? await admin.describeGroups(groups) : { groups: [] };
  const active = described.groups.filter((g) => g.members.length > 0).map((g) => g.groupId);
  if (active.length) throw new ReplayRefusedError(`replay ${runId} is running (consumer group${active.length > 1 ? 's' : ''} ${active.join(', ')} ${active.length > 1 ? 'have' : 'has'} members): stop it first`);

  let rows = 0;
  await db.query('BEGIN');
  try {
    for (const table of [...new Set(Object.values(TABLES).map((m) => m.table))].sort()) {
      rows += (await db.query(`DELETE FROM ${table} WHERE run_id = $1`, [runId])).rowCount ?? 0;
    }
    await db.query('DELETE FROM sink_offsets WHERE consumer_group = $1', [opts.sinkGroupId]);
    await db.query('DELETE FROM runs WHERE run_id = $1', [runId]);
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {});
    throw err;
  }
  if (topics.length) await admin.deleteTopics({ topics, timeout: 30_000 });
  if (groups.length) await admin.deleteGroups(groups);
  return { topics, groups, rows };
}
