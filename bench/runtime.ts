/**
 * Stream runtime throughput (issue 3): records/s through the features
 * processor on the stream runtime, at-least-once and exactly-once, next to raw
 * kafkajs consumption of the same topic and Kafka's own ConsumerPerformance
 * (kafka-consumer-perf-test), in one run against the local stack.
 *
 *   npm run bench:runtime -- [--records 200000] [--runs 3]
 *
 * Input: N valid candles (50 instruments, 3 partitions) produced once with the
 * Avro serde. Every measured run uses a fresh consumer group / applicationId;
 * variants are interleaved per round and each is reported as the MEDIAN over
 * the runs. "wall" counts from connect/start() (group join included) until the
 * last input offset is done; "steady" from the first batch handed to eachBatch.
 * The measured runs carry only per-batch timers (eachBatch, produce, offsets,
 * commit: a few per batch); the per-record breakdown (decode, Task.process,
 * encode) comes from one extra, separately instrumented run per guarantee.
 * Table on stdout (Markdown), progress on stderr. All topics created here
 * carry a unique prefix and are deleted at the end.
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import { Session, type Profiler } from 'node:inspector/promises';
import type { Kafka, Producer, Transaction, ConsumerConfig, ConsumerRunConfig, EachBatchPayload } from 'kafkajs';
import { argInt } from './args.ts';
import { fmt, median } from './stats.ts';

// ---- configuration (env must be set before any project module is imported) --

const RECORDS = argInt('records', 200_000);
const RUNS = argInt('runs', 3);
const PARTITIONS = 3;
const INSTRUMENT_COUNT = 50;
const TARGET_RATIO = 0.5;
const PRODUCE_CHUNK = 10_000;
const VARIANT_TIMEOUT_MS = 600_000;

const BENCH_ID = randomBytes(4).toString('hex');
const INSTRUMENTS = Array.from({ length: INSTRUMENT_COUNT }, (_, i) => `BN${String(i).padStart(2, '0')}_USD`);
process.env.SEP_TOPIC_PREFIX = `bench.${BENCH_ID}.`;
process.env.SEP_INSTRUMENTS = INSTRUMENTS.join(',');
process.env.SEP_PARTITIONS = String(PARTITIONS);

const { connectServices } = await import('../src/pipeline/services.ts');
const { createKafka, createProducer, endOffsets } = await import('../streams/runtime/kafka.ts');
const { TOPICS, TOPIC_PREFIX } = await import('../streams/runtime/topics.ts');
const { StreamsApp } = await import('../streams/runtime/streams-app.ts');
type Guarantee = import('../streams/runtime/streams-app.ts').Guarantee;
const { Task } = await import('../streams/runtime/task.ts');
const { KeyValueStore } = await import('../streams/runtime/stores.ts');
const { featuresTopology, FeaturesProcessor } = await import('../streams/features/processor.ts');
const { InstrumentCatalog } = await import('../streams/model/instruments.ts');
const metrics = await import('../streams/runtime/metrics.ts');
const { kafkaToolsClasspath, kafkaToolsJvmArgs } = await import('../ops/stack/kafka.ts');
const { readPid } = await import('../ops/stack/process.ts');

const log = (line: string): void => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${line}\n`);

// ---- timers ------------------------------------------------------------------

class Acc {
  ms = 0;
  /** Node process CPU (all threads) during the calls; only for per-batch timers. */
  cpuMs = 0;
  calls = 0;
  items = 0;
}

/** Named accumulators of wall time spent inside wrapped calls. */
class Recorder {
  readonly accs = new Map<string, Acc>();
  joinedAt: number | undefined;
  firstBatchAt: number | undefined;

  add(name: string, ms: number, items = 0, cpuMs = 0): void {
    let a = this.accs.get(name);
    if (!a) this.accs.set(name, (a = new Acc()));
    a.ms += ms;
    a.cpuMs += cpuMs;
    a.calls++;
    a.items += items;
  }

  /** Times an async call (wall and process CPU); for per-batch calls only. */
  async time<T>(name: string, fn: () => Promise<T>, items = 0): Promise<T> {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      const c = process.cpuUsage(c0);
      this.add(name, performance.now() - t0, items, (c.user + c.system) / 1000);
    }
  }

  get(name: string): Acc {
    return this.accs.get(name) ?? new Acc();
  }
}

function countMessages(batch: { topicMessages?: { messages: unknown[] }[] }): number {
  return (batch.topicMessages ?? []).reduce((n, t) => n + t.messages.length, 0);
}

