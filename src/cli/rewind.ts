/**
 * `sep rewind --run-id ID --to-datetime T [--dry-run]`: every consumer of a
 * pipeline run back to T, together (connectors/replay/rewind.ts,
 * docs/replay.md#rewind). Only the run-id form: the run's groups feed each
 * other (features app → gates.partial.v1 → blob app → sink), so moving one of
 * them alone leaves the others inconsistent — that is what Kafka's own
 * kafka-consumer-groups --reset-offsets is for.
 *
 * The groups are the ones src/pipeline/run.ts creates for a run id; keep
 * `runConsumers` in step with it.
 */
import { UsageError } from '../../streams/runtime/errors.ts';
import { connectAdmin, createKafka } from '../../streams/runtime/kafka.ts';
import { TOPICS, TOPIC_PREFIX } from '../../streams/runtime/topics.ts';
import { changelogTopic } from '../../streams/runtime/streams-app.ts';
import { STREAM_TIME_STORE } from '../../streams/runtime/task.ts';
import type { Topology } from '../../streams/runtime/topology.ts';
import { pipelineTopology } from '../../streams/execution/topology.ts';
import { gatesBlobTopology } from '../../streams/gates/blob-processor.ts';
import { TABLES } from '../../connectors/sink/tables.ts';
import { replayNamespace } from '../../connectors/replay/replay.ts';
import { applyRewind, formatPlan, planChanges, planRewind, RewindRefusedError, type RunConsumer, type RewindTarget, type ResetRule } from '../../connectors/replay/rewind.ts';
import { recordedServiceUrls } from '../../ops/stack/index.ts';
import { connectDatabase } from '../pipeline/services.ts';
import { resolvePipelineConfig, SINK_TOPICS, sinkGroupId, type PipelineConfig } from '../pipeline/run.ts';
import { datetimeFlag, runIdFlag, type Command } from './command.ts';
import type pg from 'pg';

const log = (line: string) => console.log(line);

export { datetimeFlag } from './command.ts';

/**
 * What `sep run --run-id ID` creates: the two stream apps (their sources, the
 * changelog of every store plus stream-time), the sink (offsets in
 * TimescaleDB) and the three Redis mirrors. A topic the run produces itself
 * goes to its end; any other input to T.
 */
export function runConsumers(runId: string, config: PipelineConfig): RunConsumer[] {
  const features = pipelineTopology(config.catalog, config);
  const blob = gatesBlobTopology({ expectedPartitions: [], allocator: { config: config.allocator } });
  const produced = new Set([...features.sinks(), ...blob.sinks()].map((s) => s.topic));
  const rule = (topic: string): ResetRule => (produced.has(topic) ? 'end' : 'datetime');
  const app = (groupId: string, role: string, t: Topology): RunConsumer => ({
    groupId, role, offsetsIn: 'kafka',
    topics: t.sources().map((s) => ({ topic: s.topic, rule: rule(s.topic) })),
    changelogs: [...t.stores.keys(), STREAM_TIME_STORE].map((store) => changelogTopic(groupId, store)),
  });
  const mirror = (groupId: string, topic: string): RunConsumer => ({ groupId, role: 'Redis mirror', offsetsIn: 'kafka', topics: [{ topic, rule: 'keep' }], changelogs: [] });
  return [
    app(`${TOPIC_PREFIX}sep-features-${runId}`, 'features app', features),
    app(`${TOPIC_PREFIX}sep-gates-blob-${runId}`, 'gates blob app', blob),
    { groupId: sinkGroupId(runId), role: 'sink', offsetsIn: 'database', topics: SINK_TOPICS.map((topic) => ({ topic, rule: rule(topic) })), changelogs: [] },
    mirror(`${TOPIC_PREFIX}sep-snapshot-${runId}`, TOPICS.features.name),
    mirror(`${TOPIC_PREFIX}sep-gates-blob-mirror-${runId}`, TOPICS.gatesBlob.name),
    mirror(`${TOPIC_PREFIX}sep-allocation-mirror-${runId}`, TOPICS.allocations.name),
  ];
}

