/**
 * Local Confluent-API-compatible schema registry: AxonOps Schema Registry
 * (Go, Apache-2.0), built from the Go module proxy at a pinned version.
 *
 * Its storage is PostgreSQL: a private PGlite served by timescale-server.ts on
 * SEP_SCHEMA_REGISTRY_DB_PORT (default 18082), data in .stack/schema-registry/db.
 * It must persist as long as Kafka's data does: records carry schema ids, and
 * an in-memory registry would hand out the same ids to other schemas after a
 * restart. The registry holds one connection (max_open_conns 1), which is what
 * the PGlite front door serves.
 *
 * The API is served at the root (no /apis/ccompat/v7 prefix), so
 * SCHEMA_REGISTRY_URL is just http://127.0.0.1:<port>. See docs/schema-registry.md.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { isAlive, portOpen, readPid, spawnDetached, stackPath, StackError, waitUntil } from './process.ts';
import type { LocalService } from './service.ts';

const run = promisify(execFile);

const MODULE = 'github.com/axonops/axonops-schema-registry';
const VERSION = 'v0.2.1';
const PACKAGE = './cmd/schema-registry';
const MIN_GO = [1, 26] as const; // the module's go.mod says `go 1.26.0`

const NAME = 'schema-registry';
const PORT = Number(process.env.SEP_SCHEMA_REGISTRY_PORT ?? 18081);
const LOCAL_URL = `http://127.0.0.1:${PORT}`;
const READY_TIMEOUT_MS = 60_000;
const DB_NAME = 'schema-registry-db';
const DB_PORT = Number(process.env.SEP_SCHEMA_REGISTRY_DB_PORT ?? 18082);
const DB_SERVER = path.join(import.meta.dirname, 'timescale-server.ts');

const binPath = () => stackPath(NAME, 'bin', 'schema-registry');
const markerPath = () => stackPath(NAME, 'installed.json');
const configPath = () => stackPath(NAME, 'config.yaml');

interface Marker { module: string; version: string; sum: string }

function installedMarker(): Marker | undefined {
  try {
    return JSON.parse(readFileSync(markerPath(), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

/** Environment for the go command: default GOPATH/GOMODCACHE/GOCACHE (shared, so re-installs are cached), no stray workspace or flags. */
function goEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GOWORK: 'off', GOFLAGS: '-mod=readonly', CGO_ENABLED: '0' };
}

async function go(args: string[], cwd?: string, timeoutMs = 15 * 60_000): Promise<string> {
  try {
    const { stdout } = await run('go', args, { cwd, env: goEnv(), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new StackError('the schema registry is built from source, but `go` is not on PATH', `install Go >= ${MIN_GO.join('.')} (https://go.dev/dl) and put its bin directory on PATH, or set SCHEMA_REGISTRY_URL to an existing registry`);
    }
    const tail = (e.stderr ?? e.message).trimEnd().split('\n').slice(-15).map((l) => `  | ${l}`).join('\n');
    throw new StackError(`\`go ${args.join(' ')}\` failed:\n${tail}`, 'check that the Go module proxy is reachable (GOPROXY) and retry `npm run stack:up`; or set SCHEMA_REGISTRY_URL to an existing registry');
  }
}

async function checkGo(log: (line: string) => void): Promise<void> {
  const version = (await go(['env', 'GOVERSION'])).trim(); // e.g. go1.26.8
  const m = /^go(\d+)\.(\d+)/.exec(version);
  const tooOld = m !== null && (Number(m[1]) < MIN_GO[0] || (Number(m[1]) === MIN_GO[0] && Number(m[2]) < MIN_GO[1]));
  if (!tooOld) return;
  const toolchain = process.env.GOTOOLCHAIN ?? '';
  if (toolchain === 'local' || toolchain.endsWith('+local')) {
    throw new StackError(`${MODULE}@${VERSION} needs Go >= ${MIN_GO.join('.')}, found ${version} and GOTOOLCHAIN=${toolchain} forbids fetching a newer one`, `install Go >= ${MIN_GO.join('.')} or unset GOTOOLCHAIN so go fetches the toolchain from the module proxy`);
  }
  log(`${version} < go${MIN_GO.join('.')}; the go command will fetch the newer toolchain from the module proxy`);
}

function writeConfig(): string {
  const file = configPath();
  writeFileSync(file, [
    '# written by ops/stack/schema-registry.ts on every start',
    'server:',
    '  host: "127.0.0.1"',
    `  port: ${PORT}`,
    'storage:',
    '  type: postgresql',
    '  postgresql:',
    '    host: 127.0.0.1',
    `    port: ${DB_PORT}`,
    '    database: postgres',
    '    user: postgres',
    '    password: local', // the PGlite front door trusts every client
    '    ssl_mode: disable',
    '    max_open_conns: 1',
    '    max_idle_conns: 1',
    '    conn_max_lifetime: 0',
    'compatibility:',
    '  default_level: BACKWARD',
    'logging:',
    '  level: info',
    '  format: json',
    '',
  ].join('\n'));
  return file;
}

/** The registry reads SCHEMA_REGISTRY_* env overrides (auth, storage, ...): blank any the operator has set, then pin ours. */
function registryEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of Object.keys(process.env)) if (key.startsWith('SCHEMA_REGISTRY_')) env[key] = '';
  return {
    ...env,
    SCHEMA_REGISTRY_HOST: '127.0.0.1',
    SCHEMA_REGISTRY_PORT: String(PORT),
    SCHEMA_REGISTRY_STORAGE_TYPE: 'postgresql',
    SCHEMA_REGISTRY_COMPATIBILITY_LEVEL: 'BACKWARD',
  };
}