/**
 * Per-batch instrumentation of one app's Kafka client: producer connect,
 * sendBatch (plain or in a transaction), transaction begin/sendOffsets/commit,
 * the group consumer's eachBatch, heartbeat and commitOffsets.
 */
function instrumentKafka(kafka: Kafka, groupId: string, rec: Recorder): void {
  const makeProducer = kafka.producer.bind(kafka);
  kafka.producer = (config) => {
    const p: Producer = makeProducer(config);
    const connect = p.connect.bind(p);
    p.connect = () => rec.time('producer connect (+ initTransactions)', connect);
    const sendBatch = p.sendBatch.bind(p);
    p.sendBatch = (b) => rec.time('produce: sendBatch', () => sendBatch(b), countMessages(b));
    const transaction = p.transaction.bind(p);
    p.transaction = async () => {
      const txn: Transaction = await rec.time('txn: begin', transaction);
      const tSend = txn.sendBatch.bind(txn);
      txn.sendBatch = (b) => rec.time('produce: sendBatch', () => tSend(b), countMessages(b));
      const tOffsets = txn.sendOffsets.bind(txn);
      txn.sendOffsets = (o) => rec.time('txn: sendOffsets', () => tOffsets(o));
      const tCommit = txn.commit.bind(txn);
      txn.commit = () => rec.time('txn: commit', tCommit);
      const tAbort = txn.abort.bind(txn);
      txn.abort = () => rec.time('txn: abort', tAbort);
      return txn;
    };
    return p;
  };
  const makeConsumer = kafka.consumer.bind(kafka);
  kafka.consumer = (config: ConsumerConfig) => {
    const c = makeConsumer(config);
    if (config.groupId !== groupId) return c;
    c.on(c.events.GROUP_JOIN, () => { rec.joinedAt ??= performance.now(); });
    const commitOffsets = c.commitOffsets.bind(c);
    c.commitOffsets = (o) => rec.time('consumer: commitOffsets', () => commitOffsets(o));
    const run = c.run.bind(c);
    c.run = (cfg?: ConsumerRunConfig) => {
      const inner = cfg?.eachBatch;
      if (!inner) return run(cfg);
      return run({
        ...cfg,
        eachBatch: async (payload: EachBatchPayload) => {
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          rec.firstBatchAt ??= t0;
          const heartbeat = payload.heartbeat;
          try {
            await inner({ ...payload, heartbeat: () => rec.time('heartbeat', heartbeat) });
          } finally {
            const c = process.cpuUsage(c0);
            rec.add('eachBatch', performance.now() - t0, payload.batch.messages.length, (c.user + c.system) / 1000);
          }
        },
      });
    };
    return c;
  };
}

/** Per-record wrappers, installed only for the profiling runs; returns the uninstaller. */
function installRecordProfiler(serde: { decode: unknown; encode: unknown }, rec: Recorder): () => void {
  const undo: (() => void)[] = [];
  const wrapSync = <O extends object, K extends keyof O>(obj: O, key: K, name: string): void => {
    const orig = obj[key] as unknown as (...a: unknown[]) => unknown;
    const own = Object.prototype.hasOwnProperty.call(obj, key);
    (obj as Record<K, unknown>)[key] = function (this: unknown, ...args: unknown[]) {
      const t0 = performance.now();
      try {
        return orig.apply(this, args);
      } finally {
        rec.add(name, performance.now() - t0, 1);
      }
    };
    undo.push(() => {
      if (own) (obj as Record<K, unknown>)[key] = orig;
      else delete (obj as Record<K, unknown>)[key];
    });
  };
  // decode is async but, with the reader cached, runs to completion synchronously:
  // timing the call (not the await) measures the decode and nothing else.
  wrapSync(serde, 'decode', 'decode (serde.decode)');
  wrapSync(serde, 'encode', 'encode (serde.encode, outputs)');
  wrapSync(Task.prototype, 'process', 'Task.process (validate + processor + drain)');
  wrapSync(FeaturesProcessor.prototype, 'process', 'FeaturesProcessor.process');
  wrapSync(KeyValueStore.prototype, 'put', 'KeyValueStore.put (JSON.stringify)');
  return () => { for (const u of undo.reverse()) u(); };
}

// ---- sampling CPU profile (profiling runs only) ---------------------------------

/**
 * Buckets a V8 CPU profile's samples: each sample is charged to the nearest
 * frame (itself or an ancestor) outside Node's internals, then classified by
 * its file and, for kafkajs, by whether a produce or a fetch path is on the stack.
 */
