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
import type { Services } from './services.ts';
import { sleep } from '../../ops/stack/process.ts';
import { startHttp } from './http.ts';

export const RUN_KNOBS = {
  SEP_REFRESH_AGGREGATES: { kind: 'boolean', default: false, doc: 'refresh the continuous aggregates when a --until-caught-up run completes (the embedded database runs no refresh policy; the aggregates are real-time either way)' },
} as const;

/** The topics the pipeline's TimescaleDB sink writes (each has a mapping in connectors/sink/tables.ts): inputs and outputs. */
export const SINK_TOPICS = [
  TOPICS.candles.name, TOPICS.ticks.name, TOPICS.orders.name, TOPICS.fills.name,
  TOPICS.features.name, TOPICS.gates.name, TOPICS.gatesBlob.name, TOPICS.allocations.name, TOPICS.allocationOverlay.name, TOPICS.markouts.name, TOPICS.costCalibration.name,
];

/** The sink's consumer group for a run: its offsets live in the database (sink_offsets), keyed by it. */
export const sinkGroupId = (runId: string) => `${TOPIC_PREFIX}sep-sink-${runId}`;

/** Latest feature per instrument, for operations (namespaced like the topics). */
export const LATEST_FEATURES_KEY = `${TOPIC_PREFIX}features:latest`;

