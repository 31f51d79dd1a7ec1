/**
 * `sep replay --from T1 --to T2 [--run-id ID] [--config FILE] [--snapshot FILE]`:
 * the range of the input topics through the pipeline as an isolated run
 * (connectors/replay/replay.ts, docs/replay.md#replay), and
 * `sep replay --delete ID` to remove one.
 *
 * The run's output namespace must be fixed before the topic catalog loads, so
 * the command starts itself again with SEP_OUTPUT_PREFIX (and the `--config`
 * knobs) in the environment; the second process does the work.
 */
import { UsageError } from '../../streams/runtime/errors.ts';
import { connectAdmin, createKafka, type Admin } from '../../streams/runtime/kafka.ts';
import { OUTPUT_PREFIX, TOPICS, TOPIC_PREFIX } from '../../streams/runtime/topics.ts';
import { offsetsJson, planRange, replayNamespace, ReplayRefusedError, runIdUses, type ReplayRange } from '../../connectors/replay/replay.ts';
import { deleteRun } from '../../connectors/replay/delete-run.ts';
import { SinkDatabase, waitForDatabase } from '../../connectors/sink/database.ts';
import { parseConfigOverrides } from '../pipeline/knob-overrides.ts';
import { resolveCalibrationConfig } from '../../streams/calibration/config.ts';
import { readSnapshotFile } from '../../streams/calibration/snapshot.ts';
import { recordedServiceUrls } from '../../ops/stack/index.ts';
import { connectDatabase, connectServices } from '../pipeline/services.ts';
import { resolvePipelineConfig, runPipeline, sinkGroupId } from '../pipeline/run.ts';
import { loadCalibrationSnapshot } from './calib.ts';
import { datetimeFlag, runIdFlag, runSelf, type Command } from './command.ts';

const log = (line: string) => console.log(line);
/** Set by `sep canary` for the runs row of each of its two replays. */
const CANARY_ENV = { id: 'SEP_CANARY_ID', color: 'SEP_CANARY_COLOR' } as const;

/** `replay-<UTC yyyymmdd-hhmmss>-<4 hex>`: unique enough for runs started by hand. */
export function defaultReplayRunId(now = Date.now(), rand = Math.random()): string {
  const stamp = new Date(now).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `replay-${stamp}-${Math.floor(rand * 0x10000).toString(16).padStart(4, '0')}`;
}

export const replayCmd: Command = {
  usage: `usage: sep replay --from T1 --to T2 [--run-id ID] [--config FILE] [--snapshot FILE]
       sep replay --delete ID
  Replays [T1, T2) of the input topics (${TOPICS.candles.name}, ${TOPICS.ticks.name}, ${TOPICS.orders.name},
  ${TOPICS.fills.name}, ${TOPICS.allocationOverlay.name}) through the pipeline as an isolated run
  (docs/replay.md#replay): its outputs go to topics ${TOPIC_PREFIX}replay.<ID>.<topic> and to
  TimescaleDB rows with run_id ID; nothing reads or writes the live topics' consumers' data or Redis.
  Each input partition runs from its first record at or after T1 to before its first
  record at or after T2; state starts clean (or from --snapshot). Prints a summary
  and records the run in TimescaleDB's runs table (kind replay).
  --from T1, --to T2  ISO-8601 times with their zone, e.g. 2026-11-13T00:00:00Z (required)
  --run-id ID         the run's id (default replay-<now>-<hex>); must not be in use
  --config FILE       JSON object of knob overrides on top of the environment, e.g.
                      {"GATES_SPAN_DAYS": 0.25, "HYSTERESIS_BUF": 0.1} (names as in docs/gates.md, …)
  --snapshot FILE     seed the cost calibration from a \`sep calib snapshot\` file
  --delete ID         remove replay ID: its topics, consumer groups, rows and runs row
  Exit codes: 0 done, 1 error or refused (nothing created), 2 usage.`,
  options: { from: { type: 'string' }, to: { type: 'string' }, 'run-id': { type: 'string' }, config: { type: 'string' }, snapshot: { type: 'string' }, delete: { type: 'string' } },
  async run(v) {
    if (v.delete !== undefined) {
      if (v.from !== undefined || v.to !== undefined) throw new UsageError('sep replay --delete ID takes no --from/--to');
      return deleteReplay(runIdFlag(v.delete, ''));
    }
    const from = datetimeFlag(v.from, 'from', 'sep replay');
    const to = datetimeFlag(v.to, 'to', 'sep replay');
    if (!(from < to)) throw new UsageError(`--from ${String(v.from)} is not before --to ${String(v.to)}: the range is [from, to)`);
    const runId = runIdFlag(v['run-id'], defaultReplayRunId());
    const namespace = replayNamespace(runId);
    if (OUTPUT_PREFIX !== namespace) {
      const overrides = v.config === undefined ? {} : parseConfigOverrides(String(v.config));
      // Checked here too, so a bad knob is reported before anything starts.
      resolvePipelineConfig({ ...process.env, ...overrides });
      const args = ['replay', '--from', new Date(from).toISOString(), '--to', new Date(to).toISOString(), '--run-id', runId];
      if (v.snapshot !== undefined) args.push('--snapshot', String(v.snapshot));
      return runSelf(args, { ...overrides, SEP_OUTPUT_PREFIX: namespace });
    }
    await replay({ from, to, runId, snapshot: v.snapshot === undefined ? undefined : String(v.snapshot) });
    return 0;
  },
};

interface ReplayOptions {
  from: number;
  to: number;
  runId: string;
  snapshot?: string;
}