function summariseProfile(profile: Profiler.Profile): Map<string, number> {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + (deltas[i] ?? 0));
  const chainUrls = (id: number): string[] => {
    const urls: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) urls.push(nodes.get(cur)!.callFrame.url);
    return urls;
  };
  const classify = (id: number): string => {
    const fn = nodes.get(id)!.callFrame.functionName;
    if (fn === '(garbage collector)') return 'V8 garbage collector';
    if (fn === '(idle)') return 'idle (start-up, group join, waiting on broker round trips)';
    if (fn === '(program)') return 'V8 (program: compiler, runtime)';
    const urls = chainUrls(id);
    const owner = urls.find((u) => u.includes('/node_modules/') || (u.includes('/work/') && !u.includes('/node_modules/'))) ?? '';
    const inChain = (re: RegExp) => urls.some((u) => re.test(u));
    if (owner.includes('/kafkajs/')) {
      if (owner.includes('producer/groupMessagesPerPartition')) return 'kafkajs producer: groupMessagesPerPartition (array spread per message)';
      if (owner.includes('producer/partitioners')) return 'kafkajs producer: partitioner (murmur2)';
      if (inChain(/requests\/produce|\/producer\/|recordBatch\/v0\/index|recordBatch\/record\/v0\/index|crc32C/)) return 'kafkajs producer: produce request encoding (records, varints, Long, CRC32C)';
      if (inChain(/requests\/fetch|\/consumer\/|decoder/)) return 'kafkajs consumer: fetch and record-batch decoding';
      return 'kafkajs: network, request queue, other';
    }
    if (owner.includes('/avsc/')) return 'avsc (Avro decode + encode)';
    if (owner.includes('/prom-client/')) return 'prom-client (per-record metrics)';
    if (owner.includes('/bench/')) return 'bench wrappers';
    if (owner.includes('/streams/') || owner.includes('/src/')) return 'runtime + features code (onBatch, Task, validate, nextFeature, store JSON, framing)';
    return 'node internals / other';
  };
  const out = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const k = classify(id);
    out.set(k, (out.get(k) ?? 0) + us / 1000);
  }
  return new Map([...out].sort((a, b) => b[1] - a[1]));
}

// ---- CPU accounting ------------------------------------------------------------

const CLK_TCK = 100; // Linux USER_HZ
const brokerPid = readPid('kafka');

function brokerCpuSeconds(): number | undefined {
  if (brokerPid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${brokerPid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
  } catch {
    return undefined;
  }
}

interface Cpu { node: number; broker: number | undefined }
function cpuStart(): () => Cpu {
  const n0 = process.cpuUsage();
  const b0 = brokerCpuSeconds();
  return () => {
    const n = process.cpuUsage(n0);
    const b1 = brokerCpuSeconds();
    return { node: (n.user + n.system) / 1e6, broker: b0 === undefined || b1 === undefined ? undefined : b1 - b0 };
  };
}

// ---- results -------------------------------------------------------------------

interface RunResult {
  records: number;
  wallMs: number;
  /** ms from the group join to the end: start-up and join excluded (undefined when not measurable). */
  steadyMs: number | undefined;
  /** records/s as reported by the tool itself (perf test only). */
  toolRate?: number;
  toolSteadyRate?: number;
  toolMBs?: number;
  toolRebalanceMs?: number;
  jvmWallMs?: number;
  cpu?: Cpu;
  rec?: Recorder;
  /** Sampled CPU profile of the measured span, by bucket (ms); profiling runs only. */
  profile?: Map<string, number>;
  startMs?: number;
  /** ms after start() was called: group joined, first batch handed to eachBatch. */
  joinMs?: number;
  firstBatchMs?: number;
  stopMs?: number;
  processingSum?: number;
  outputs?: number;
  deadLetters?: number;
  guarantee?: Guarantee;
}


// ---- main ----------------------------------------------------------------------

const services = await connectServices({ clientId: `bench-${BENCH_ID}`, log });
const { kafka, admin, serde, urls } = services;
const catalog = InstrumentCatalog.fromEnv();
const CANDLES = TOPICS.candles.name;
const groups: string[] = [];
let exitCode = 0;

async function counterValue(counter: { get(): Promise<{ values: { value: number; labels: Record<string, string | number | undefined> }[] }> }, labels: Record<string, string>): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
}

async function processingSum(applicationId: string): Promise<number> {
  const { values } = await metrics.processingSeconds.get();
  return values.find((v) => v.metricName === 'sep_processing_seconds_sum' && v.labels.application === applicationId)?.value ?? 0;
}

