import { test } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import {
  activeGroupsProblem, applyRewind, computeRewindPlan, formatPlan, planChanges, planRewind, RewindRefusedError,
  type ConsumerFacts, type PartitionFacts, type RewindFacts, type RewindTarget, type RunConsumer,
} from '../../../connectors/replay/rewind.ts';
import type { Kafka } from 'kafkajs';
import type { Admin } from '../../../streams/runtime/kafka.ts';
import { datetimeFlag, runConsumers, runOfGroup } from '../../../src/cli/rewind.ts';
import { resolvePipelineConfig, SINK_TOPICS, sinkGroupId } from '../../../src/pipeline/run.ts';
import { TOPICS } from '../../../streams/runtime/topics.ts';
import { UsageError } from '../../../streams/runtime/errors.ts';

const T = Date.parse('2026-11-13T12:00:00Z');

const app: RunConsumer = { groupId: 'sep-features-r1', role: 'features app', offsetsIn: 'kafka', topics: [{ topic: 'md.candles.v1', rule: 'datetime' }], changelogs: ['sep-features-r1-features-state-changelog', 'sep-features-r1-stream-time-changelog'] };
const blob: RunConsumer = { groupId: 'sep-gates-blob-r1', role: 'gates blob app', offsetsIn: 'kafka', topics: [{ topic: 'gates.partial.v1', rule: 'end' }], changelogs: ['sep-gates-blob-r1-stream-time-changelog'] };
const sink: RunConsumer = { groupId: 'sep-sink-r1', role: 'sink', offsetsIn: 'database', topics: [{ topic: 'md.candles.v1', rule: 'datetime' }, { topic: 'features.v1', rule: 'end' }], changelogs: [] };
const mirror: RunConsumer = { groupId: 'sep-snapshot-r1', role: 'Redis mirror', offsetsIn: 'kafka', topics: [{ topic: 'features.v1', rule: 'keep' }], changelogs: [] };

const p = (topic: string, partition: number, rule: PartitionFacts['rule'], committed: bigint | null, atTime: bigint, end: bigint): PartitionFacts => ({ topic, partition, rule, committed, atTime, end });

/** A run that processed everything: candles 0..1000 per partition, T at 600; features 0..1000, the first pass's features from T at 600. */
function caughtUp(): RewindFacts {
  const consumers: ConsumerFacts[] = [
    { consumer: app, partitions: [p('md.candles.v1', 0, 'datetime', 1000n, 600n, 1000n), p('md.candles.v1', 1, 'datetime', 800n, 800n, 800n)] },
    { consumer: blob, partitions: [p('gates.partial.v1', 0, 'end', 300n, 180n, 300n)] },
    { consumer: sink, partitions: [p('md.candles.v1', 0, 'datetime', 1000n, 600n, 1000n), p('md.candles.v1', 1, 'datetime', 800n, 800n, 800n), p('features.v1', 0, 'end', 1000n, 600n, 1000n)] },
    { consumer: mirror, partitions: [p('features.v1', 0, 'keep', 1000n, 600n, 1000n)] },
  ];
  return {
    runId: 'r1', to: T, consumers,
    changelogs: [{ topic: app.changelogs[0]!, records: 40n }, { topic: app.changelogs[1]!, records: 12n }, { topic: blob.changelogs[0]!, records: 3n }],
    rows: [{ table: 'candles', timeColumn: 'ts', count: 400 }, { table: 'markouts', timeColumn: 'fill_ts', count: 0 }],
  };
}

const move = (plan: ReturnType<typeof computeRewindPlan>, groupId: string, topic: string, partition: number) =>
  plan.offsets.find((m) => m.groupId === groupId && m.topic === topic && m.partition === partition)!;

