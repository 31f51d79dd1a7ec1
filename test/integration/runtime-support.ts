/**
 * Shared pieces of the runtime integration tests: synthetic candles for many
 * instruments, producing them to a namespaced topic, the expected features
 * from the in-process test driver, and reading/decoding an output topic.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import avro from 'avsc';
import { createKafka, createProducer, ensureTopics } from '../../streams/runtime/kafka.ts';
import { AvroSerde } from '../../streams/runtime/serde.ts';
import { loadSchema, TOPICS } from '../../streams/runtime/topics.ts';
import { TopologyTestDriver } from '../../streams/runtime/test-driver.ts';
import { featuresTopology } from '../../streams/features/processor.ts';
import { InstrumentCatalog } from '../../streams/model/instruments.ts';
import type { Candle } from '../../streams/model/records.ts';
import type { Feature } from '../../streams/features/features.ts';
import { Rng } from '../../src/generate/random.ts';
import { readTopic, ROOT, urls, type Namespace } from './helpers.ts';

export const INSTRUMENTS = Array.from({ length: 50 }, (_, i) => `I${String(i).padStart(2, '0')}_USD`);
export const catalog = new InstrumentCatalog(INSTRUMENTS);

/** `perInstrument` M1 candles for each of the 50 instruments, interleaved by time. */
export function syntheticCandles(perInstrument: number, seed = 1): Candle[] {
  const rng = new Rng(seed);
  const price = INSTRUMENTS.map(() => 1 + rng.next());
  const out: Candle[] = [];
  const t0 = Date.UTC(2026, 0, 5);
  for (let i = 0; i < perInstrument; i++) {
    for (const [k, instrument] of INSTRUMENTS.entries()) {
      const open = price[k]!;
      const close = open * Math.exp(0.0005 * rng.normal());
      price[k] = close;
      const high = Math.max(open, close) * (1 + 0.0002 * rng.next());
      const low = Math.min(open, close) * (1 - 0.0002 * rng.next());
      out.push({ instrument, granularity: 'M1', ts: t0 + (i + 1) * 60_000, open, high, low, close, volume: 1000 + rng.int(1000), complete: true });
    }
  }
  return out;
}

export function topicsOf(ns: Namespace) {
  return { candles: `${ns.prefix}md.candles.v1`, features: `${ns.prefix}features.v1`, dlq: `${ns.prefix}dlq.v1` };
}

/** Creates the namespace's topics (3 partitions), registers schemas, returns a serde that writes them. */
export async function prepareTopics(ns: Namespace): Promise<AvroSerde> {
  const t = topicsOf(ns);
  const kafka = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: 'it-prepare' });
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [t.candles, t.features, t.dlq].map((name) => ({ name, partitions: name === t.dlq ? 1 : 3, compacted: false })), 3);
  await admin.disconnect();
  const serde = new AvroSerde(urls.SCHEMA_REGISTRY_URL);
  await serde.register({ ...TOPICS.candles, name: t.candles });
  await serde.register({ ...TOPICS.features, name: t.features });
  await serde.register({ ...TOPICS.deadLetters, name: t.dlq });
  return serde;
}

export async function produceCandles(serde: AvroSerde, topic: string, candles: Candle[], extra: { key: string; value: Buffer; timestamp: number }[] = []): Promise<void> {
  const kafka = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: 'it-produce' });
  const producer = await createProducer(kafka);
  const messages = [
    ...candles.map((c) => ({ key: c.instrument, value: serde.encode(topic, c), timestamp: String(c.ts) })),
    ...extra.map((e) => ({ key: e.key, value: e.value, timestamp: String(e.timestamp) })),
  ];
  for (let i = 0; i < messages.length; i += 10_000) await producer.send({ topic, messages: messages.slice(i, i + 10_000), acks: -1 });
  await producer.disconnect();
}

/** What the pipeline must produce: the same topology in-process, partitioned like Kafka. */
export function expectedFeatures(candles: Candle[], candlesTopic: string, featuresTopic: string): Map<string, Feature[]> {
  const d = new TopologyTestDriver(featuresTopology(catalog, { candlesTopic, featuresTopic, ticksTopic: null }), { partitions: 3 });
  for (const c of candles) d.pipeInput(candlesTopic, c.instrument, { ...c }, c.ts);
  return groupByKey(d.readOutput(featuresTopic).map((o) => o.value as Feature));
}

const featureType = avro.Type.forSchema(JSON.parse(loadSchema(TOPICS.features)));

/** Output values per instrument, in offset order, decoded; also the raw value bytes (without the schema id). */
export async function readFeatures(topic: string): Promise<{ byKey: Map<string, Feature[]>; bodies: Map<string, string[]>; count: number }> {
  const msgs = (await readTopic(topic)).sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
  const bodies = new Map<string, string[]>();
  const features = msgs.map((m) => {
    const body = m.value!.subarray(5);
    const list = bodies.get(m.key!) ?? [];
    list.push(body.toString('base64'));
    bodies.set(m.key!, list);
    return { ...(featureType.fromBuffer(body) as Feature) };
  });
  return { byKey: groupByKey(features), bodies, count: msgs.length };
}

function groupByKey(features: Feature[]): Map<string, Feature[]> {
  const out = new Map<string, Feature[]>();
  for (const f of features) {
    const list = out.get(f.instrument) ?? [];
    list.push(f);
    out.set(f.instrument, list);
  }
  return out;
}

export interface Worker { child: ChildProcess; output: () => string; exited: Promise<number | null> }

const workers = new Set<ChildProcess>();

export function killAllWorkers(): void {
  for (const w of workers) w.kill('SIGKILL');
}

export function startWorker(ns: Namespace, applicationId: string, args: string[] = []): Worker {
  const t = topicsOf(ns);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/integration/fixtures/features-worker.ts'), applicationId, t.candles, t.features, ...args], {
    cwd: ROOT, env: { ...process.env, ...ns.env, SEP_INSTRUMENTS: INSTRUMENTS.join(',') },
  });
  workers.add(child);
  child.on('exit', () => workers.delete(child));
  // Also on disk: a worker that hangs until the test's timeout leaves its story behind.
  const logFile = path.join(ROOT, '.stack/logs/workers', `${applicationId}-${child.pid}.log`);
  mkdirSync(path.dirname(logFile), { recursive: true });
  let out = '';
  const take = (d: Buffer) => { out += d; appendFileSync(logFile, d); };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}