/** Produces the input once; returns the key+value bytes (what ConsumerPerformance counts as MB). */
async function produceCandles(): Promise<number> {
  const producer = await createProducer(kafka);
  const base = Date.UTC(2024, 0, 1);
  const price = INSTRUMENTS.map((_, i) => 1 + i * 0.37);
  let bytes = 0;
  const t0 = performance.now();
  try {
    for (let start = 0; start < RECORDS; start += PRODUCE_CHUNK) {
      const messages = [];
      for (let k = start; k < Math.min(RECORDS, start + PRODUCE_CHUNK); k++) {
        const i = k % INSTRUMENT_COUNT;
        const step = Math.floor(k / INSTRUMENT_COUNT);
        const open = price[i]!;
        const close = open * (1 + (Math.random() - 0.5) * 0.002);
        price[i] = close;
        const high = Math.max(open, close) * (1 + Math.random() * 0.0005);
        const low = Math.min(open, close) * (1 - Math.random() * 0.0005);
        const ts = base + step * 60_000;
        const candle = { instrument: INSTRUMENTS[i]!, granularity: 'M1', ts, open, high, low, close, volume: 1000 + Math.floor(Math.random() * 9000), complete: true };
        const value = serde.encode(CANDLES, candle);
        bytes += value.length + Buffer.byteLength(candle.instrument);
        messages.push({ key: candle.instrument, value, timestamp: String(ts) });
      }
      await producer.sendBatch({ topicMessages: [{ topic: CANDLES, messages }], acks: -1 });
    }
  } finally {
    await producer.disconnect();
  }
  log(`produced ${RECORDS} candles (${(bytes / 1048576).toFixed(1)} MB key+value) to ${CANDLES} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return bytes;
}

/** Raw kafkajs: a fresh group reads the topic from the beginning to `ends`, counting (optionally decoding). */
async function rawKafkajs(ends: Map<number, bigint>, decode: boolean, label: string): Promise<RunResult> {
  const groupId = `${TOPIC_PREFIX}bench-raw-${label}-${randomBytes(3).toString('hex')}`;
  groups.push(groupId);
  const client = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: `bench-raw-${BENCH_ID}` });
  // Same consumer settings as StreamsApp's own group consumer.
  const consumer = client.consumer({ groupId, readUncommitted: false, allowAutoTopicCreation: false, maxBytesPerPartition: 4 * 1024 * 1024 });
  const remaining = new Map([...ends].filter(([, high]) => high > 0n));
  let count = 0;
  let joined: number | undefined;
  consumer.on(consumer.events.GROUP_JOIN, () => { joined ??= performance.now(); });
  const cpu = cpuStart();
  const t0 = performance.now();
  await consumer.connect();
  await consumer.subscribe({ topics: [CANDLES], fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`raw kafkajs (${label}) did not reach the end offsets within ${VARIANT_TIMEOUT_MS / 1000} s (${count} records)`)), VARIANT_TIMEOUT_MS);
    consumer.on(consumer.events.CRASH, ({ payload }) => { clearTimeout(timer); reject(payload.error); });
    consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (decode) for (const m of batch.messages) await serde.decode(batch.topic, m.value);
        count += batch.messages.length;
        const high = remaining.get(batch.partition);
        if (high !== undefined && BigInt(batch.lastOffset()) + 1n >= high) remaining.delete(batch.partition);
        if (remaining.size === 0) { clearTimeout(timer); resolve(); }
      },
    }).catch((err: Error) => { clearTimeout(timer); reject(err); });
  });
  const t1 = performance.now();
  const used = cpu();
  await consumer.disconnect();
  if (count !== RECORDS) throw new Error(`raw kafkajs (${label}) counted ${count} records, expected ${RECORDS}`);
  return { records: count, wallMs: t1 - t0, steadyMs: joined === undefined ? undefined : t1 - joined, cpu: used };
}

/** Kafka's ConsumerPerformance; its own figures (measured after the JVM and the consumer are up, group join included in nMsg.sec). */
async function perfTest(label: string): Promise<RunResult> {
  const groupId = `${TOPIC_PREFIX}bench-perf-${label}-${randomBytes(3).toString('hex')}`;
  groups.push(groupId);
  const args = ['-Xms256m', '-Xmx512m', ...kafkaToolsJvmArgs(), '-cp', kafkaToolsClasspath(), 'org.apache.kafka.tools.ConsumerPerformance',
    '--bootstrap-server', urls.KAFKA_BROKERS, '--topic', CANDLES, '--messages', String(RECORDS), '--group', groupId, '--timeout', '60000'];
  const t0 = performance.now();
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`ConsumerPerformance timed out\n${out}\n${err}`)); }, VARIANT_TIMEOUT_MS);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (c) => { clearTimeout(timer); resolve({ code: c, stdout: out, stderr: err }); });
  });
  const jvmWallMs = performance.now() - t0;
  if (code !== 0) throw new Error(`ConsumerPerformance exited with ${code}:\n${stdout}\n${stderr}`);
  const lines = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  const headerAt = lines.findIndex((l) => l.startsWith('start.time'));
  if (headerAt < 0 || !lines[headerAt + 1]) throw new Error(`cannot parse ConsumerPerformance output:\n${stdout}\n${stderr}`);
  const header = lines[headerAt]!.split(',').map((s) => s.trim());
  const row = lines[headerAt + 1]!.split(',').map((s) => s.trim());
  const col = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`ConsumerPerformance output has no ${name} column: ${lines[headerAt]}`);
    return Number(row[i]);
  };
  const msgs = col('data.consumed.in.nMsg');
  if (msgs !== RECORDS) throw new Error(`ConsumerPerformance consumed ${msgs} records, expected ${RECORDS}:\n${stdout}\n${stderr}`);
  if (stderr.trim()) log(`ConsumerPerformance stderr: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const rate = col('nMsg.sec');
  return {
    records: msgs, wallMs: (msgs / rate) * 1000, steadyMs: col('fetch.time.ms'),
    toolRate: rate, toolSteadyRate: col('fetch.nMsg.sec'), toolMBs: col('MB.sec'), toolRebalanceMs: col('rebalance.time.ms'), jvmWallMs,
  };
}

/** The features app on the stream runtime, from start() until caughtUp(ends). */
async function streamsRun(ends: Map<string, Map<number, bigint>>, guarantee: Guarantee, label: string, profile: boolean): Promise<RunResult> {
  const applicationId = `${TOPIC_PREFIX}bench-features-${guarantee === 'exactly_once' ? 'eos' : 'alo'}-${label}-${randomBytes(3).toString('hex')}`;
  groups.push(applicationId);
  const client = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: `bench-app-${BENCH_ID}` });
  const rec = new Recorder();
  instrumentKafka(client, applicationId, rec);
  const uninstall = profile ? installRecordProfiler(serde as unknown as { decode: unknown; encode: unknown }, rec) : () => {};
  const outBefore = await counterValue(metrics.recordsOut, { topic: TOPICS.features.name });
  const dlqBefore = await counterValue(metrics.recordsOut, { topic: TOPICS.deadLetters.name });
  const app = new StreamsApp({ applicationId, topology: featuresTopology(catalog, { ticksTopic: null }), kafka: client, admin, serde, guarantee, log: (l) => log(l) });
  const session = profile ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  let sampled: Profiler.Profile | undefined;
  const cpu = cpuStart();
  const t0 = performance.now();
  let t1: number;
  let startMs: number;
  let used: Cpu;
  try {
    await app.start();
    startMs = performance.now() - t0;
    let lastReport = performance.now();
    while (!await app.caughtUp(ends)) {
      const failure = app.error();
      if (failure) throw failure;
      const now = performance.now();
      if (now - t0 > VARIANT_TIMEOUT_MS) throw new Error(`${applicationId} did not catch up within ${VARIANT_TIMEOUT_MS / 1000} s: ${[...app.positions].map(([k, v]) => `${k}@${v}`).join(' ')}`);
      if (now - lastReport > 5000) {
        lastReport = now;
        log(`  … ${guarantee} ${label}: ${[...app.positions].map(([k, v]) => `${k.slice(k.lastIndexOf('/') + 1)}@${v}`).join(' ')} after ${((now - t0) / 1000).toFixed(1)} s`);
      }
      await sleep(2);
    }
    t1 = performance.now();
    used = cpu();
    if (session) sampled = (await session.post('Profiler.stop')).profile;
  } catch (err) {
    await app.stop().catch(() => {});
    throw err;
  } finally {
    uninstall();
    session?.disconnect();
  }
  const s0 = performance.now();
  await app.stop();
  const stopMs = performance.now() - s0;
  const outputs = (await counterValue(metrics.recordsOut, { topic: TOPICS.features.name })) - outBefore;
  const deadLetters = (await counterValue(metrics.recordsOut, { topic: TOPICS.deadLetters.name })) - dlqBefore;
  const records = rec.get('eachBatch').items;
  if (records !== RECORDS || outputs !== RECORDS || deadLetters !== 0) {
    log(`  WARNING ${applicationId}: ${records} records through eachBatch, ${outputs} features out, ${deadLetters} dead letters (expected ${RECORDS}, ${RECORDS}, 0)`);
  }
  log(`  app.stop() took ${fmt(stopMs)} ms (not in the measured time)`);
  return {
    records, wallMs: t1 - t0, steadyMs: rec.joinedAt === undefined ? undefined : t1 - rec.joinedAt,
    cpu: used, rec, startMs, stopMs, profile: sampled && summariseProfile(sampled),
    joinMs: rec.joinedAt === undefined ? undefined : rec.joinedAt - t0, firstBatchMs: rec.firstBatchAt === undefined ? undefined : rec.firstBatchAt - t0, guarantee, processingSum: await processingSum(applicationId), outputs, deadLetters,
  };
}