test('inputs go to the first offset at T, what the run produces and reads again to its end, mirrors stay; every changelog and row at or after T goes', () => {
  const plan = computeRewindPlan(caughtUp());
  assert.deepEqual(plan.refusals, []);
  assert.deepEqual([move(plan, app.groupId, 'md.candles.v1', 0).from, move(plan, app.groupId, 'md.candles.v1', 0).to], [1000n, 600n]);
  assert.equal(move(plan, app.groupId, 'md.candles.v1', 1).to, 800n, 'a partition whose records all precede T stays at its end');
  assert.equal(move(plan, app.groupId, 'md.candles.v1', 1).reason, 'already at T');
  assert.equal(move(plan, blob.groupId, 'gates.partial.v1', 0).to, 300n, 'the blob app reads only what the rewound features app writes again');
  assert.equal(move(plan, sink.groupId, 'md.candles.v1', 0).to, 600n);
  assert.equal(move(plan, sink.groupId, 'features.v1', 0).to, 1000n);
  assert.equal(move(plan, mirror.groupId, 'features.v1', 0).to, 1000n);
  assert.match(move(plan, mirror.groupId, 'features.v1', 0).reason, /newer wins/);
  assert.deepEqual(plan.deleteTopics.map((t) => t.topic), [...app.changelogs, ...blob.changelogs]);
  assert.equal(plan.rows.find((r) => r.table === 'markouts')!.timeColumn, 'fill_ts');
  assert.ok(planChanges(plan));
});

test('a stateful app that has not reached T on a partition is refused, naming the group, the partition and the fix', () => {
  const facts = caughtUp();
  facts.consumers[0]!.partitions[0]!.committed = 500n;
  const plan = computeRewindPlan(facts);
  assert.equal(plan.refusals.length, 1);
  assert.match(plan.refusals[0]!, /sep-features-r1 \(features app\) has not processed its input up to 2026-11-13T12:00:00\.000Z yet \(md\.candles\.v1\[0\] at 500, T at 600\)/);
  assert.match(plan.refusals[0]!, /sep run --run-id r1 --until-caught-up/);
});

test('the sink short of T on an input stays where it is (it writes from there), with no refusal', () => {
  const facts = caughtUp();
  facts.consumers[2]!.partitions[0]!.committed = 450n;
  const plan = computeRewindPlan(facts);
  assert.deepEqual(plan.refusals, []);
  const m = move(plan, sink.groupId, 'md.candles.v1', 0);
  assert.equal(m.to, 450n);
  assert.match(m.reason, /before T/);
});

test('a consumer with records before T still to process on a topic the run produces is refused: moving it to the end would skip them', () => {
  for (const [i, topic] of [[1, 'gates.partial.v1'], [2, 'features.v1']] as const) {
    const facts = caughtUp();
    const part = facts.consumers[i]!.partitions.find((x) => x.topic === topic)!;
    part.committed = part.atTime - 1n;
    const plan = computeRewindPlan(facts);
    assert.equal(plan.refusals.length, 1, topic);
    assert.match(plan.refusals[0]!, /still has records before .* to process .*would skip them/);
  }
});

test('nothing committed and nothing before T: left uncommitted; a consumer that never committed but has records before T is refused', () => {
  const facts = caughtUp();
  facts.consumers[1]!.partitions[0] = p('gates.partial.v1', 0, 'end', null, 0n, 0n);
  let plan = computeRewindPlan(facts);
  assert.deepEqual(plan.refusals, []);
  assert.equal(move(plan, blob.groupId, 'gates.partial.v1', 0).to, null);
  facts.consumers[1]!.partitions[0] = p('gates.partial.v1', 0, 'end', null, 5n, 9n);
  plan = computeRewindPlan(facts);
  assert.equal(plan.refusals.length, 1);
});

test('T after everything processed is refused: it would only delete the state', () => {
  const facts = caughtUp();
  for (const c of facts.consumers) for (const x of c.partitions) x.atTime = x.end;
  const plan = computeRewindPlan(facts);
  assert.equal(plan.refusals.length, 1);
  assert.match(plan.refusals[0]!, /has processed nothing at or after .*would only delete its state \(55 changelog records\); choose an earlier time/);
});

test('a second rewind to the same T finds nothing to do (idempotent)', () => {
  const facts = caughtUp();
  // What the first rewind left: offsets at T / at the end, no changelog, no rows at or after T.
  for (const c of facts.consumers) for (const x of c.partitions) if (x.rule !== 'keep') x.committed = x.rule === 'datetime' ? x.atTime : x.end;
  facts.changelogs = [];
  facts.rows = facts.rows.map((r) => ({ ...r, count: 0 }));
  const plan = computeRewindPlan(facts);
  assert.deepEqual(plan.refusals, []);
  assert.equal(planChanges(plan), false);
});

