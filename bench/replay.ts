/**
 * Replay throughput (issue 8): input events/s of `sep replay` end to end over
 * the bundled day scaled to --copies × 10 instruments (bench/scaled-day.ts),
 * side by side with raw kafkajs consumption of the same topics (the anchor)
 * and with `sep offline` over the same files, in one run.
 *
 *   npm run bench:replay -- [--runs 3] [--copies 5]
 *
 * Setup (not timed): the scaled day written to a temporary directory and
 * imported once with `sep import` into a fresh namespace
 * SEP_TOPIC_PREFIX=bench.replay-<hex>. (3 partitions, SEP_PARTITIONS'
 * default), SEP_INSTRUMENTS = the scaled names. Variants, interleaved per
 * round, medians of --runs:
 * - raw consumption: one kafkajs consumer (fresh group, read_committed, the
 *   fetch settings of StreamsApp's consumer) subscribed to the 4 input topics
 *   from the beginning, counting records until every partition reached the
 *   end offsets taken before it started. Timed from the group join to the
 *   last partition's end: connect + subscribe + join are reported apart and
 *   excluded.
 * - the same, also Avro-decoding every value as StreamsApp does
 *   (AvroSerde.decodeCached, else decode).
 * - `sep replay` of [2026-11-13, 2026-11-17) with a fresh run id: the
 *   pipeline's seconds from its `done:` line (runPipeline start → every output
 *   in TimescaleDB: two exactly-once applications and the sink) and the wall
 *   time of the child process (+ two process starts, planning, connections).
 *   The replay is deleted after the round (`sep replay --delete`, not timed).
 * - `sep offline` over the scaled files into a temporary directory (removed
 *   after): its own events/s (read + validate, topologies, write NDJSON).
 * Events/s = input records / seconds. The namespace's topics and the anchors'
 * consumer groups are deleted at the end (also on failure or SIGINT); the
 * registry keeps the namespace's subjects. Table on stdout, progress on
 * stderr (with each replay's output lines stamped with the seconds since its
 * spawn: where its time goes, to its 5 s progress lines). Never holds a database connection: the embedded TimescaleDB serves
 * one, and the replays need it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { argInt } from './args.ts';
import { fmt, median } from './stats.ts';
import { renamed, scaledDay } from './scaled-day.ts';

const RUNS = argInt('runs', 3);
const COPIES = argInt('copies', 5);
const FROM = '2026-11-13T00:00:00Z';
const TO = '2026-11-17T00:00:00Z';
/** A child (`sep import`, `sep replay`, `sep offline`) taking longer than this fails the bench (ms). */
const CHILD_TIMEOUT_MS = 30 * 60_000;
/** Raw consumption taking longer than this fails the bench (ms). */
const CONSUME_TIMEOUT_MS = 10 * 60_000;

const ROOT = path.resolve(import.meta.dirname, '..');
const SEP = path.join(ROOT, 'bin', 'sep.mjs');
const BENCH_ID = randomBytes(3).toString('hex');
// Before the topic catalog loads: this process's TOPICS are the bench namespace's.
process.env.SEP_TOPIC_PREFIX = `bench.replay-${BENCH_ID}.`;
process.env.SEP_PARTITIONS ??= '3';

const { DEFAULT_INSTRUMENTS } = await import('../streams/model/instruments.ts');
const { createKafka, connectAdmin, endOffsets } = await import('../streams/runtime/kafka.ts');
type Admin = import('../streams/runtime/kafka.ts').Admin;
const { TOPICS, TOPIC_PREFIX } = await import('../streams/runtime/topics.ts');
const { AvroSerde } = await import('../streams/runtime/serde.ts');
const { recordedServiceUrls } = await import('../ops/stack/index.ts');

const INPUTS = [TOPICS.candles, TOPICS.ticks, TOPICS.orders, TOPICS.fills];
const instruments = DEFAULT_INSTRUMENTS.flatMap((i) => Array.from({ length: COPIES }, (_, k) => renamed(i, k)));
const urls = recordedServiceUrls();
/** The environment of every `sep` child: the bench namespace, the scaled instruments, no HTTP port, no progress. */
const childEnv: NodeJS.ProcessEnv = {
  ...process.env, ...urls, CI: '1', SEP_TOPIC_PREFIX: TOPIC_PREFIX, SEP_INSTRUMENTS: instruments.join(','), SEP_HTTP_PORT: '0',
};