/** The replay itself, in the process whose topic catalog has the run's output namespace. */
async function replay(o: ReplayOptions): Promise<void> {
  const config = resolvePipelineConfig();
  const canary = process.env[CANARY_ENV.id] ? { id: process.env[CANARY_ENV.id]!, color: process.env[CANARY_ENV.color] === 'green' ? 'green' as const : 'blue' as const } : undefined;
  const urls = recordedServiceUrls();
  // Shared between transactions: another replay (or psql) gets the embedded database's single slot in between.
  const database = new SinkDatabase(() => connectDatabase(urls.DATABASE_URL), { releaseAfterUse: true });
  const kafka = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: 'sep-replay' });
  const admin = await connectAdmin(kafka, urls.KAFKA_BROKERS);
  let range: ReplayRange;
  // Everything that can refuse the run, before anything is created: the snapshot file first (read and checksummed).
  const snapshot = o.snapshot === undefined ? undefined : await readSnapshotFile(o.snapshot, { maxBytes: resolveCalibrationConfig().snapshotMaxBytes });
  try {
    range = await planRange(admin, o.from, o.to);
    const uses = await runIdUses(admin, await waitForDatabase(database, log), o.runId);
    await database.release();
    if (uses.length) throw new ReplayRefusedError(`run id ${o.runId} is in use: ${uses.join('; ')}. Choose another --run-id, or remove it first with \`sep replay --delete ${o.runId}\``);
  } finally {
    await admin.disconnect();
  }
  const events = Object.entries(range.records).reduce((n, [, c]) => n + c, 0);
  log(`replay ${o.runId}: [${new Date(o.from).toISOString()}, ${new Date(o.to).toISOString()}), ${events.toLocaleString('en-US')} input records (${Object.entries(range.records).map(([t, n]) => `${t} ${n.toLocaleString('en-US')}`).join(', ')})`);
  log(`  outputs: topics ${OUTPUT_PREFIX}*, TimescaleDB rows with run_id ${o.runId}; consumer groups ${TOPIC_PREFIX}sep-*-${o.runId}`);

  const services = await connectServices({ clientId: 'sep-replay', log });
  try {
    if (snapshot) {
      await loadCalibrationSnapshot(services, o.runId, snapshot);
      log(`  calibration state seeded from ${o.snapshot} (${snapshot.instrumentCount} instruments)`);
    }
    const summary = await runPipeline({
      services, database, runId: o.runId, untilCaughtUp: true, timeoutMs: 24 * 3_600_000, log: (line) => log(`  ${line}`), config,
      replay: { from: o.from, to: o.to, starts: range.starts, stops: range.stops, canary, snapshot: o.snapshot },
      progress: replayProgress(range, events),
      summaryExtra: () => ({ range_records: range.records, start_offsets: offsetsJson(range.starts) }),
    });
    const seconds = summary.elapsedMs / 1000;
    log(`replay ${o.runId} done: ${events.toLocaleString('en-US')} input records in ${seconds.toFixed(1)} s (${Math.round(events / Math.max(0.001, seconds)).toLocaleString('en-US')} events/s), config ${summary.configHash.slice(0, 12)}`);
    for (const [table, rows] of Object.entries(summary.rowsByTable)) log(`  ${table}: ${rows.toLocaleString('en-US')} rows (run_id ${o.runId})`);
    log(`  topics: ${OUTPUT_PREFIX}features.v1, gates.v1, gates.blob.v1, alloc.weights.v1, markout.v1, calib.cost.v1, dlq.v1`);
    log(`  try: psql -c "SELECT * FROM runs WHERE run_id = '${o.runId}'"`);
  } finally {
    await database.close();
    await services.close();
  }
}

/** `features: 120,345 of 239,701 input records (50 %), 14,210 events/s, ETA 8 s` — then which stage is finishing. */
function replayProgress(range: ReplayRange, events: number) {
  const t0 = Date.now();
  return (what: string, positions: ReadonlyMap<string, bigint>): string => {
    let done = 0;
    for (const [topic, parts] of range.stops) {
      for (const [p, stop] of parts) {
        const start = range.starts.get(topic)?.get(p) ?? stop;
        const at = positions.get(`${topic}/${p}`) ?? start;
        done += Number((at < start ? start : at > stop ? stop : at) - start);
      }
    }
    if (what !== 'features') return `${what}: finishing (all ${events.toLocaleString('en-US')} input records processed)`;
    const rate = done / Math.max(0.001, (Date.now() - t0) / 1000);
    const eta = rate > 0 ? `, ETA ${Math.ceil((events - done) / rate)} s` : '';
    return `features: ${done.toLocaleString('en-US')} of ${events.toLocaleString('en-US')} input records (${Math.floor((100 * done) / Math.max(1, events))} %), ${Math.round(rate).toLocaleString('en-US')} events/s${eta}`;
  };
}

async function deleteReplay(runId: string): Promise<number> {
  const urls = recordedServiceUrls();
  const kafka = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: 'sep-replay' });
  const admin: Admin = await connectAdmin(kafka, urls.KAFKA_BROKERS);
  const database = new SinkDatabase(() => connectDatabase(urls.DATABASE_URL));
  try {
    const result = await deleteRun(admin, await waitForDatabase(database, log), runId, { sinkGroupId: sinkGroupId(runId) });
    log(`deleted replay ${runId}: ${result.topics.length} topic(s), ${result.groups.length} consumer group(s), ${result.rows} rows`);
    return 0;
  } finally {
    await database.close();
    await admin.disconnect();
  }
}