test('a rewind that stopped after deleting the state, before moving the offsets, is finished by running it again', () => {
  const facts = caughtUp();
  facts.changelogs = [];
  const plan = computeRewindPlan(facts);
  assert.deepEqual(plan.refusals, []);
  assert.equal(move(plan, app.groupId, 'md.candles.v1', 0).to, 600n);
});

test('active groups: named with state and members (client id and host), and the fix; idle ones pass', () => {
  assert.equal(activeGroupsProblem('r1', [{ groupId: 'a', state: 'Empty', members: [] }, { groupId: 'b', state: 'Dead', members: [] }, { groupId: 'c', state: 'absent', members: [] }]), undefined);
  const problem = activeGroupsProblem('r1', [
    { groupId: 'sep-features-r1', state: 'Stable', members: [{ clientId: 'sep-run', clientHost: '/10.0.0.7' }] },
    { groupId: 'sep-sink-r1', state: 'PreparingRebalance', members: [] },
    { groupId: 'sep-snapshot-r1', state: 'Empty', members: [] },
  ])!;
  assert.match(problem, /run r1 is running: 2 of its consumer groups have active members/);
  assert.match(problem, /sep-features-r1 \(Stable\): sep-run on 10\.0\.0\.7/);
  assert.match(problem, /sep-sink-r1 \(PreparingRebalance\)/);
  assert.doesNotMatch(problem, /sep-snapshot-r1/);
  assert.match(problem, /stop `sep run --run-id r1`/);
});

test('the plan prints group, topic, partition, committed → new, the topics to delete and the rows per table', () => {
  const text = formatPlan(computeRewindPlan(caughtUp()));
  assert.match(text, /sep-features-r1 \(features app\)\s+md\.candles\.v1\s+0\s+1000\s+→\s+600\s+to T/);
  assert.match(text, /sep-sink-r1 \(sink\)\s+features\.v1\s+0\s+1000\s+=\s+1000\s+already at end/);
  assert.match(text, /sep-features-r1-features-state-changelog \(40 records\)/);
  assert.match(text, /candles\.ts ≥ T\s+400/);
  assert.match(text, /markouts\.fill_ts ≥ T\s+0/);
});

test('--to-datetime: ISO-8601 with its zone; anything else is a usage error with an example', () => {
  assert.equal(datetimeFlag('2026-11-13T12:00:00Z'), T);
  assert.equal(datetimeFlag('2026-11-13T13:00+01:00'), T);
  for (const bad of ['2026-11-13 12:00', '2026-11-13T12:00:00', '13/11/2026', 'yesterday', '2026-13-01T00:00:00Z', true, undefined]) {
    assert.throws(() => datetimeFlag(bad), (err: Error) => err instanceof UsageError && /e\.g\. (--to-datetime )?2026-11-13T12:00:00Z/.test(err.message), String(bad));
  }
});

test('the run consumers the CLI describes: every group `sep run` creates, each app\'s stores plus stream-time, inputs to T and own topics to the end', () => {
  const consumers = runConsumers('r1', resolvePipelineConfig({}));
  const byRole = (role: string) => consumers.filter((c) => c.role === role);
  const [features] = byRole('features app');
  assert.equal(features!.groupId, 'sep-features-r1');
  assert.ok(features!.changelogs.includes('sep-features-r1-stream-time-changelog'));
  assert.ok(features!.changelogs.includes('sep-features-r1-features-state-changelog'));
  assert.ok(features!.topics.every((t) => t.rule === 'datetime'), 'the features app reads only inputs');
  const [gatesBlob] = byRole('gates blob app');
  assert.deepEqual(gatesBlob!.topics.find((t) => t.topic === TOPICS.gatesPartial.name)?.rule, 'end');
  const [s] = byRole('sink');
  assert.equal(s!.groupId, sinkGroupId('r1'));
  assert.equal(s!.offsetsIn, 'database');
  assert.deepEqual(s!.topics.map((t) => t.topic), SINK_TOPICS);
  assert.equal(s!.topics.find((t) => t.topic === TOPICS.candles.name)!.rule, 'datetime');
  assert.equal(s!.topics.find((t) => t.topic === TOPICS.features.name)!.rule, 'end');
  assert.deepEqual(byRole('Redis mirror').map((c) => c.groupId).sort(), ['sep-allocation-mirror-r1', 'sep-gates-blob-mirror-r1', 'sep-snapshot-r1']);
});