const log = (line: string): void => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const num = (s: string): number => Number(s.replaceAll(',', ''));

/** `lines`: each stdout line with the ms since the spawn it arrived at (where a replay's time goes, to its 5 s progress lines). */
interface ChildResult { code: number | null; stdout: string; stderr: string; wallMs: number; lines: { ms: number; text: string }[] }
let running: ReturnType<typeof spawn> | undefined;

/** `sep <args>` as a child process with the bench's environment; wall = spawn → exit. */
function sep(args: string[]): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [SEP, ...args], { cwd: ROOT, env: childEnv });
    running = child;
    let stdout = '';
    let stderr = '';
    const lines: ChildResult['lines'] = [];
    let partial = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      const parts = (partial + String(d)).split('\n');
      partial = parts.pop()!;
      for (const text of parts) lines.push({ ms: performance.now() - t0, text });
    });
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`sep ${args.join(' ')} did not finish within ${CHILD_TIMEOUT_MS / 60_000} min\n${stdout}\n${stderr}`)); }, CHILD_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      running = undefined;
      resolve({ code, stdout, stderr, wallMs: performance.now() - t0, lines });
    });
  });
}

async function sepOk(args: string[]): Promise<ChildResult> {
  const r = await sep(args);
  if (r.code !== 0) throw new Error(`sep ${args.join(' ')} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return r;
}

/** One measurement of one variant. */
interface Sample { events: number; seconds: number; wallSeconds?: number; setupSeconds?: number }
type VariantId = 'raw' | 'decode' | 'replay' | 'offline';
const VARIANTS: { id: VariantId; label: string }[] = [
  { id: 'raw', label: 'raw kafkajs consumption (anchor)' },
  { id: 'decode', label: 'raw kafkajs consumption + Avro decode' },
  { id: 'replay', label: '`sep replay` (pipeline: 2 EOS apps + TimescaleDB sink)' },
  { id: 'offline', label: '`sep offline` (in-process, no Kafka, NDJSON out)' },
];

const groups: string[] = [];

/**
 * Reads the 4 input topics to the end offsets taken before it starts, counting
 * (and with `decode`, decoding) every record. Seconds from the group join to the
 * last partition's end; setup = connect + subscribe + join.
 */
async function consume(kafka: ReturnType<typeof createKafka>, admin: Admin, decode?: InstanceType<typeof AvroSerde>): Promise<Sample> {
  const remaining = new Map<string, bigint>();
  let expected = 0;
  for (const spec of INPUTS) {
    for (const [p, end] of await endOffsets(admin, spec.name)) {
      if (end > 0n) remaining.set(`${spec.name}/${p}`, end);
      expected += Number(end);
    }
  }
  const groupId = `${TOPIC_PREFIX}bench-raw-${randomBytes(4).toString('hex')}`;
  groups.push(groupId);
  const consumer = kafka.consumer({ groupId, readUncommitted: false, allowAutoTopicCreation: false, maxBytesPerPartition: 1024 * 1024, sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 1000 });
  const t0 = performance.now();
  let joined = 0;
  let events = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: INPUTS.map((s) => s.name), fromBeginning: true });
    consumer.on(consumer.events.GROUP_JOIN, () => { joined ||= performance.now(); });
    const done = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`raw consumption did not reach the end offsets within ${CONSUME_TIMEOUT_MS / 1000} s (${events} of ${expected} records)`)), CONSUME_TIMEOUT_MS);
      // As readTopicToEnd: END_BATCH_PROCESS also fires for batches of only control records.
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        const k = `${payload.topic}/${payload.partition}`;
        if (remaining.has(k) && BigInt(payload.lastOffset) + 1n >= remaining.get(k)!) remaining.delete(k);
        if (remaining.size === 0) { clearTimeout(timer); resolve(performance.now()); }
      });
      consumer.run({
        eachBatch: async ({ batch }) => {
          if (decode) {
            for (const m of batch.messages) {
              if (decode.decodeCached(batch.topic, m.value) === undefined) await decode.decode(batch.topic, m.value);
            }
          }
          events += batch.messages.length;
        },
      }).catch(reject);
    });
    if (events !== expected) throw new Error(`raw consumption counted ${events} records, the end offsets say ${expected}`);
    return { events, seconds: (done - joined) / 1000, setupSeconds: (joined - t0) / 1000 };
  } finally {
    await consumer.disconnect();
  }
}

let replayId: string | undefined;

/** `sep replay` of the whole range, then its deletion (not timed). */
async function replay(round: number): Promise<Sample> {
  const runId = `bench-replay-${BENCH_ID}-${round}`;
  replayId = runId;
  const r = await sepOk(['replay', '--from', FROM, '--to', TO, '--run-id', runId]);
  const m = /replay \S+ done: ([\d,]+) input records in ([\d.]+) s/.exec(r.stdout);
  if (!m) throw new Error(`sep replay printed no "done:" line\n${r.stdout}\n${r.stderr}`);
  for (const l of r.lines) log(`    +${(l.ms / 1000).toFixed(1).padStart(5)} s  ${l.text.trim().slice(0, 160)}`);
  log(`  ${m[0]}; wall ${(r.wallMs / 1000).toFixed(1)} s`);
  const del = await sepOk(['replay', '--delete', runId]);
  replayId = undefined;
  log(`  ${del.stdout.trim()}`);
  return { events: num(m[1]!), seconds: Number(m[2]), wallSeconds: r.wallMs / 1000 };
}

/** `sep offline` over the scaled files into a temporary directory. */
async function offline(input: string): Promise<Sample> {
  const out = mkdtempSync(path.join(os.tmpdir(), 'sep-bench-replay-offline-'));
  try {
    const r = await sepOk(['offline', input, '--out', out]);
    const m = /offline \S+: ([\d,]+) records from .* in ([\d.]+) s \(([\d,]+) events\/s\)/.exec(r.stdout);
    if (!m) throw new Error(`sep offline printed no summary line\n${r.stdout}\n${r.stderr}`);
    log(`  ${m[0]}; wall ${(r.wallMs / 1000).toFixed(1)} s`);
    // Seconds from the reported rate (it is computed from milliseconds; the printed seconds have one decimal).
    return { events: num(m[1]!), seconds: num(m[1]!) / num(m[3]!), wallSeconds: r.wallMs / 1000 };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

let scaled: string | undefined;
let admin: Admin | undefined;

/** Removes the temp input, the running replay, the namespace's topics and the anchors' groups; safe to call twice. */
async function cleanup(): Promise<void> {
  if (scaled) rmSync(scaled, { recursive: true, force: true });
  scaled = undefined;
  if (replayId) {
    const id = replayId;
    replayId = undefined;
    const r = spawnSync(process.execPath, [SEP, 'replay', '--delete', id], { cwd: ROOT, env: childEnv, encoding: 'utf8' });
    log(r.status === 0 ? r.stdout.trim() : `could not delete replay ${id} (exit ${r.status}): ${r.stderr.trim()}; run \`SEP_TOPIC_PREFIX=${TOPIC_PREFIX} sep replay --delete ${id}\``);
  }
  const a = admin;
  admin = undefined;
  if (!a) return;
  try {
    const mine = (await a.listTopics()).filter((t) => t.startsWith(TOPIC_PREFIX));
    if (mine.length) await a.deleteTopics({ topics: mine, timeout: 30_000 });
    log(`deleted ${mine.length} topics with prefix ${TOPIC_PREFIX}`);
    if (groups.length) await a.deleteGroups(groups).catch((e: Error) => log(`could not delete consumer groups: ${e.message}`));
  } catch (err) {
    log(`Kafka cleanup failed: ${(err as Error).message}`);
  }
  await a.disconnect().catch(() => {});
}

