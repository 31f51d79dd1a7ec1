/**
 * Factories for integration tests against the real stack (started by
 * `npm test`, or given by KAFKA_BROKERS, SCHEMA_REGISTRY_URL, DATABASE_URL,
 * REDIS_URL). Each test gets its own topic prefix, consumer groups and run id,
 * so tests never see each other's data or the demo's.
 */
import { spawn } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import avro from 'avsc';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { recordedServiceUrls } from '../../ops/stack/index.ts';
import { createKafka, readTopicToEnd, type TopicRecord } from '../../streams/runtime/kafka.ts';
import { loadSchema, type TopicSpec } from '../../streams/runtime/topics.ts';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const urls = recordedServiceUrls();

export interface Namespace {
  prefix: string;
  runId: string;
  env: NodeJS.ProcessEnv;
}

/** A unique topic prefix and run id for one test. */
export function createNamespace(name: string): Namespace {
  const id = `${name}-${randomBytes(3).toString('hex')}`;
  return { prefix: `it.${id}.`, runId: id, env: { SEP_TOPIC_PREFIX: `it.${id}.`, SEP_HTTP_PORT: '0', ...urls } };
}

export interface CliResult { code: number | null; stdout: string; stderr: string }

/** Runs `sep <args>` as a child process (the real CLI, real services). */
export function sep(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 240_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/sep.mjs'), ...args], { cwd: ROOT, env: { ...process.env, CI: '1', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`sep ${args.join(' ')} timed out\n${stdout}\n${stderr}`)); }, timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** Reads a topic from the beginning to its current end with read_committed; returns raw messages. */
export async function readTopic(topic: string): Promise<TopicRecord[]> {
  return readTopicToEnd(createKafka({ brokers: urls.KAFKA_BROKERS, clientId: 'it-reader' }), topic);
}

/** Every record of an NDJSON file (gzipped when it ends in .gz), parsed. */
export async function readNdjson(file: string): Promise<Record<string, unknown>[]> {
  const input = file.endsWith('.gz') ? createReadStream(file).pipe(createGunzip()) : createReadStream(file);
  const out: Record<string, unknown>[] = [];
  for await (const line of createInterface({ input, crlfDelay: Infinity })) if (line.trim()) out.push(JSON.parse(line) as Record<string, unknown>);
  return out;
}

/**
 * Knobs for one recorded day: 6-hour spans, 5-minute evaluations (and
 * allocation intervals), a coherence guard low enough for the random-walk day
 * to trade (docs/regime.md), so gates flip and the allocator sizes something.
 */
export const ONE_DAY_KNOBS = {
  EVAL_INTERVAL_SEC: '300', GATES_BLOB_MAX_AGE_SEC: '900', GATES_SPAN_DAYS: '0.25', SPAN_MIN_BARS: '120', SPAN_MAX_MISSING_BARS: '30',
  GUARD_MIN_COHERENCE: '0.05', GATES_MIN_TRADES: '2', ECHO_MIN_REPETITIONS: '1', ECHO_HAZARD_MAX: '1',
  ALLOC_INTERVAL_SEC: '300',
};

/** Avro without logical types: timestamps stay epoch-ms numbers, as the processors produce them (and `sep offline` writes them). */
export const decoder = (spec: TopicSpec) => {
  const type = avro.Type.forSchema(JSON.parse(loadSchema(spec)));
  return (value: Buffer) => JSON.parse(JSON.stringify(type.fromBuffer(value.subarray(5)))) as unknown;
};

export interface Collected { partition: number; offset: string; value: Buffer }

/** A topic's records in the order a reader going partition by partition sees them. */
export const inTopicOrder = (records: readonly Collected[]) => [...records].sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));

/** Same length, then the first record that differs from the `sep offline` file (a readable failure instead of an 18 000-element diff). */
export function assertSameRecords(topic: string, kafkaRecords: Collected[], file: string, decode: (v: Buffer) => unknown): void {
  const ordered = inTopicOrder(kafkaRecords);
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  assert.equal(ordered.length, lines.length, `${topic}: ${ordered.length} records on the topic, ${lines.length} in ${path.basename(file)}`);
  for (let i = 0; i < lines.length; i++) {
    const got = decode(ordered[i]!.value);
    const want = JSON.parse(lines[i]!) as unknown;
    assert.deepEqual(got, want, `${topic} record ${i} (partition ${ordered[i]!.partition} offset ${ordered[i]!.offset}) differs from line ${i + 1} of ${path.basename(file)}`);
  }
}

/** Byte for byte (the Avro body after the schema id), in topic order: two runs' records on two topics. */
export function assertSameBytes(what: string, a: Collected[], b: Collected[]): void {
  const x = inTopicOrder(a);
  const y = inTopicOrder(b);
  assert.equal(x.length, y.length, `${what}: ${x.length} records vs ${y.length}`);
  for (let i = 0; i < x.length; i++) {
    assert.ok(x[i]!.partition === y[i]!.partition && x[i]!.value.subarray(5).equals(y[i]!.value.subarray(5)), `${what}: record ${i} differs (partition ${x[i]!.partition} offset ${x[i]!.offset} vs partition ${y[i]!.partition} offset ${y[i]!.offset})`);
  }
}