// ---- report ---------------------------------------------------------------------

type VariantId = 'raw' | 'rawDecode' | 'perf' | 'alo' | 'eos';
const VARIANTS: { id: VariantId; name: string }[] = [
  { id: 'raw', name: 'raw kafkajs (no decode)' },
  { id: 'rawDecode', name: 'kafkajs + Avro decode' },
  { id: 'perf', name: 'kafka-consumer-perf-test (JVM)¹' },
  { id: 'alo', name: 'stream runtime, features, at_least_once' },
  { id: 'eos', name: 'stream runtime, features, exactly_once' },
];

const rateOf = (r: RunResult): number => r.toolRate ?? (r.records / r.wallMs) * 1000;
const steadyRateOf = (r: RunResult): number | undefined => r.toolSteadyRate ?? (r.steadyMs ? (r.records / r.steadyMs) * 1000 : undefined);

function medianRun(runs: RunResult[]): RunResult {
  const m = median(runs.map(rateOf));
  return runs.reduce((best, r) => (Math.abs(rateOf(r) - m) < Math.abs(rateOf(best) - m) ? r : best));
}

function breakdown(name: string, r: RunResult, out: string[]): void {
  const rec = r.rec!;
  const eb = rec.get('eachBatch');
  const pct = (ms: number) => `${((ms / r.wallMs) * 100).toFixed(1)} %`;
  const row = (what: string, ms: number, o: { calls?: number; cpuMs?: number; note?: string } = {}) =>
    out.push(`| ${what} | ${fmt(ms)} | ${pct(ms)} | ${o.cpuMs === undefined ? '' : fmt(o.cpuMs)} | ${o.calls === undefined ? '' : fmt(o.calls)} | ${o.note ?? ''} |`);
  const cpu = r.cpu!;
  out.push('', `**${name}** — ${fmt(r.records)} records, wall ${fmt(r.wallMs)} ms, ${fmt(rateOf(r))} records/s; ` +
    `${fmt(eb.calls)} batches, mean ${fmt(eb.items / Math.max(1, eb.calls))} records/batch; ` +
    `${fmt(r.outputs ?? 0)} features out, ${fmt(r.deadLetters ?? 0)} dead letters; ` +
    `CPU over the wall time: node ${fmt(cpu.node * 1000)} ms (${((cpu.node * 1000 / r.wallMs) * 100).toFixed(0)} % of one core), broker JVM ${cpu.broker === undefined ? 'n/a' : `${fmt(cpu.broker * 1000)} ms`}; ` +
    `app.stop() afterwards ${fmt(r.stopMs ?? 0)} ms (not counted)`, '');
  out.push('| where | wall ms | % of wall | node CPU ms | calls | note |', '|---|---:|---:|---:|---:|---|');
  const profiled = rec.accs.has('decode (serde.decode)');
  const eos = r.guarantee === 'exactly_once';
  const joinedAt = r.joinMs ?? r.startMs!; // ms after start() was called
  const firstBatchAt = r.firstBatchMs ?? joinedAt;
  row('start() called → group joined (metadata, changelog topic, committed offsets, connect, subscribe, join)', joinedAt,
    { note: `start() returned after ${fmt(r.startMs!)} ms${eos ? '' : '; includes the shared producer\'s connect'}` });
  row('group joined → first batch in eachBatch (first fetch)', Math.max(0, firstBatchAt - joinedAt));
  row('inside eachBatch (total)', eb.ms, { calls: eb.calls, cpuMs: eb.cpuMs, note: `${fmt(eb.items)} records` });
  const processingMs = (r.processingSum ?? 0) * 1000;
  row('&nbsp;&nbsp;per-record loop: sep_processing_seconds sum (decode + process + encode + push)', processingMs, { note: 'histogram' });
  if (profiled) {
    for (const [key, note] of [
      ['decode (serde.decode)', '⊂ loop'],
      ['Task.process (validate + processor + drain)', '⊂ loop'],
      ['FeaturesProcessor.process', '⊂ Task.process'],
      ['KeyValueStore.put (JSON.stringify)', '⊂ FeaturesProcessor.process'],
      ['encode (serde.encode, outputs)', '⊂ loop'],
    ] as const) {
      const a = rec.get(key);
      row(`&nbsp;&nbsp;&nbsp;&nbsp;${key}`, a.ms, { calls: a.calls, note });
    }
    const rest = processingMs - rec.get('decode (serde.decode)').ms - rec.get('Task.process (validate + processor + drain)').ms - rec.get('encode (serde.encode, outputs)').ms;
    row('&nbsp;&nbsp;&nbsp;&nbsp;loop rest (metrics, message objects, changelog Buffer.from, awaits)', Math.max(0, rest), { note: 'loop − decode − process − encode' });
  }
  let accounted = processingMs;
  const batchLevel: [string, string][] = [
    ['producer connect (+ initTransactions)', 'one per task producer, in its first batch'],
    ['produce: sendBatch', ''],
    ['txn: begin', ''],
    ['txn: sendOffsets', 'AddOffsetsToTxn + TxnOffsetCommit'],
    ['txn: commit', 'EndTxn'],
    ['txn: abort', ''],
    ['consumer: commitOffsets', ''],
    ['heartbeat', ''],
  ];
  for (const [key, note] of batchLevel) {
    const a = rec.accs.get(key);
    if (!a) continue;
    if (key.startsWith('producer connect') && !eos) continue; // at-least-once: the shared producer connects in start()
    accounted += a.ms;
    row(`&nbsp;&nbsp;${key}`, a.ms, { calls: a.calls, cpuMs: a.cpuMs, note: key === 'produce: sendBatch' ? `${fmt(a.items)} records sent (outputs + changelog), ${fmt(a.items / Math.max(1, a.calls))} per call` : note });
  }
  row('&nbsp;&nbsp;eachBatch rest (task creation, restore check, bookkeeping)', Math.max(0, eb.ms - accounted));
  row('outside eachBatch after the first batch (kafkajs fetch + record-batch decoding, idle, 2 ms poll)', Math.max(0, r.wallMs - firstBatchAt - eb.ms));
  if (r.profile) {
    const total = [...r.profile.values()].reduce((a, b) => a + b, 0);
    out.push('', `V8 sampling CPU profile of the same run (main thread, ${fmt(total)} ms sampled; each sample charged to the nearest non-Node-internal frame):`, '');
    out.push('| bucket | ms | % of samples |', '|---|---:|---:|');
    for (const [k, ms] of r.profile) out.push(`| ${k} | ${fmt(ms)} | ${((ms / total) * 100).toFixed(1)} % |`);
  }
}