/** The registry's private PGlite; left alone when it is already ours and running. */
async function startStorage(log: (line: string) => void): Promise<void> {
  const running = readPid(DB_NAME);
  if (running !== undefined && isAlive(running) && (await portOpen(DB_PORT))) return;
  if (await portOpen(DB_PORT)) {
    throw new StackError(`port ${DB_PORT} (schema registry storage) is already in use by another process`, `stop the process listening on ${DB_PORT}, or set SEP_SCHEMA_REGISTRY_DB_PORT to a free port, or set SCHEMA_REGISTRY_URL to use an existing registry`);
  }
  const pid = spawnDetached(DB_NAME, process.execPath, ['--import', 'tsx', DB_SERVER, '--port', String(DB_PORT), '--data', stackPath(NAME, 'db')]);
  await waitUntil(DB_NAME, () => portOpen(DB_PORT), READY_TIMEOUT_MS, pid);
  log(`storage ready on 127.0.0.1:${DB_PORT} (pid ${pid})`);
}

export const schemaRegistry: LocalService = {
  name: NAME,
  processes: [NAME, DB_NAME],
  envVar: 'SCHEMA_REGISTRY_URL',
  localUrl: LOCAL_URL,

  async install(log) {
    const marker = installedMarker();
    if (marker?.module === MODULE && marker.version === VERSION && existsSync(binPath())) {
      log(`${MODULE}@${VERSION} already built (${binPath()})`);
      return;
    }
    await checkGo(log);
    log(`downloading ${MODULE}@${VERSION} from the Go module proxy`);
    // `go install pkg@version` is not used: it also asks the proxy for the module's
    // version list (deprecation check), which some proxies refuse. Download the exact
    // version instead and build it inside its own module (its go.sum pins every dependency).
    const info = JSON.parse(await go(['mod', 'download', '-json', `${MODULE}@${VERSION}`])) as { Dir?: string; Sum?: string; Error?: string };
    if (info.Error || !info.Dir) {
      throw new StackError(`could not download ${MODULE}@${VERSION}: ${info.Error ?? 'no module directory'}`, 'check that the Go module proxy is reachable (GOPROXY) and retry');
    }
    log(`building ${PACKAGE} (first time ~1 min)`);
    const tmp = `${binPath()}.tmp`;
    rmSync(tmp, { force: true });
    await go(['build', '-trimpath', '-ldflags', `-s -w -X main.version=${VERSION}`, '-o', tmp, PACKAGE], info.Dir);
    renameSync(tmp, binPath());
    writeFileSync(markerPath(), JSON.stringify({ module: MODULE, version: VERSION, sum: info.Sum ?? '' } satisfies Marker, null, 2) + '\n');
    log(`built ${binPath()}`);
  },

  async start(log) {
    const running = readPid(NAME);
    if (running !== undefined && isAlive(running) && (await this.healthy(LOCAL_URL))) {
      log(`already running (pid ${running}) at ${LOCAL_URL}`);
      return;
    }
    if (await portOpen(PORT)) {
      throw new StackError(`port ${PORT} (schema registry) is already in use by another process`, `stop the process listening on ${PORT} (\`ss -ltnp 'sport = :${PORT}'\`), or set SEP_SCHEMA_REGISTRY_PORT to a free port, or set SCHEMA_REGISTRY_URL to use that registry instead`);
    }
    if (!existsSync(binPath())) {
      throw new StackError(`schema registry is not installed (${binPath()} missing)`, 'run `npm run stack:up` (it installs before starting)');
    }
    await startStorage(log);
    const pid = spawnDetached(NAME, binPath(), ['-config', writeConfig()], { env: registryEnv() });
    log(`started pid ${pid}, storage on 127.0.0.1:${DB_PORT}, waiting for ${LOCAL_URL}/subjects`);
    await waitUntil(NAME, () => this.healthy(LOCAL_URL), READY_TIMEOUT_MS, pid);
    log(`ready at ${LOCAL_URL}`);
  },

  async healthy(url) {
    try {
      const res = await fetch(`${url.replace(/\/+$/, '')}/subjects`, {
        headers: { Accept: 'application/vnd.schemaregistry.v1+json, application/json' },
        signal: AbortSignal.timeout(2_000),
      });
      if (res.status !== 200) return false;
      const body: unknown = await res.json();
      // Confluent answers [] when empty; AxonOps v0.2.1 answers `null`.
      return Array.isArray(body) || body === null;
    } catch {
      return false;
    }
  },
};
