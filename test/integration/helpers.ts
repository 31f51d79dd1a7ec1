/**
 * Factories for integration tests against the real stack (started by
 * `npm test`, or given by KAFKA_BROKERS, SCHEMA_REGISTRY_URL, DATABASE_URL,
 * REDIS_URL). Each test gets its own topic prefix, consumer groups and run id,
 * so tests never see each other's data or the demo's.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { recordedServiceUrls } from '../../ops/stack/index.ts';
import { createKafka, readTopicToEnd, type TopicRecord } from '../../streams/runtime/kafka.ts';

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
