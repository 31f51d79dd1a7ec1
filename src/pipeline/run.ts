/**
 * `sep run`: the pipeline as it stands — the signal app on the stream runtime
 * (ticks + candles → features → rolling gates; exactly-once by default), the
 * gates blob stage, the TimescaleDB sink (candles, features) and the Redis
 * snapshots (latest features, the gates blob) — until SIGTERM/SIGINT, or with
 * `untilCaughtUp` until everything on the input topics at start has been
 * processed and written.
 */
import type { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import { createProducer, endOffsets, partitionForKey, readTopicToEnd } from '../../streams/runtime/kafka.ts';
import type { AvroSerde } from '../../streams/runtime/serde.ts';
import { TOPICS, TOPIC_PREFIX } from '../../streams/runtime/topics.ts';
import { resolveConfig } from '../../streams/runtime/config.ts';
import { StreamsApp, type Guarantee } from '../../streams/runtime/streams-app.ts';
import { InstrumentCatalog } from '../../streams/model/instruments.ts';
import { DEFAULT_FEATURE_PARAMS } from '../../streams/features/features.ts';
import { resolveRegimeParams } from '../../streams/features/regime.ts';
import { resolveGatesConfig } from '../../streams/gates/config.ts';
import { fingerprintedKnobs, pipelineTopology, resolveExecutionConfig, type PipelineKnobs } from '../../streams/execution/topology.ts';
import { resolveMarkoutConfig } from '../../streams/markout/config.ts';
import { resolveCalibrationConfig } from '../../streams/calibration/config.ts';
import { gatesBlobTopology } from '../../streams/gates/blob-processor.ts';
import { TimescaleSink } from '../../connectors/sink/timescale-sink.ts';
import { TABLES } from '../../connectors/sink/tables.ts';
import type { SinkDatabase } from '../../connectors/sink/database.ts';
import { finishRun, startRun, type RunKind } from '../../connectors/sink/runs.ts';
import { AllocationWeightsMirror } from '../../connectors/redis/allocation-weights.ts';
import { ACCOUNT_KEY, AccountWatcher, KILL_SWITCH_KEY, KillSwitchWatcher } from '../../connectors/redis/allocator-inputs.ts';
import { resolveAllocatorConfig } from '../../streams/allocation/config.ts';
import { LatestSnapshot } from '../../connectors/redis/latest-snapshot.ts';
import { GatesBlobMirror } from '../../connectors/redis/gates-blob.ts';
import { offsetsJson } from '../../connectors/replay/replay.ts';
import type { Services } from './services.ts';
import { sleep } from '../../ops/stack/process.ts';
import { startHttp } from './http.ts';

export const RUN_KNOBS = {
  SEP_REFRESH_AGGREGATES: { kind: 'boolean', default: false, doc: 'refresh the continuous aggregates when a --until-caught-up run completes (the embedded database runs no refresh policy; the aggregates are real-time either way)' },
} as const;

/** What the pipeline computes and its sink writes; all a replay's sink writes (its inputs are the live topics' records, in the database once). */
export const REPLAY_SINK_TOPICS = [
  TOPICS.features.name, TOPICS.gates.name, TOPICS.gatesBlob.name, TOPICS.allocations.name, TOPICS.markouts.name, TOPICS.costCalibration.name,
];

/** The topics the pipeline's TimescaleDB sink writes (each has a mapping in connectors/sink/tables.ts): inputs and outputs. */
export const SINK_TOPICS = [
  TOPICS.candles.name, TOPICS.ticks.name, TOPICS.orders.name, TOPICS.fills.name, TOPICS.allocationOverlay.name, ...REPLAY_SINK_TOPICS,
];

/** The sink's consumer group for a run: its offsets live in the database (sink_offsets), keyed by it. */
export const sinkGroupId = (runId: string) => `${TOPIC_PREFIX}sep-sink-${runId}`;

/** Latest feature per instrument, for operations (namespaced like the topics). */
export const LATEST_FEATURES_KEY = `${TOPIC_PREFIX}features:latest`;

export interface RunOptions {
  services: Services;
  /** The sink's database connection (reconnects after an outage). */
  database: SinkDatabase;
  /** The live run's Redis (snapshots, kill switch, account); a replay has none. */
  redis?: Redis;
  runId: string;
  /** A replay (`sep replay`): bounded inputs, no Redis; the outputs' namespace is SEP_OUTPUT_PREFIX's. */
  replay?: ReplayBounds;
  /** The `runs` row's kind (default live). */
  kind?: RunKind;
  guarantee?: Guarantee;
  untilCaughtUp?: boolean;
  /** Give up waiting for catch-up after this long, ms (default 10 min). */
  timeoutMs?: number;
  log: (line: string) => void;
  signal?: AbortSignal;
  /** Port of /health and /metrics; 0 disables. */
  httpPort?: number;
  /** Resolved processor knobs (default: from the environment). */
  config?: PipelineConfig;
  /** The line logged every 5 s while waiting to catch up, from the signal app's positions (default: every consumer's positions). */
  progress?: (what: string, features: ReadonlyMap<string, bigint>) => string;
  /** More for the runs row's summary when the run ends (a replay's counts). */
  summaryExtra?: () => Record<string, unknown>;
}

/** What makes a run a replay: its range and where on each input it stops. */
export interface ReplayBounds {
  /** The range [from, to), epoch ms, for the runs row. */
  from: number;
  to: number;
  /** Per input topic and partition, the offset the run starts at (its first record at or after `from`). */
  starts: Map<string, Map<number, bigint>>;
  /** Per input topic and partition, the offset the run stops before (its first record at or after `to`). */
  stops: Map<string, Map<number, bigint>>;
  canary?: { id: string; color: 'blue' | 'green' };
  /** A calibration snapshot the run's state was seeded from (`sep calib load`), for the runs row. */
  snapshot?: string;
}

export interface PipelineConfig extends PipelineKnobs {
  /** Accepted but changed values (e.g. a clamped pair buffer), to log once. */
  warnings: string[];
}

/** Every processor knob, resolved and checked: a bad one throws a ConfigError naming it and its range. */
export function resolvePipelineConfig(env: NodeJS.ProcessEnv = process.env): PipelineConfig {
  const catalog = InstrumentCatalog.fromEnv(env);
  const params = { ...DEFAULT_FEATURE_PARAMS, regime: resolveRegimeParams({}, env) };
  const { config: gates, warnings } = resolveGatesConfig({}, env);
  const markout = resolveMarkoutConfig({}, env);
  const calibration = { ...resolveCalibrationConfig({}, env), ...resolveExecutionConfig(env) };
  const allocator = resolveAllocatorConfig({}, env);
  return { catalog, params, gates, markout, calibration, allocator, warnings };
}

export interface RunSummary {
  rows: number;
  /** Rows written per table. */
  rowsByTable: Record<string, number>;
  elapsedMs: number;
  configHash: string;
}

function describePositions(parts: Record<string, Map<string | number, bigint>>): string {
  return Object.entries(parts).map(([name, m]) => `${name} ${[...m].map(([k, v]) => `${k}@${v}`).join(' ')}`).join('; ');
}

export async function runPipeline(o: RunOptions): Promise<RunSummary> {
  const t0 = Date.now();
  const { kafka, admin, serde } = o.services;
  const { catalog, params, gates, markout, calibration, allocator, warnings } = o.config ?? resolvePipelineConfig();
  for (const w of warnings) o.log(`warning: ${w}`);
  const guarantee = o.guarantee ?? 'exactly_once';
  const partitions = (await admin.fetchTopicMetadata({ topics: [TOPICS.candles.name] })).topics[0]!.partitions.length;
  const instrumentsOf = (p: number) => catalog.list().filter((i) => partitionForKey(i, partitions) === p);
  const expectedPartitions = [...new Set(catalog.list().map((i) => partitionForKey(i, partitions)))];
  const producer = await createProducer(kafka);
  // Live inputs of the allocator, namespaced like the topics; each decision records what it saw.
  // A replay has none (docs/replay.md): its decisions are those of a run with the switch off and no account.
  const live = o.replay ? undefined : liveRedisParts(o, gates);
  await live?.killSwitch.start();
  await live?.account.start();
  const flat = (offsets: Map<string, Map<number, bigint>>) => new Map([...offsets].flatMap(([t, parts]) => [...parts].map(([p, off]) => [`${t}/${p}`, off] as const)));
  const stopAt = o.replay && flat(o.replay.stops);
  const startAt = o.replay && flat(o.replay.starts);
  const app = new StreamsApp({
    applicationId: `${TOPIC_PREFIX}sep-features-${o.runId}`, topology: pipelineTopology(catalog, { params, gates, markout, calibration }),
    kafka, admin, serde, guarantee, log: o.log, stopAt, startAt,
  });
  const allocatorInputs = live ? { killSwitch: () => live.killSwitch.on, marginUtilisation: () => live.account.utilisation() } : {};
  const blobApp = new StreamsApp({
    applicationId: `${TOPIC_PREFIX}sep-gates-blob-${o.runId}`,
    topology: gatesBlobTopology({ expectedPartitions, instrumentsOf, log: o.log, allocator: { config: allocator, ...allocatorInputs } }),
    kafka, admin, serde, guarantee, log: o.log, stopAt, startAt,
  });
  const sinkTopics = o.replay ? REPLAY_SINK_TOPICS : SINK_TOPICS;
  const sink = new TimescaleSink({ kafka, serde, database: o.database, producer, topics: sinkTopics, groupId: sinkGroupId(o.runId), runId: o.runId, log: o.log });
  const server = await startHttp(o.httpPort ?? 0, () => ({ status: app.state === 'running' && blobApp.state === 'running' && sink.state === 'running' ? 'ok' : app.state, features: app.state, gatesBlob: blobApp.state, sink: sink.state }));
  const kind = o.kind ?? (o.replay ? 'replay' : 'live');
  const configHash = await startRun(await o.database.client(), {
    runId: o.runId, kind, config: fingerprintedKnobs({ catalog, params, gates, markout, calibration, allocator }),
    rangeFrom: o.replay?.from, rangeTo: o.replay?.to, canary: o.replay?.canary, snapshot: o.replay?.snapshot,
    endOffsets: o.replay && offsetsJson(o.replay.stops),
  });
  await o.database.release();
  o.log(`run ${o.runId} (${kind}), config ${configHash.slice(0, 12)}`);
  let outcome: { status: 'completed' | 'stopped' | 'failed'; error?: string } = { status: 'stopped' };
  let summary: RunSummary = { rows: 0, rowsByTable: {}, elapsedMs: 0, configHash };
  try {
    await app.start();
    await blobApp.start();
    await sink.start();
    await live?.snapshot.start();
    await live?.blobMirror.start();
    await live?.allocationMirror.start();
    const redisKeys = live ? `; ${LATEST_FEATURES_KEY}, ${live.blobMirror.keys.blob} and ${live.allocationMirror.key} in Redis` : '; no Redis (a replay)';
    o.log(`pipeline running (run ${o.runId}): ${TOPICS.ticks.name} + ${TOPICS.candles.name} → features → ${TOPICS.features.name}, gates every ${gates.evalIntervalSec} s of stream time → ${TOPICS.gates.name}, ${TOPICS.gatesBlob.name} → allocator-lite → ${TOPICS.allocations.name}; ${TOPICS.fills.name} + ${TOPICS.orders.name} → ${TOPICS.markouts.name}, ${TOPICS.costCalibration.name}; sink → ${sinkTopics.map((t) => TABLES[t]!.table).join(', ')}${redisKeys}`);
    if (o.untilCaughtUp) {
      const deadline = Date.now() + (o.timeoutMs ?? 600_000);
      let lastReport = Date.now();
      const wait = async (what: string, done: () => boolean | Promise<boolean>) => {
        while (!(await done())) {
          if (Date.now() - lastReport > 5000) {
            lastReport = Date.now();
            if (o.progress) o.log(o.progress(what, app.positions));
            else o.log(`waiting for ${what} to catch up: ${describePositions({ features: app.positions, gatesBlob: blobApp.positions, sink: sink.positions(), ...(live ? { snapshot: live.snapshot.positions, blobMirror: live.blobMirror.positions } : {}) })}`);
          }
          if (o.signal?.aborted) throw new Error(`stopped by a signal while waiting for ${what} to catch up`);
          const failure = app.error() ?? blobApp.error();
          if (failure) throw failure;
          if (Date.now() > deadline) throw new Error(`${what} did not catch up within ${(o.timeoutMs ?? 600_000) / 1000} s`);
          await sleep(100);
        }
      };
      const inputEnds = new Map<string, Map<number, bigint>>();
      for (const t of [TOPICS.candles.name, TOPICS.ticks.name, TOPICS.fills.name, TOPICS.orders.name]) inputEnds.set(t, o.replay?.stops.get(t) ?? await endOffsets(admin, t));
      await wait('features', () => app.caughtUp(inputEnds));
      const partialEnds = new Map([[TOPICS.gatesPartial.name, await endOffsets(admin, TOPICS.gatesPartial.name)]]);
      await wait('gates blob', () => blobApp.caughtUp(partialEnds));
      const featureEnds = await endOffsets(admin, TOPICS.features.name);
      // Every upstream app has caught up: the sink's topics are complete now.
      const sinkEnds = new Map(await Promise.all(sinkTopics.map(async (t) => [t, await endOffsets(admin, t)] as const)));
      await wait('sink', () => sink.caughtUp(sinkEnds));
      if (live) {
        await wait('redis snapshot', () => [...featureEnds].every(([p, high]) => high === 0n || (live.snapshot.positions.get(p) ?? 0n) >= high));
        const blobEnds = await endOffsets(admin, TOPICS.gatesBlob.name);
        await wait('gates blob mirror', () => [...blobEnds].every(([p, high]) => high === 0n || (live.blobMirror.positions.get(p) ?? 0n) >= high));
        const lastSeq = await latestAllocationSeq(kafka, serde);
        await wait('allocation mirror', () => lastSeq === undefined || (live.allocationMirror.lastSeq ?? 0) >= lastSeq);
      }
      outcome = { status: 'completed' };
    } else {
      await new Promise<void>((resolve) => {
        if (o.signal?.aborted) resolve();
        o.signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  } catch (err) {
    outcome = { status: 'failed', error: (err as Error).message };
    throw err;
  } finally {
    await app.stop();
    await blobApp.stop();
    await sink.stop();
    await live?.snapshot.stop();
    await live?.blobMirror.stop();
    await live?.allocationMirror.stop();
    live?.killSwitch.stop();
    live?.account.stop();
    await producer.disconnect();
    server?.close();
    if (outcome.status === 'completed' && resolveConfig(RUN_KNOBS).SEP_REFRESH_AGGREGATES) {
      // The continuous aggregates as of the run's end (the embedded database runs no refresh policy).
      // Opt-in: the aggregates are real-time (correct without it), and a refresh over a database that
      // holds many runs takes a minute on the embedded one. After the sink stopped: refreshing cannot
      // run inside a transaction, and the sink shares the connection.
      const t = Date.now();
      await (await o.database.client()).query('CALL refresh_aggregates()')
        .then(() => o.log(`continuous aggregates refreshed in ${((Date.now() - t) / 1000).toFixed(1)} s`))
        .catch((err: Error) => o.log(`warning: could not refresh the continuous aggregates: ${err.message}; run CALL refresh_aggregates() by hand`));
    }
    summary = { rows: sink.rowsWritten, rowsByTable: Object.fromEntries([...sink.rowsByTable].sort()), elapsedMs: Date.now() - t0, configHash };
    const recorded = { rows_written: sink.rowsWritten, rows_by_table: summary.rowsByTable, database_outages: sink.outages, elapsed_ms: summary.elapsedMs, ...o.summaryExtra?.() };
    await o.database.client().then((db) => finishRun(db, o.runId, outcome.status, { ...outcome, summary: recorded }))
      .catch((err: Error) => o.log(`could not record the end of run ${o.runId} in runs: ${err.message}`));
    await o.database.release();
  }
  return summary;
}

/** The live run's Redis parts: the allocator's live inputs and the three read models. */
function liveRedisParts(o: RunOptions, gates: PipelineConfig['gates']) {
  const { kafka, serde } = o.services;
  const redis = o.redis;
  if (!redis) throw new Error('a live run needs Redis (RunOptions.redis)');
  return {
    killSwitch: new KillSwitchWatcher(redis, `${TOPIC_PREFIX}${KILL_SWITCH_KEY}`, o.log),
    account: new AccountWatcher(redis, `${TOPIC_PREFIX}${ACCOUNT_KEY}`, o.log),
    snapshot: new LatestSnapshot({ kafka, serde, redis, topic: TOPICS.features.name, hashKey: LATEST_FEATURES_KEY, groupId: `${TOPIC_PREFIX}sep-snapshot-${o.runId}` }),
    // Namespaced like the topics, so a test or a second stack on one Redis cannot overwrite the live blob.
    blobMirror: new GatesBlobMirror({ kafka, serde, redis, groupId: `${TOPIC_PREFIX}sep-gates-blob-mirror-${o.runId}`, keyPrefix: TOPIC_PREFIX, gates }),
    allocationMirror: new AllocationWeightsMirror({ kafka, serde, redis, groupId: `${TOPIC_PREFIX}sep-allocation-mirror-${o.runId}`, keyPrefix: TOPIC_PREFIX, log: o.log }),
  };
}

/** seq of the last committed decision on alloc.weights.v1 (one partition), or undefined when there is none. */
async function latestAllocationSeq(kafka: Kafka, serde: AvroSerde): Promise<number | undefined> {
  const records = await readTopicToEnd(kafka, TOPICS.allocations.name);
  const last = records.at(-1);
  return last ? ((await serde.decode(TOPICS.allocations.name, last.value)) as { seq: number }).seq : undefined;
}