async function main(): Promise<void> {
  log(`writing the bundled day × ${COPIES} (${instruments.length} instruments) …`);
  scaled = await scaledDay(COPIES, 'sep-bench-replay-in-');
  const kafka = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: `bench-replay-${BENCH_ID}` });
  admin = await connectAdmin(kafka, urls.KAFKA_BROKERS);
  log(`importing into ${TOPIC_PREFIX}* (not timed) …`);
  const imported = await sepOk(['import', scaled]);
  log(`  sep import: ${(imported.wallMs / 1000).toFixed(1)} s wall`);
  // The schemas `sep import` registered: same ids, so decoding takes StreamsApp's cached path.
  const serde = new AvroSerde(urls.SCHEMA_REGISTRY_URL);
  for (const spec of INPUTS) await serde.register(spec);

  const samples = new Map<VariantId, Sample[]>(VARIANTS.map((v) => [v.id, []]));
  for (let round = 1; round <= RUNS; round++) {
    for (const v of VARIANTS) {
      log(`round ${round}/${RUNS}: ${v.label}`);
      const s = v.id === 'raw' ? await consume(kafka, admin)
        : v.id === 'decode' ? await consume(kafka, admin, serde)
          : v.id === 'replay' ? await replay(round)
            : await offline(scaled);
      samples.get(v.id)!.push(s);
      log(`  ${fmt(s.events)} events in ${s.seconds.toFixed(2)} s = ${fmt(s.events / s.seconds)} events/s${s.setupSeconds === undefined ? '' : ` (connect + join ${s.setupSeconds.toFixed(2)} s, excluded)`}`);
    }
  }
  const events = new Set([...samples.values()].flatMap((xs) => xs.map((x) => x.events)));
  if (events.size !== 1) log(`warning: the variants saw different event counts: ${[...events].join(', ')}`);

  const rate = (x: Sample, wall = false) => x.events / (wall ? x.wallSeconds! : x.seconds);
  const anchor = median(samples.get('raw')!.map((x) => rate(x)));
  const cpus = os.cpus();
  const out: string[] = [];
  out.push(`Replay vs raw consumption, bundled day × ${COPIES} (${instruments.length} instruments), ${process.env.SEP_PARTITIONS} partitions; medians of ${RUNS}`);
  out.push(`Machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown CPU'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.type()} ${os.release()}; load average (1/5/15 min) at the start ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}, at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  out.push(`Command: \`npm run bench:replay -- --runs ${RUNS} --copies ${COPIES}\` (= node --import tsx bench/replay.ts); import (not timed): ${(imported.wallMs / 1000).toFixed(1)} s`, '');
  out.push('| variant | events | seconds (median) | events/s (median) | ratio to raw consumption | wall s of the process (median) | events/s by wall (median) |');
  out.push('|---|---:|---:|---:|---:|---:|---:|');
  for (const v of VARIANTS) {
    const xs = samples.get(v.id)!;
    const r = median(xs.map((x) => rate(x)));
    const wall = xs[0]!.wallSeconds === undefined ? '–' : median(xs.map((x) => x.wallSeconds!)).toFixed(1);
    const wallRate = xs[0]!.wallSeconds === undefined ? '–' : fmt(median(xs.map((x) => rate(x, true))));
    out.push(`| ${v.label} | ${fmt(xs[0]!.events)} | ${median(xs.map((x) => x.seconds)).toFixed(2)} | ${fmt(r)} | ${(r / anchor).toFixed(3)} | ${wall} | ${wallRate} |`);
  }
  out.push('');
  out.push(`Per run, events/s: ${VARIANTS.map((v) => `${v.id} ${samples.get(v.id)!.map((x) => fmt(rate(x))).join(' / ')}`).join('; ')}; ` +
    `replay by wall ${samples.get('replay')!.map((x) => fmt(rate(x, true))).join(' / ')}; ` +
    `raw connect + join (excluded) ${samples.get('raw')!.map((x) => x.setupSeconds!.toFixed(2)).join(' / ')} s.`);
  process.stdout.write(out.join('\n') + '\n');
}

const loadAtStart = os.loadavg();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the running child, deleting this bench's replay, topics and temp files`);
    running?.kill('SIGTERM');
    void cleanup().finally(() => process.exit(130));
  });
}
let exitCode = 0;
try {
  log(`bench ${BENCH_ID}: ${COPIES} copies, ${RUNS} run(s); prefix ${TOPIC_PREFIX}`);
  await main();
} catch (err) {
  exitCode = 1;
  log(`FAILED: ${(err as Error).stack ?? String(err)}`);
} finally {
  await cleanup();
}
process.exit(exitCode);