// planRewind/applyRewind over a fake broker and database: the I/O around the plan.
function fakes(o: { state?: string; sinkRow?: bigint } = {}) {
  const calls: string[] = [];
  const admin = {
    listGroups: async () => ({ groups: [app, sink].map((c) => ({ groupId: c.groupId, protocolType: 'consumer' })) }),
    describeGroups: async (ids: string[]) => ({ groups: ids.map((groupId) => ({ groupId, state: o.state ?? 'Empty', members: o.state && o.state !== 'Empty' ? [{ clientId: 'sep-run', clientHost: '/127.0.0.1', memberId: 'm1' }] : [], protocol: '', protocolType: 'consumer' })) }),
    listTopics: async () => ['md.candles.v1', 'features.v1', app.changelogs[0]!],
    fetchTopicOffsets: async (topic: string) => [{ partition: 0, high: topic.endsWith('changelog') ? '7' : '1000', low: '0', offset: '1000' }],
    fetchTopicOffsetsByTimestamp: async () => [{ partition: 0, offset: '600' }],
    fetchOffsets: async ({ topics }: { groupId: string; topics: string[] }) => topics.map((topic) => ({ topic, partitions: [{ partition: 0, offset: '1000', metadata: null }] })),
    deleteTopics: async (a: { topics: string[] }) => { calls.push(`deleteTopics ${a.topics.join(',')}`); },
  };
  const queries: string[] = [];
  let opened = 0;
  const db = {
    async query(sql: string, params: unknown[] = []) {
      queries.push(`${sql.replace(/\s+/g, ' ').trim()} ${JSON.stringify(params)}`);
      if (sql.includes('FROM sink_offsets')) return { rows: o.sinkRow === undefined ? [] : [{ topic: 'md.candles.v1', partition: 0, next_offset: String(o.sinkRow) }] };
      if (sql.includes('timescaledb_information.dimensions')) return { rows: [{ table: 'candles', column: 'ts' }] };
      if (sql.includes('count(*)')) return { rows: [{ n: '400' }] };
      if (sql.startsWith('DELETE')) return { rows: [], rowCount: 400 };
      return { rows: [] };
    },
  };
  // A consumer that joins its group, commits and leaves.
  const kafka = {
    consumer: ({ groupId }: { groupId: string }) => {
      const steps: string[] = [];
      return {
        connect: async () => { steps.push('connect'); },
        subscribe: async ({ topics }: { topics: string[] }) => { steps.push(`subscribe ${topics.join(',')}`); },
        run: async () => { steps.push('run'); },
        pause: () => { steps.push('pause'); },
        commitOffsets: async (list: { topic: string; partition: number; offset: string }[]) => {
          assert.deepEqual(steps, ['connect', `subscribe ${[...new Set(list.map((x) => x.topic))].join(',')}`, 'run', 'pause'], 'joined before committing');
          calls.push(`commit ${groupId} ${list.map((x) => `${x.topic}[${x.partition}]@${x.offset}`).join(',')}`);
        },
        disconnect: async () => { calls.push(`leave ${groupId}`); },
      };
    },
  };
  const target: RewindTarget = { runId: 'r1', consumers: [app, sink], tables: ['candles'] };
  return { kafka: kafka as unknown as Kafka, admin: admin as unknown as Admin, db: async () => { opened++; return db as unknown as pg.ClientBase; }, calls, queries, target, opened: () => opened };
}

test('planRewind: refused while a group has members, before the database is opened', async () => {
  const f = fakes({ state: 'Stable' });
  await assert.rejects(planRewind({ admin: f.admin, kafka: f.kafka, db: f.db, now: () => T + 1 }, f.target, T), (err: Error) => err instanceof RewindRefusedError && /sep-run on 127\.0\.0\.1/.test(err.message));
  assert.equal(f.opened(), 0);
});

