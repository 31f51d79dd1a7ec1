/**
 * Versioned migrations: sql/timescale/NNN_name.sql applied in order, each in
 * its own transaction, recorded in schema_migrations with a checksum. Applying
 * again is a no-op; an edited, already-applied file is refused (write a new
 * migration instead).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SepError } from '../../streams/runtime/errors.ts';

export const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '..', '..', 'sql', 'timescale');

export interface Migration { version: number; name: string; sql: string; checksum: string }

/**
 * What migrate needs of a database client. pg.Client and pg.PoolClient fit as
 * they are; so does a small adapter over an in-process PGlite
 * (test/connectors/sink/pglite.ts). A text without values may hold several
 * statements: pg sends it as a simple query, which allows that.
 */
export interface SqlClient {
  query(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir).filter((f) => /^\d{3}_[\w-]+\.sql$/.test(f)).sort().map((f) => {
    const sql = readFileSync(path.join(dir, f), 'utf8');
    return { version: Number(f.slice(0, 3)), name: f, sql, checksum: createHash('sha256').update(sql).digest('hex').slice(0, 16) };
  });
}

/** Applies pending migrations; returns the names applied. */
export async function migrate(client: SqlClient, migrations = loadMigrations()): Promise<string[]> {
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
  const rows: { version: number; name: string; checksum: string }[] = (await client.query('SELECT version, name, checksum FROM schema_migrations')).rows;
  const applied = new Map(rows.map((r) => [r.version, r]));
  const done: string[] = [];
  for (const m of migrations) {
    const prior = applied.get(m.version);
    if (prior) {
      if (prior.checksum !== m.checksum) {
        throw new SepError('MIGRATION_FAILED', `migration ${m.name} changed after it was applied (checksum ${prior.checksum} → ${m.checksum}); restore the file and add a new migration ${String(m.version + 1).padStart(3, '0')}_*.sql instead`);
      }
      continue;
    }
    await client.query('BEGIN');
    try {
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw new SepError('MIGRATION_FAILED', `migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
    }
    done.push(m.name);
  }
  return done;
}