async function main(): Promise<void> {
  const bytes = await produceCandles();
  const ends = await endOffsets(admin, CANDLES);
  const total = [...ends.values()].reduce((s, v) => s + v, 0n);
  if (total !== BigInt(RECORDS)) throw new Error(`end offsets sum to ${total}, expected ${RECORDS}`);
  log(`end offsets ${[...ends].map(([p, o]) => `${p}@${o}`).join(' ')}`);
  const appEnds = new Map([[CANDLES, ends]]);

  log('warm-up: one untimed kafkajs + Avro decode pass (JIT, connections)');
  await rawKafkajs(ends, true, 'warmup');

  const results = new Map<VariantId, RunResult[]>(VARIANTS.map((v) => [v.id, []]));
  for (let run = 1; run <= RUNS; run++) {
    for (const v of VARIANTS) {
      log(`run ${run}/${RUNS}: ${v.name}`);
      const r = v.id === 'raw' ? await rawKafkajs(ends, false, `r${run}`)
        : v.id === 'rawDecode' ? await rawKafkajs(ends, true, `d${run}`)
          : v.id === 'perf' ? await perfTest(`p${run}`)
            : await streamsRun(appEnds, v.id === 'alo' ? 'at_least_once' : 'exactly_once', `r${run}`, false);
      results.get(v.id)!.push(r);
      const steady = steadyRateOf(r);
      log(`  ${fmt(rateOf(r))} records/s wall (${fmt(r.wallMs)} ms)${steady ? `, ${fmt(steady)} records/s steady` : ''}${r.jvmWallMs ? `, tool process incl. JVM start ${fmt(r.jvmWallMs)} ms` : ''}`);
    }
  }

  log('profiling runs (per-record timers on; not part of the medians)');
  const profiles = new Map<Guarantee, RunResult>();
  for (const g of ['at_least_once', 'exactly_once'] as const) {
    const r = await streamsRun(appEnds, g, 'prof', true);
    profiles.set(g, r);
    log(`  profile ${g}: ${fmt(rateOf(r))} records/s wall`);
  }

  // ---- table ----
  const mb = bytes / 1048576;
  const raw = median(results.get('raw')!.map(rateOf));
  const rawSteady = median(results.get('raw')!.map((r) => steadyRateOf(r)!));
  const out: string[] = [];
  out.push(`Input: ${fmt(RECORDS)} candles, ${INSTRUMENT_COUNT} instruments, ${PARTITIONS} partitions, ${mb.toFixed(1)} MB key+value (${fmt(bytes / RECORDS, 1)} B/record); ${RUNS} run(s) per variant, median.`, '');
  out.push('| variant | median records/s (wall) | × raw | median records/s (steady) | × raw | MB/s (wall) | per run records/s (wall) |');
  out.push('|---|---:|---:|---:|---:|---:|---|');
  const med = new Map<VariantId, { wall: number; steady: number }>();
  for (const v of VARIANTS) {
    const runs = results.get(v.id)!;
    const wall = median(runs.map(rateOf));
    const steady = median(runs.map((r) => steadyRateOf(r) ?? NaN));
    med.set(v.id, { wall, steady });
    const mbs = v.id === 'perf' ? median(runs.map((r) => r.toolMBs!)) : (wall * mb) / RECORDS;
    out.push(`| ${v.name} | ${fmt(wall)} | ${(wall / raw).toFixed(2)} | ${fmt(steady)} | ${(steady / rawSteady).toFixed(2)} | ${mbs.toFixed(1)} | ${runs.map((r) => fmt(rateOf(r))).join(', ')} |`);
  }
  const perfRuns = results.get('perf')!;
  out.push('');
  out.push('wall = from connect/start() (group join included) until the last input offset is done; steady = from the group join (GROUP_JOIN event) to the same end, i.e. start-up and join excluded, first fetch included.');
  out.push(`¹ ConsumerPerformance's own figures: wall = its nMsg.sec (timed after the JVM and the consumer are up, group join included: median rebalance.time.ms ${fmt(median(perfRuns.map((r) => r.toolRebalanceMs!)))}), steady = its fetch.nMsg.sec (join excluded), MB/s = its MB.sec. ` +
    `The whole tool process including JVM start took a median ${fmt(median(perfRuns.map((r) => r.jvmWallMs!)))} ms (${fmt((RECORDS / median(perfRuns.map((r) => r.jvmWallMs!))) * 1000)} records/s if JVM start were counted).`);
  const eos = med.get('eos')!;
  const ratio = eos.wall / raw;
  const ratioSteady = eos.steady / rawSteady;
  const met = ratio >= TARGET_RATIO;
  out.push('');
  out.push(`Target (issue 3): exactly-once pipeline ≥ ${TARGET_RATIO * 100} % of raw kafkajs (no decode) consume throughput — ` +
    `wall ${(ratio * 100).toFixed(1)} % → ${met ? 'MET' : 'MISSED'}; steady ${(ratioSteady * 100).toFixed(1)} % → ${ratioSteady >= TARGET_RATIO ? 'MET' : 'MISSED'}.`);

  out.push('', '### Where the time goes', '');
  out.push('Per-batch timers from the median measured run; per-record timers and a V8 sampling CPU profile from one separate profiling run per guarantee (its wrappers and the sampler add a little). "node CPU" is process CPU time (all threads) during the timed calls.');
  for (const [id, g] of [['alo', 'at_least_once'], ['eos', 'exactly_once']] as const) {
    breakdown(`${g}, median measured run`, medianRun(results.get(id)!), out);
    breakdown(`${g}, profiling run (per-record timers on)`, profiles.get(g)!, out);
  }
  process.stdout.write(out.join('\n') + '\n');
}

try {
  log(`bench ${BENCH_ID}: ${RECORDS} records, ${RUNS} run(s); prefix ${TOPIC_PREFIX}; node ${process.version}, ${os.cpus().length} CPUs, broker pid ${brokerPid ?? 'unknown'}`);
  await main();
} catch (err) {
  exitCode = 1;
  log(`FAILED: ${(err as Error).stack ?? String(err)}`);
} finally {
  try {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(TOPIC_PREFIX));
    if (mine.length) await admin.deleteTopics({ topics: mine, timeout: 30_000 });
    log(`deleted ${mine.length} topics with prefix ${TOPIC_PREFIX}`);
    await admin.deleteGroups(groups).catch((e: Error & { groups?: { groupId: string; error?: Error }[] }) =>
      log(`could not delete consumer groups: ${e.message}${e.groups ? `: ${e.groups.filter((g) => g.error).map((g) => `${g.groupId} (${g.error!.message})`).join(', ')}` : ''}`));
  } catch (err) {
    exitCode = 1;
    log(`cleanup failed: ${(err as Error).message}`);
  }
  await services.close();
}
process.exit(exitCode);
