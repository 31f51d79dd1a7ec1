/**
 * The subcommands of `sep`. Each parses its flags (node:util parseArgs,
 * strict), validates them with a message that names the flag and the fix,
 * and returns an exit code.
 */
import path from 'node:path';
import { UsageError } from '../../streams/runtime/errors.ts';
import { resolveConfig } from '../../streams/runtime/config.ts';
import { createProducer, endOffsets } from '../../streams/runtime/kafka.ts';
import { TOPICS, TOPIC_PREFIX } from '../../streams/runtime/topics.ts';
import { GATES_BLOB_KEY } from '../../connectors/redis/gates-blob.ts';
import type { GatesBlob } from '../../streams/gates/blob.ts';
import { InstrumentCatalog } from '../../streams/model/instruments.ts';
import type { RecordKind } from '../../streams/model/records.ts';
import { formatReport, importFile, resolveImportFiles, type FileReport } from '../../connectors/import/importer.ts';
import { generateRecordedDay } from '../generate/recorded-day.ts';
import { writeRecordedDay } from '../generate/write.ts';
import { connectDatabase, connectRedis, connectServices } from '../pipeline/services.ts';
import { SinkDatabase } from '../../connectors/sink/database.ts';
import { resolvePipelineConfig, runPipeline } from '../pipeline/run.ts';
import { runCalib } from './calib.ts';
import { sinkCmd } from './sink.ts';
import { overlaysCmd } from './overlays.ts';
import { rewindCmd } from './rewind.ts';
import { offlineCmd } from './offline.ts';
import { replayCmd } from './replay.ts';
import { canaryCmd } from './canary.ts';
import { runIdFlag, type Command } from './command.ts';
import { redact, stackUp } from '../../ops/stack/index.ts';

export type { Command } from './command.ts';

export const BUNDLED_DAY = path.resolve(import.meta.dirname, '..', '..', 'data', 'recorded', '2026-11-13');
export const BUNDLED_SEED = 20261113;

const log = (line: string) => console.log(line);

function isoFlag(flag: string, v: string | boolean | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const ms = Date.parse(String(v));
  if (!Number.isFinite(ms) || ms % 60_000 !== 0) throw new UsageError(`--${flag} ${JSON.stringify(v)}: give a minute-aligned ISO-8601 UTC time, e.g. 2026-11-13T00:00:00Z`);
  return ms;
}

