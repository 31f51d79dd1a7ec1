/**
 * The sink's database connection: one pg client (the embedded TimescaleDB
 * accepts a single connection), opened lazily and opened again after it
 * broke. The sink asks `client()` per batch and calls `broken()` when a
 * query failed on the connection; what to do with a failure depends on its
 * class (`classifyDatabaseError`):
 *
 * - `connection` — the database is down, restarting or unreachable: pause,
 *   reconnect with backoff, resume from the offsets stored in the database.
 * - `data` — the database refused a row (SQLSTATE class 22 data exception,
 *   23 integrity violation): the record goes to the dead-letter topic.
 * - `fatal` — anything else (a missing table, a permission): the sink stops
 *   with the message, since retrying cannot fix it.
 */
import type pg from 'pg';

export type DatabaseErrorClass = 'connection' | 'data' | 'fatal';

/** SQLSTATEs that mean "the server is going away or not there yet" (PostgreSQL Appendix A). */
const CONNECTION_STATES = new Set(['57P01', '57P02', '57P03', '53300']);

export function classifyDatabaseError(err: unknown): DatabaseErrorClass {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    if (code.startsWith('08') || CONNECTION_STATES.has(code)) return 'connection';
    if (code.startsWith('22') || code.startsWith('23')) return 'data';
    return 'fatal';
  }
  // No SQLSTATE: a socket error (ECONNREFUSED, ECONNRESET, EPIPE) or pg's own
  // "Connection terminated unexpectedly" / "not queryable" — the connection, not the data.
  return 'connection';
}

export type DatabaseState = 'closed' | 'connecting' | 'ready' | 'broken';

export class SinkDatabase {
  state: DatabaseState = 'closed';
  private current: pg.Client | undefined;

  /**
   * `connect` opens (and migrates) a new client; see connectDatabase in src/pipeline/services.ts.
   * `releaseAfterUse`: `release()` closes the connection, so that other processes get the embedded
   * TimescaleDB's single slot between transactions (replays: ~16 ms per reconnect, measured).
   */
  constructor(private readonly connect: () => Promise<pg.Client>, private readonly opts: { releaseAfterUse?: boolean } = {}) {}

  /** The open client, connecting first if there is none. Throws what `connect` throws. */
  async client(): Promise<pg.ClientBase> {
    if (this.current && this.state === 'ready') return this.current;
    await this.drop();
    this.state = 'connecting';
    try {
      const c = await this.connect();
      // An idle client whose server goes away emits 'error'; unhandled, it would end the process.
      c.on('error', () => { if (this.current === c) this.state = 'broken'; });
      this.current = c;
      this.state = 'ready';
      return c;
    } catch (err) {
      this.state = 'broken';
      throw err;
    }
  }

  /** A query failed on the connection: the next `client()` opens a new one. */
  broken(): void {
    this.state = 'broken';
  }

  /** Done for now: closes the connection when sharing it (`releaseAfterUse`), else keeps it. */
  async release(): Promise<void> {
    if (!this.opts.releaseAfterUse || this.state !== 'ready') return;
    this.state = 'closed';
    await this.drop();
  }

  async close(): Promise<void> {
    await this.drop();
    this.state = 'closed';
  }

  private async drop(): Promise<void> {
    const c = this.current;
    this.current = undefined;
    // A broken socket may never answer the goodbye: don't wait long for it.
    if (c) await Promise.race([c.end().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}

/** How long `waitForDatabase` waits for a connection another process holds (ms). */
const DATABASE_WAIT_MS = 15 * 60_000;

/**
 * The database's first connection. The embedded TimescaleDB serves one
 * connection at a time: while another process holds it (a `sep run`, a
 * replay between its transactions) the server answers 53300 "too many
 * clients" after its own 5 s wait — so wait for it instead of failing, and
 * say why every 10 s. Any other failure is thrown at once.
 */
export async function waitForDatabase(database: SinkDatabase, log: (line: string) => void, waitMs = DATABASE_WAIT_MS): Promise<pg.ClientBase> {
  const deadline = Date.now() + waitMs;
  for (let logged = 0; ; ) {
    try {
      return await database.client();
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
      const busy = code === '53300' || /too many clients/.test((err as Error).message);
      if (!busy || Date.now() > deadline) throw err;
      if (Date.now() - logged > 10_000) {
        log('waiting for the database: another client holds the embedded TimescaleDB\'s only connection (a `sep run`? stop it, or use a real TimescaleDB via DATABASE_URL)');
        logged = Date.now();
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
