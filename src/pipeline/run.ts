/**
 * `sep run`: the pipeline as it stands — the features app on the stream
 * runtime (exactly-once by default), the TimescaleDB sink (candles, features)
 * and the Redis snapshot of the latest features — until SIGTERM/SIGINT, or
 * with `untilCaughtUp` until everything on the input topics at start has been
 * processed and written.
 */
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { createProducer, endOffsets } from '../../streams/runtime/kafka.ts';
import { TOPICS, TOPIC_PREFIX } from '../../streams/runtime/topics.ts';
import { StreamsApp, type Guarantee } from '../../streams/runtime/streams-app.ts';
import { InstrumentCatalog } from '../../streams/model/instruments.ts';
import { featuresTopology } from '../../streams/features/processor.ts';
import { TimescaleSink } from '../../connectors/sink/timescale-sink.ts';
import { LatestSnapshot } from '../../connectors/redis/latest-snapshot.ts';
import type { Services } from './services.ts';
import { sleep } from '../../ops/stack/process.ts';
import { startHttp } from './http.ts';

/** Latest feature per instrument, for operations (namespaced like the topics). */
export const LATEST_FEATURES_KEY = `${TOPIC_PREFIX}features:latest`;

export interface RunOptions {
  services: Services;
  db: pg.ClientBase;
  redis: Redis;
  runId: string;
  guarantee?: Guarantee;
  untilCaughtUp?: boolean;
  /** Give up waiting for catch-up after this long, ms (default 10 min). */
  timeoutMs?: number;
  log: (line: string) => void;
  signal?: AbortSignal;
  /** Port of /health and /metrics; 0 disables. */
  httpPort?: number;
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
  const producer = await createProducer(kafka);
  const app = new StreamsApp({
    applicationId: `${TOPIC_PREFIX}sep-features-${o.runId}`, topology: featuresTopology(InstrumentCatalog.fromEnv()),
    kafka, admin, serde, guarantee: o.guarantee ?? 'exactly_once', log: o.log,
  });
  const sink = new TimescaleSink({ kafka, serde, db: o.db, producer, topics: [TOPICS.candles.name, TOPICS.features.name], groupId: `${TOPIC_PREFIX}sep-sink-${o.runId}`, runId: o.runId, log: o.log });
  const snapshot = new LatestSnapshot({ kafka, serde, redis: o.redis, topic: TOPICS.features.name, hashKey: LATEST_FEATURES_KEY, groupId: `${TOPIC_PREFIX}sep-snapshot-${o.runId}` });
  const server = await startHttp(o.httpPort ?? 0, () => ({ status: app.state === 'running' && sink.state === 'running' ? 'ok' : app.state, features: app.state, sink: sink.state }));
  try {
    await app.start();
    await sink.start();
    await snapshot.start();
    o.log(`pipeline running (run ${o.runId}): ${TOPICS.candles.name} → features → ${TOPICS.features.name}; sink → candles, features; ${LATEST_FEATURES_KEY} in Redis`);
    if (o.untilCaughtUp) {
      const deadline = Date.now() + (o.timeoutMs ?? 600_000);
      let lastReport = Date.now();
      const wait = async (what: string, done: () => boolean | Promise<boolean>) => {
        while (!(await done())) {
          if (Date.now() - lastReport > 5000) {
            lastReport = Date.now();
            o.log(`waiting for ${what} to catch up: ${describePositions({ features: app.positions, sink: sink.positions(), snapshot: snapshot.positions })}`);
          }
          if (o.signal?.aborted) throw new Error(`stopped by a signal while waiting for ${what} to catch up`);
          const failure = app.error();
          if (failure) throw failure;
          if (Date.now() > deadline) throw new Error(`${what} did not catch up within ${(o.timeoutMs ?? 600_000) / 1000} s`);
          await sleep(100);
        }
      };
      const candleEnds = new Map([[TOPICS.candles.name, await endOffsets(admin, TOPICS.candles.name)]]);
      await wait('features', () => app.caughtUp(candleEnds));
      const featureEnds = await endOffsets(admin, TOPICS.features.name);
      await wait('sink', () => sink.caughtUp(new Map([...candleEnds, [TOPICS.features.name, featureEnds]])));
      await wait('redis snapshot', () => [...featureEnds].every(([p, high]) => high === 0n || (snapshot.positions.get(p) ?? 0n) >= high));
    } else {
      await new Promise<void>((resolve) => {
        if (o.signal?.aborted) resolve();
        o.signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  } finally {
    await app.stop();
    await sink.stop();
    await snapshot.stop();
    await producer.disconnect();
    server?.close();
  }
  return { rows: sink.rowsWritten, elapsedMs: Date.now() - t0 };
}