function intFlag(flag: string, v: string | boolean | undefined, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag} ${JSON.stringify(v)}: give a whole number in [${min}, ${max}]`);
  return n;
}

const generate: Command = {
  usage: `usage: sep generate [--out DIR] [--seed N] [--from ISO] [--days N]
  Writes a seeded recorded day as candles.ndjson, ticks.ndjson.gz, orders.ndjson,
  fills.ndjson and manifest.json. Defaults regenerate the bundled day:
  --out ${path.relative(process.cwd(), BUNDLED_DAY)} --seed ${BUNDLED_SEED} --from 2026-11-13T00:00:00Z --days 3`,
  options: { out: { type: 'string' }, seed: { type: 'string' }, from: { type: 'string' }, days: { type: 'string' } },
  async run(v) {
    const from = isoFlag('from', v.from, Date.UTC(2026, 10, 13));
    const days = intFlag('days', v.days, 3, 1, 60);
    const opts = { seed: intFlag('seed', v.seed, BUNDLED_SEED, 0, 2 ** 32 - 1), from, to: from + days * 86_400_000 };
    const out = String(v.out ?? BUNDLED_DAY);
    const files = writeRecordedDay(out, generateRecordedDay(opts), opts);
    for (const [name, f] of Object.entries(files)) log(`${path.join(out, name)}: ${f.records} records`);
    return 0;
  },
};

const importCmd: Command = {
  usage: `usage: sep import <file|dir>... [--kind candles|ticks|orders|fills]
  Imports NDJSON/CSV files (optionally .gz) into md.candles.v1, md.ticks.v1,
  exec.orders.v1, exec.fills.v1 keeping each record's timestamp. The kind comes
  from the file name (candles*, ticks*, orders*, fills*) unless --kind is given.
  Bad lines are reported with file:line, counted and sent to dlq.v1; the rest
  is imported. Exit code 0 when every line was imported, 3 when some were rejected.`,
  options: { kind: { type: 'string' } },
  positionals: true,
  async run(v, positionals) {
    const kinds = ['candles', 'ticks', 'orders', 'fills'];
    if (v.kind !== undefined && !kinds.includes(String(v.kind))) throw new UsageError(`--kind ${JSON.stringify(v.kind)}: use one of ${kinds.join(', ')}`);
    const files = resolveImportFiles(positionals, v.kind as RecordKind | undefined);
    const reports = await importAll(files);
    return reports.some((r) => r.rejected > 0 || r.fileError) ? 3 : 0;
  },
};

async function importAll(files: { file: string; kind: RecordKind }[]): Promise<FileReport[]> {
  const catalog = InstrumentCatalog.fromEnv();
  const services = await connectServices({ clientId: 'sep-import', log });
  const producer = await createProducer(services.kafka);
  const reports: FileReport[] = [];
  try {
    for (const { file, kind } of files) {
      const t0 = Date.now();
      const report = await importFile({ producer, serde: services.serde, catalog }, file, kind);
      reports.push(report);
      log(`${formatReport(report)}\n  (${((Date.now() - t0) / 1000).toFixed(1)} s, ${Math.round(report.lines / Math.max(0.001, (Date.now() - t0) / 1000)).toLocaleString('en-US')} lines/s)`);
    }
  } finally {
    await producer.disconnect();
    await services.close();
  }
  return reports;
}

const run: Command = {
  usage: `usage: sep run [--run-id ID] [--until-caught-up]
  Runs the pipeline: md.ticks.v1 + md.candles.v1 → features → rolling gates →
  features.v1, gates.v1, gates.blob.v1 (and Redis opt:rolling:gates_blob), and
  the sink (candles, features) into TimescaleDB, stamped with the run id
  (default live). Knobs: docs/gates.md, docs/regime.md. Stops on SIGTERM/SIGINT
  after the current batch, or with --until-caught-up once everything on the
  input topics at start is processed and written.`,
  options: { 'run-id': { type: 'string' }, 'until-caught-up': { type: 'boolean' } },
  async run(v) {
    const runId = runIdFlag(v['run-id'], 'live');
    const summary = await withPipeline(runId, Boolean(v['until-caught-up']), resolveConfig(HTTP_CONFIG).SEP_HTTP_PORT);
    log(`run ${runId}: ${summary.rows} rows written in ${(summary.elapsedMs / 1000).toFixed(1)} s`);
    return 0;
  },
};

const HTTP_CONFIG = {
  SEP_HTTP_PORT: { kind: 'integer', default: 8000, min: 0, max: 65535, doc: 'port of /health and /metrics; 0 disables' },
} as const;

async function withPipeline(runId: string, untilCaughtUp: boolean, httpPort = 0) {
  // Knobs first: a bad one stops here, before any connection, naming the knob and its range.
  const config = resolvePipelineConfig();
  const services = await connectServices({ clientId: 'sep-run', log });
  const database = new SinkDatabase(() => connectDatabase(services.urls.DATABASE_URL));
  await database.client(); // fail fast, with the fix in the message, when the database is not there at start
  const redis = await connectRedis(services.urls.REDIS_URL);
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    return await runPipeline({ services, database, redis, runId, untilCaughtUp, log, signal: controller.signal, httpPort, config });
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    redis.disconnect();
    await database.close();
    await services.close();
  }
}

const migrateCmd: Command = {
  usage: 'usage: sep migrate\n  Applies pending migrations from sql/timescale/ (idempotent).',
  options: {},
  async run() {
    const { recordedServiceUrls } = await import('../../ops/stack/index.ts');
    const db = await connectDatabase(recordedServiceUrls().DATABASE_URL);
    const { rows } = await db.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version');
    for (const r of rows) log(`applied ${r.name}`);
    await db.end();
    return 0;
  },
};

const demo: Command = {
  usage: `usage: sep demo
  Starts the local stack (or uses KAFKA_BROKERS, SCHEMA_REGISTRY_URL,
  DATABASE_URL, REDIS_URL), imports the bundled recorded day once, runs the
  pipeline until it has caught up, and prints a summary and SQL to try.`,
  options: {},
  async run() {
    const t0 = Date.now();
    const urls = await stackUp((line) => log(`[stack] ${line}`));
    const services = await connectServices({ clientId: 'sep-demo', log });
    const candleEnds = await endOffsets(services.admin, TOPICS.candles.name);
    await services.close();
    if ([...candleEnds.values()].every((o) => o === 0n)) {
      await importAll(resolveImportFiles([BUNDLED_DAY]));
    } else {
      log(`${TOPICS.candles.name} already holds data: skipping the import (sep import adds more)`);
    }
    const summary = await withPipeline('live', true);
    log(`pipeline: ${summary.rows} new rows in TimescaleDB in ${(summary.elapsedMs / 1000).toFixed(1)} s`);
    await printDemoSummary(urls.DATABASE_URL);
    await printGatesSummary(urls.REDIS_URL);
    log(`demo finished in ${((Date.now() - t0) / 1000).toFixed(1)} s; the stack keeps running (npm run stack:down stops it)`);
    return 0;
  },
};

/** The newest gates blob, as the runbook reads it from Redis. */
async function printGatesSummary(redisUrl: string): Promise<void> {
  const redis = await connectRedis(redisUrl);
  try {
    const key = `${TOPIC_PREFIX}${GATES_BLOB_KEY}`;
    const raw = await redis.get(key);
    if (!raw) {
      log(`\nno gates blob in Redis ${key} yet`);
      return;
    }
    const blob = JSON.parse(raw) as GatesBlob;
    const names = Object.keys(blob.gates);
    const eligible = names.filter((i) => blob.gates[i]);
    log(`\ngates blob at ${new Date(blob.ts).toISOString()} (redis-cli GET ${key}): ${eligible.length} of ${names.length} eligible${eligible.length ? ` (${eligible.join(', ')})` : ''}; spans intact: ${names.filter((i) => blob.span_ok[i]).length}`);
    if (eligible.length === 0) {
      log('  one recorded day is shorter than the default 7-day spans (GATES_SPAN_DAYS, SPAN_MIN_BARS) and random-walk prices rarely reach GUARD_MIN_COHERENCE 0.55; the reasons per instrument are on gates.v1, the knobs in docs/gates.md');
    }
  } finally {
    redis.disconnect();
  }
}

async function printDemoSummary(databaseUrl: string): Promise<void> {
  const db = await connectDatabase(databaseUrl);
  try {
    const { rows } = await db.query<{ instrument: string; bars: string; first: Date; last: Date; vol_bps: number; atr: number }>(`
      SELECT instrument, count(*) AS bars, min(ts) AS first, max(ts) AS last,
             last(ewma_vol, ts) * 1e4 AS vol_bps, last(atr14, ts) AS atr
      FROM features WHERE run_id = 'live' GROUP BY instrument ORDER BY instrument`);
    log('\nfeatures in TimescaleDB (run_id live):');
    log('instrument   bars  first                     last                      ewma_vol(bps/bar)  atr14');
    for (const r of rows) {
      log(`${r.instrument.padEnd(10)} ${String(r.bars).padStart(6)}  ${r.first.toISOString()}  ${r.last.toISOString()}  ${Number(r.vol_bps).toFixed(3).padStart(17)}  ${Number(r.atr).toPrecision(5)}`);
    }
  } finally {
    await db.end();
  }
  log(`\ntry it (the embedded database takes one connection at a time):
  psql ${redact(databaseUrl)} -c "SELECT time_bucket('1 hour', ts) AS hour, instrument, avg(ewma_vol) * 1e4 AS vol_bps, last(atr14, ts) AS atr FROM features WHERE instrument = 'EUR_USD' GROUP BY 1, 2 ORDER BY 1"`);
}

const calib: Command = {
  usage: `usage: sep calib snapshot --run-id ID --out FILE | sep calib verify FILE | sep calib load FILE --run-id ID
  The cost-calibration state as a checksummed snapshot (docs/calibration.md):
  snapshot reads run ID's state from its changelog; verify checks a file's
  header and checksum; load seeds a new run's state from a file (refused if
  the run already has state). Exit 1 with the problem named on a bad file.`,
  options: { 'run-id': { type: 'string' }, out: { type: 'string' } },
  positionals: true,
  run: (v, positionals) => runCalib(v, positionals, (id) => runIdFlag(id, 'live')),
};

export const COMMANDS: Record<string, Command> = { generate, import: importCmd, run, sink: sinkCmd, overlays: overlaysCmd, migrate: migrateCmd, demo, calib, offline: offlineCmd, rewind: rewindCmd, replay: replayCmd, canary: canaryCmd };