export interface RunOptions {
  services: Services;
  /** The sink's database connection (reconnects after an outage). */
  database: SinkDatabase;
  redis: Redis;
  runId: string;
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
  elapsedMs: number;
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
  // Live input of the allocator, namespaced like the topics; each decision records what it saw.
  const killSwitch = new KillSwitchWatcher(o.redis, `${TOPIC_PREFIX}${KILL_SWITCH_KEY}`, o.log);
  await killSwitch.start();
  const account = new AccountWatcher(o.redis, `${TOPIC_PREFIX}${ACCOUNT_KEY}`, o.log);
  await account.start();
  const app = new StreamsApp({
    applicationId: `${TOPIC_PREFIX}sep-features-${o.runId}`, topology: pipelineTopology(catalog, { params, gates, markout, calibration }),
    kafka, admin, serde, guarantee, log: o.log,
  });
  const blobApp = new StreamsApp({
    applicationId: `${TOPIC_PREFIX}sep-gates-blob-${o.runId}`,
    topology: gatesBlobTopology({ expectedPartitions, instrumentsOf, log: o.log, allocator: { config: allocator, killSwitch: () => killSwitch.on, marginUtilisation: () => account.utilisation() } }),
    kafka, admin, serde, guarantee, log: o.log,
  });
  const sink = new TimescaleSink({ kafka, serde, database: o.database, producer, topics: SINK_TOPICS, groupId: sinkGroupId(o.runId), runId: o.runId, log: o.log });
  const snapshot = new LatestSnapshot({ kafka, serde, redis: o.redis, topic: TOPICS.features.name, hashKey: LATEST_FEATURES_KEY, groupId: `${TOPIC_PREFIX}sep-snapshot-${o.runId}` });
  // Namespaced like the topics, so a test or a second stack on one Redis cannot overwrite the live blob.
  const blobMirror = new GatesBlobMirror({ kafka, serde, redis: o.redis, groupId: `${TOPIC_PREFIX}sep-gates-blob-mirror-${o.runId}`, keyPrefix: TOPIC_PREFIX, gates });
  const allocationMirror = new AllocationWeightsMirror({ kafka, serde, redis: o.redis, groupId: `${TOPIC_PREFIX}sep-allocation-mirror-${o.runId}`, keyPrefix: TOPIC_PREFIX, log: o.log });
  const server = await startHttp(o.httpPort ?? 0, () => ({ status: app.state === 'running' && blobApp.state === 'running' && sink.state === 'running' ? 'ok' : app.state, features: app.state, gatesBlob: blobApp.state, sink: sink.state }));
  const configHash = await startRun(await o.database.client(), { runId: o.runId, kind: o.kind ?? 'live', config: fingerprintedKnobs({ catalog, params, gates, markout, calibration, allocator }) });
  o.log(`run ${o.runId} (${o.kind ?? 'live'}), config ${configHash.slice(0, 12)}`);
  let outcome: { status: 'completed' | 'stopped' | 'failed'; error?: string } = { status: 'stopped' };
  try {
    await app.start();
    await blobApp.start();
    await sink.start();
    await snapshot.start();
    await blobMirror.start();
    await allocationMirror.start();
    o.log(`pipeline running (run ${o.runId}): ${TOPICS.ticks.name} + ${TOPICS.candles.name} → features → ${TOPICS.features.name}, gates every ${gates.evalIntervalSec} s of stream time → ${TOPICS.gates.name}, ${TOPICS.gatesBlob.name} → allocator-lite → ${TOPICS.allocations.name}; ${TOPICS.fills.name} + ${TOPICS.orders.name} → ${TOPICS.markouts.name}, ${TOPICS.costCalibration.name}; sink → ${SINK_TOPICS.map((t) => TABLES[t]!.table).join(', ')}; ${LATEST_FEATURES_KEY}, ${blobMirror.keys.blob} and ${allocationMirror.key} in Redis`);
    if (o.untilCaughtUp) {
      const deadline = Date.now() + (o.timeoutMs ?? 600_000);
      let lastReport = Date.now();
      const wait = async (what: string, done: () => boolean | Promise<boolean>) => {
        while (!(await done())) {
          if (Date.now() - lastReport > 5000) {
            lastReport = Date.now();
            o.log(`waiting for ${what} to catch up: ${describePositions({ features: app.positions, gatesBlob: blobApp.positions, sink: sink.positions(), snapshot: snapshot.positions, blobMirror: blobMirror.positions })}`);
          }
          if (o.signal?.aborted) throw new Error(`stopped by a signal while waiting for ${what} to catch up`);
          const failure = app.error() ?? blobApp.error();
          if (failure) throw failure;
          if (Date.now() > deadline) throw new Error(`${what} did not catch up within ${(o.timeoutMs ?? 600_000) / 1000} s`);
          await sleep(100);
        }
      };
      const candleEnds = new Map([[TOPICS.candles.name, await endOffsets(admin, TOPICS.candles.name)]]);
      const inputEnds = new Map([...candleEnds]);
      for (const t of [TOPICS.ticks.name, TOPICS.fills.name, TOPICS.orders.name]) inputEnds.set(t, await endOffsets(admin, t));
      await wait('features', () => app.caughtUp(inputEnds));
      const partialEnds = new Map([[TOPICS.gatesPartial.name, await endOffsets(admin, TOPICS.gatesPartial.name)]]);
      await wait('gates blob', () => blobApp.caughtUp(partialEnds));
      const featureEnds = await endOffsets(admin, TOPICS.features.name);
      // Every upstream app has caught up: the sink's topics are complete now.
      const sinkEnds = new Map(await Promise.all(SINK_TOPICS.map(async (t) => [t, await endOffsets(admin, t)] as const)));
      await wait('sink', () => sink.caughtUp(sinkEnds));
      await wait('redis snapshot', () => [...featureEnds].every(([p, high]) => high === 0n || (snapshot.positions.get(p) ?? 0n) >= high));
      const blobEnds = await endOffsets(admin, TOPICS.gatesBlob.name);
      await wait('gates blob mirror', () => [...blobEnds].every(([p, high]) => high === 0n || (blobMirror.positions.get(p) ?? 0n) >= high));
      const lastSeq = await latestAllocationSeq(kafka, serde);
      await wait('allocation mirror', () => lastSeq === undefined || (allocationMirror.lastSeq ?? 0) >= lastSeq);
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
    await snapshot.stop();
    await blobMirror.stop();
    await allocationMirror.stop();
    killSwitch.stop();
    account.stop();
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
    const summary = { rows_written: sink.rowsWritten, database_outages: sink.outages, elapsed_ms: Date.now() - t0 };
    await finishRun(await o.database.client(), o.runId, outcome.status, { ...outcome, summary })
      .catch((err: Error) => o.log(`could not record the end of run ${o.runId} in runs: ${err.message}`));
  }
  return { rows: sink.rowsWritten, elapsedMs: Date.now() - t0 };
}

/** seq of the last committed decision on alloc.weights.v1 (one partition), or undefined when there is none. */
async function latestAllocationSeq(kafka: Kafka, serde: AvroSerde): Promise<number | undefined> {
  const records = await readTopicToEnd(kafka, TOPICS.allocations.name);
  const last = records.at(-1);
  return last ? ((await serde.decode(TOPICS.allocations.name, last.value)) as { seq: number }).seq : undefined;
}