test('planRewind: T in the future and an unknown run are refused with what to do', async () => {
  const f = fakes();
  await assert.rejects(planRewind({ admin: f.admin, kafka: f.kafka, db: f.db, now: () => T - 1 }, f.target, T), /is in the future/);
  await assert.rejects(planRewind({ admin: f.admin, kafka: f.kafka, db: f.db, now: () => T + 1 }, { ...f.target, consumers: [{ ...app, groupId: 'nope' }] }, T), /run r1 has no consumer groups \(looked for nope\)/);
});

test('planRewind reads the sink\'s offsets from the database (the truth), skips missing topics; applyRewind moves Kafka, deletes changelogs, then rows and sink_offsets in one transaction', async () => {
  const f = fakes({ sinkRow: 990n });
  const deps = { admin: f.admin, kafka: f.kafka, db: f.db, now: () => T + 1 };
  const plan = await planRewind(deps, f.target, T);
  assert.deepEqual(plan.refusals, []);
  assert.equal(move(plan, sink.groupId, 'md.candles.v1', 0).from, 990n);
  assert.equal(move(plan, sink.groupId, 'md.candles.v1', 0).to, 600n);
  assert.deepEqual(plan.deleteTopics, [{ topic: app.changelogs[0], records: 7n }], 'the stream-time changelog does not exist: not listed');
  assert.deepEqual(plan.rows, [{ table: 'candles', timeColumn: 'ts', count: 400 }]);

  // The topic is gone from the metadata once deleted.
  const deleted = new Set<string>();
  const admin = f.admin as unknown as Record<string, unknown>;
  const del = admin.deleteTopics as (a: { topics: string[] }) => Promise<void>;
  admin.deleteTopics = async (a: { topics: string[] }) => { for (const t of a.topics) deleted.add(t); await del(a); };
  const list = admin.listTopics as () => Promise<string[]>;
  admin.listTopics = async () => (await list()).filter((t) => !deleted.has(t));
  const result = await applyRewind(deps, f.target, plan);
  assert.deepEqual(f.calls, [
    `deleteTopics ${app.changelogs[0]}`,
    'commit sep-features-r1 md.candles.v1[0]@600', 'leave sep-features-r1',
    'commit sep-sink-r1 md.candles.v1[0]@600', 'leave sep-sink-r1',
  ]);
  const writes = f.queries.filter((q) => !q.startsWith('SELECT'));
  assert.equal(writes[0], 'BEGIN []');
  assert.match(writes[1]!, /^DELETE FROM "candles" WHERE run_id = \$1 AND "ts" >= \$2 \["r1","2026-11-13T12:00:00.000Z"\]/);
  assert.match(writes[2]!, /^INSERT INTO sink_offsets .* \["sep-sink-r1","md.candles.v1",0,"600"\]/);
  assert.equal(writes[3], 'COMMIT []');
  assert.equal(writes.length, 4, 'nothing else written');
  assert.deepEqual(result.rowsDeleted, [{ table: 'candles', count: 400 }]);
  assert.equal(result.offsetsMoved, 2);
});

test('--group: any consumer group of a run names the run (the longest role first); another group is a usage error naming the form', () => {
  assert.equal(runOfGroup('sep-features-live'), 'live');
  assert.equal(runOfGroup('sep-gates-blob-mirror-r1'), 'r1');
  assert.equal(runOfGroup('sep-gates-blob-r1'), 'r1');
  assert.equal(runOfGroup('sep-allocation-mirror-canary-1-blue'), 'canary-1-blue');
  assert.equal(runOfGroup('sep-sink-replay-20261122-0930'), 'replay-20261122-0930');
  for (const bad of ['my-app', 'sep-features-', 'sep-unknown-live']) {
    assert.throws(() => runOfGroup(bad), (err: Error) => err instanceof UsageError && /sep-<gates-blob-mirror\|.*>-<run id>, e\.g\. sep-features-live/.test(err.message), bad);
  }
});