export const rewindCmd: Command = {
  usage: `usage: sep rewind (--run-id ID | --group G) --to-datetime T [--dry-run]
  Rewinds every consumer of pipeline run ID to time T, as Kafka's application
  reset tool does (docs/replay.md#rewind): the run's inputs to their first
  record at or after T, the topics it produces and reads again to their end,
  its state deleted (it restarts clean at T); in TimescaleDB its rows at or
  after T are deleted and the sink's offsets moved, in one transaction. Then
  \`sep run --run-id ID\` computes from T again: no duplicate rows, no stale ones.
  Refused (exit 1, nothing changed) while any consumer of the run is running,
  or when one has not processed everything before T yet. Running it twice is
  fine: the second finds nothing to do.
  --run-id ID        the run to rewind
  --group G          or one of its consumer groups (e.g. sep-features-live): the whole run is rewound,
                     since its groups feed each other
  --to-datetime T    ISO-8601 time with its zone, e.g. 2026-11-13T12:00:00Z (required; not in the future)
  --dry-run          print the plan (offsets committed → new, topics, rows) and change nothing`,
  options: { 'run-id': { type: 'string' }, group: { type: 'string' }, 'to-datetime': { type: 'string' }, 'dry-run': { type: 'boolean' } },
  async run(v) {
    if ((v['run-id'] === undefined) === (v.group === undefined)) throw new UsageError('sep rewind: give --run-id ID (the pipeline run, as given to `sep run --run-id`) or --group G (one of its consumer groups), not both');
    const runId = v.group !== undefined ? runOfGroup(String(v.group)) : runIdFlag(v['run-id'], 'live');
    if (v.group !== undefined) log(`group ${String(v.group)} is a consumer of run ${runId}: its consumers are rewound together`);
    const to = datetimeFlag(v['to-datetime']);
    const dryRun = Boolean(v['dry-run']);
    // Knobs first (the topologies name the state stores): a bad one stops here.
    const config = resolvePipelineConfig();
    const target: RewindTarget = { runId, consumers: runConsumers(runId, config), tables: [...new Set(SINK_TOPICS.map((t) => TABLES[t]!.table))] };

    const urls = recordedServiceUrls();
    const kafka = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: 'sep-rewind' });
    const admin = await connectAdmin(kafka, urls.KAFKA_BROKERS);
    let db: pg.Client | undefined;
    const deps = { admin, kafka, db: async () => (db ??= await connectDatabase(urls.DATABASE_URL)) };
    try {
      await refuseUnknownRun(admin, target);
      await refuseReplay(admin, runId);
      const plan = await planRewind(deps, target, to);
      log(`rewind run ${runId} to ${new Date(to).toISOString()}${dryRun ? ' (dry run: nothing is changed)' : ''}\n`);
      log(formatPlan(plan));
      if (plan.refusals.length) throw new RewindRefusedError(`refused:\n${plan.refusals.map((r) => `  ${r}`).join('\n')}`);
      if (!planChanges(plan)) {
        log(`\nnothing to do: run ${runId} is already rewound to ${new Date(to).toISOString()}`);
        return 0;
      }
      log('\nthe re-run computes from a clean state at T: what depends on history (bar_index, ewma_vol, atr14, regime, gates spans, calibration EWMAs, allocation seq) warms up again from T');
      if (dryRun) return 0;
      log('');
      const result = await applyRewind(deps, target, plan, (line) => log(`  ${line}`));
      const rows = result.rowsDeleted.reduce((n, r) => n + r.count, 0);
      log(`\nrewound run ${runId} to ${new Date(to).toISOString()}: ${result.offsetsMoved} offsets moved in ${result.groups.length} group(s), ${result.topicsDeleted.length} changelog topic(s) deleted, ${rows} rows deleted`);
      if (rows > 0) log(`the continuous aggregates (candles_1m, …) still count the deleted rows until they are refreshed: \`sep run --run-id ${runId} --until-caught-up\` does it when it completes, or CALL refresh_aggregates('${new Date(to).toISOString()}', NULL)`);
      log(`next: sep run --run-id ${runId} (a run seeded with \`sep calib load\` must be seeded again first)`);
      return 0;
    } finally {
      await db?.end().catch(() => {});
      await admin.disconnect();
    }
  },
};

/** The roles of a run's consumer groups (`<prefix>sep-<role>-<run id>`), longest first: `gates-blob-mirror` before `gates-blob`. */
const GROUP_ROLES = ['gates-blob-mirror', 'allocation-mirror', 'gates-blob', 'features', 'snapshot', 'sink'];

/** The run id a pipeline consumer group belongs to; a usage error naming the form for any other group. */
export function runOfGroup(group: string): string {
  for (const role of GROUP_ROLES) {
    const head = `${TOPIC_PREFIX}sep-${role}-`;
    if (group.startsWith(head) && group.length > head.length) return runIdFlag(group.slice(head.length), '');
  }
  throw new UsageError(`--group ${JSON.stringify(group)}: not a consumer group of a sep pipeline run; those are ${TOPIC_PREFIX}sep-<${GROUP_ROLES.join('|')}>-<run id>, e.g. ${TOPIC_PREFIX}sep-features-live (kafka-consumer-groups --reset-offsets moves any other group)`);
}

/**
 * A replay's outputs live in its own namespace, which this process's topic
 * catalog does not name: rewinding it would move the wrong topics. A replay
 * is cheap to run again instead.
 */
async function refuseReplay(admin: Awaited<ReturnType<typeof connectAdmin>>, runId: string): Promise<void> {
  const ns = replayNamespace(runId);
  if (!(await admin.listTopics()).some((t) => t.startsWith(ns))) return;
  throw new RewindRefusedError(`run ${runId} is a replay (its outputs are on ${ns}*): replay the range again under a new run id, or remove it with \`sep replay --delete ${runId}\` and replay it again`);
}

/** No consumer group of the run: say which runs there are. */
async function refuseUnknownRun(admin: Awaited<ReturnType<typeof connectAdmin>>, target: RewindTarget): Promise<void> {
  const groups = (await admin.listGroups()).groups.map((g) => g.groupId);
  if (target.consumers.some((c) => groups.includes(c.groupId))) return;
  const prefix = `${TOPIC_PREFIX}sep-features-`;
  // Not the apps' restore readers (`<app>-restore-<hex>`).
  const runs = groups.filter((g) => g.startsWith(prefix) && !/-restore-[0-9a-f]{12}$/.test(g)).map((g) => g.slice(prefix.length)).sort();
  throw new RewindRefusedError(`unknown run ${JSON.stringify(target.runId)}: none of its consumer groups exists (${target.consumers.map((c) => c.groupId).join(', ')})` +
    `; ${runs.length ? `runs with groups${TOPIC_PREFIX ? ` under SEP_TOPIC_PREFIX=${TOPIC_PREFIX}` : ''}: ${runs.join(', ')}` : `no run has groups${TOPIC_PREFIX ? ` under SEP_TOPIC_PREFIX=${TOPIC_PREFIX}` : ''}`}`);
}
