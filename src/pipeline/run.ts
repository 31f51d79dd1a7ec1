/**
 * `sep run`: the pipeline as it stands — the features job and the TimescaleDB
 * sink (candles, features) — until SIGTERM/SIGINT, or with `untilCaughtUp`
 * until everything on the input topics at start has reached the database.
 */
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { createProducer, endOffsets } from '../../streams/runtime/kafka.ts';
import { TOPICS } from '../../streams/runtime/topics.ts';
import { InstrumentCatalog } from '../../streams/model/instruments.ts';
import { TimescaleSink } from '../../connectors/sink/timescale-sink.ts';
import { FeaturesJob } from './features-job.ts';
import type { Services } from './services.ts';
import { sleep } from '../../ops/stack/process.ts';
import { startHttp } from './http.ts';

export interface RunOptions {
  services: Services;
  db: pg.ClientBase;
  redis: Redis;
  runId: string;
  untilCaughtUp?: boolean;
  /** Give up waiting for catch-up after this long, ms (default 10 min). */
  timeoutMs?: number;
  log: (line: string) => void;
  signal?: AbortSignal;
  /** Port of /health and /metrics; 0 disables (default 0 here, `sep run` passes SEP_HTTP_PORT). */
  httpPort?: number;
}

export interface RunSummary {
  features: number;
  deadLetters: number;
  rows: number;
  elapsedMs: number;
}

export async function runPipeline(o: RunOptions): Promise<RunSummary> {
  const t0 = Date.now();
  const { kafka, admin, serde } = o.services;
  const catalog = InstrumentCatalog.fromEnv();
  const producer = await createProducer(kafka);
  const features = new FeaturesJob({ kafka, serde, producer, catalog, groupId: `sep-features-${o.runId}`, redis: o.redis });
  const sink = new TimescaleSink({ kafka, serde, db: o.db, producer, topics: [TOPICS.candles.name, TOPICS.features.name], groupId: `sep-sink-${o.runId}`, runId: o.runId, log: o.log });
  const server = await startHttp(o.httpPort ?? 0, () => ({ status: features.state === 'running' && sink.state === 'running' ? 'ok' : 'starting', features: features.state, sink: sink.state }));
  try {
    await features.start();
    await sink.start();
    o.log(`pipeline running (run ${o.runId}): ${TOPICS.candles.name} → features → ${TOPICS.features.name}; sink → candles, features`);
    if (o.untilCaughtUp) {
      const candleEnds = await endOffsets(admin, TOPICS.candles.name);
      const deadline = Date.now() + (o.timeoutMs ?? 600_000);
      while (!features.caughtUp(candleEnds)) {
        if (Date.now() > deadline) throw new Error(`features did not catch up within ${(o.timeoutMs ?? 600_000) / 1000} s`);
        await sleep(200);
      }
      const sinkEnds = new Map([
        [TOPICS.candles.name, candleEnds],
        [TOPICS.features.name, await endOffsets(admin, TOPICS.features.name)],
      ]);
      while (!sink.caughtUp(sinkEnds)) {
        if (Date.now() > deadline) throw new Error(`sink did not catch up within ${(o.timeoutMs ?? 600_000) / 1000} s`);
        await sleep(200);
      }
    } else {
      await new Promise<void>((resolve) => {
        if (o.signal?.aborted) resolve();
        o.signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  } finally {
    await features.stop();
    await sink.stop();
    await producer.disconnect();
    server?.close();
  }
  return { features: features.featuresOut, deadLetters: features.deadLettered, rows: sink.rowsWritten, elapsedMs: Date.now() - t0 };
}
