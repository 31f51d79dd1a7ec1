/**
 * The local stack: Kafka, the schema registry, the embedded TimescaleDB and
 * Redis. `stackUp()` starts what the environment does not already provide and
 * records the resolved URLs in `.stack/env.json` so tests, the demo and the
 * CLI find them; `resolveServiceUrls()` is what every consumer calls.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { kafka } from './kafka.ts';
import { schemaRegistry } from './schema-registry.ts';
import { timescale } from './timescale.ts';
import { redis } from './redis.ts';
import { isAlive, readPid, stackPath, stopByPid } from './process.ts';
import type { LocalService, ServiceName } from './service.ts';

export { StackError } from './process.ts';
export type { ServiceName } from './service.ts';

/**
 * Start order: quick ones first so a missing prerequisite of a slow one is
 * reported early; the schema registry last, because it keeps its schemas in Kafka.
 */
export const SERVICES: readonly LocalService[] = [redis, timescale, kafka, schemaRegistry];

export interface ServiceUrls {
  KAFKA_BROKERS: string;
  SCHEMA_REGISTRY_URL: string;
  DATABASE_URL: string;
  REDIS_URL: string;
}

export type ServiceState = { name: ServiceName; envVar: string; url: string; source: 'env' | 'local'; healthy: boolean; pid?: number };

const ENV_FILE = () => stackPath('env.json');

/** Env variable when set, else the local default. */
export function resolveServiceUrls(env: NodeJS.ProcessEnv = process.env): ServiceUrls {
  const urls = Object.fromEntries(SERVICES.map((s) => [s.envVar, env[s.envVar] || s.localUrl]));
  return urls as unknown as ServiceUrls;
}

export async function stackStatus(): Promise<ServiceState[]> {
  return Promise.all(SERVICES.map(async (s) => {
    const fromEnv = Boolean(process.env[s.envVar]);
    const url = process.env[s.envVar] || s.localUrl;
    const pid = fromEnv ? undefined : readPid(s.name);
    const state: ServiceState = { name: s.name, envVar: s.envVar, url, source: fromEnv ? 'env' : 'local', healthy: await s.healthy(url).catch(() => false) };
    if (pid !== undefined && isAlive(pid)) state.pid = pid;
    return state;
  }));
}

/**
 * Installs and starts every service not provided by the environment. Idempotent:
 * a healthy running service is left alone. Throws StackError (with a fix) on the
 * first service that cannot start.
 */
export async function stackUp(log: (line: string) => void = () => {}): Promise<ServiceUrls> {
  for (const s of SERVICES) {
    const external = process.env[s.envVar];
    if (external) {
      log(`${s.name}: using ${s.envVar}=${redact(external)}`);
      continue;
    }
    const t0 = Date.now();
    if (await s.healthy(s.localUrl).catch(() => false)) {
      log(`${s.name}: already running at ${s.localUrl}`);
      continue;
    }
    await stopByPid(s.name, 2000); // a stale or hung process from an earlier run
    await s.install((line) => log(`${s.name}: ${line}`));
    await s.start((line) => log(`${s.name}: ${line}`));
    log(`${s.name}: ready at ${s.localUrl} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const urls = resolveServiceUrls();
  writeFileSync(ENV_FILE(), JSON.stringify(urls, null, 2) + '\n');
  return urls;
}

export async function stackDown(log: (line: string) => void = () => {}): Promise<void> {
  for (const s of [...SERVICES].reverse()) {
    for (const name of s.processes ?? [s.name]) log(`${name}: ${await stopByPid(name)}`);
  }
}

/** URLs recorded by the last `stack:up` (falls back to env/defaults). */
export function recordedServiceUrls(): ServiceUrls {
  const f = ENV_FILE();
  const base = existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as ServiceUrls) : undefined;
  return { ...(base ?? resolveServiceUrls()), ...pickSet(process.env) };
}

function pickSet(env: NodeJS.ProcessEnv): Partial<ServiceUrls> {
  return Object.fromEntries(SERVICES.filter((s) => env[s.envVar]).map((s) => [s.envVar, env[s.envVar]]));
}

/** Hides a password in a URL before it is printed (as node-postgres does). */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]+@/, '$1****@');
}
