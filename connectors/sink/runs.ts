/**
 * The `runs` table (sql/timescale/001, 004): one row per run id, what every
 * output row's `run_id` points at — its kind, the hash and the resolved
 * configuration it ran with, when it started and ended, and how.
 *
 * `startRun` upserts: a live pipeline restarted under the same run id keeps
 * its first `started_at` and becomes `running` again (its rows continue);
 * `finishRun` records the end. Both run on the sink's connection, so the
 * embedded TimescaleDB's single connection is enough.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { canonicalJson } from '../../streams/calibration/snapshot.ts';

export type RunKind = 'live' | 'replay' | 'canary' | 'demo';
export type RunStatus = 'running' | 'completed' | 'failed' | 'stopped';

/** The configuration as plain JSON (undefined and functions dropped) and its sha256: `runs.config`, `runs.config_hash`. */
export function configFingerprint(config: unknown): { json: unknown; hash: string } {
  const json = JSON.parse(JSON.stringify(config)) as unknown;
  return { json, hash: createHash('sha256').update(canonicalJson(json), 'utf8').digest('hex') };
}

export interface RunStart {
  runId: string;
  kind: RunKind;
  config: unknown;
  /** A replay's range [from, to), epoch ms. */
  rangeFrom?: number | null;
  rangeTo?: number | null;
  /** The pair a canary replay's run belongs to. */
  canary?: { id: string; color: 'blue' | 'green' } | null;
  /** The state snapshot the run was seeded from; null: clean state. */
  snapshot?: string | null;
  /** {topic: {partition: offset}} a bounded run stops at. */
  endOffsets?: Record<string, Record<string, string>> | null;
}

export async function startRun(db: pg.ClientBase, run: RunStart): Promise<string> {
  const { json, hash } = configFingerprint(run.config);
  const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
  await db.query(
    `INSERT INTO runs (run_id, kind, config_hash, config, range_from, range_to, canary_id, color, snapshot, end_offsets, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'running')
     ON CONFLICT (run_id) DO UPDATE SET kind = EXCLUDED.kind, config_hash = EXCLUDED.config_hash, config = EXCLUDED.config,
       range_from = EXCLUDED.range_from, range_to = EXCLUDED.range_to, canary_id = EXCLUDED.canary_id, color = EXCLUDED.color,
       snapshot = EXCLUDED.snapshot, end_offsets = EXCLUDED.end_offsets, status = 'running', error = NULL, finished_at = NULL, updated_at = now()`,
    [run.runId, run.kind, hash, JSON.stringify(json), iso(run.rangeFrom), iso(run.rangeTo), run.canary?.id ?? null, run.canary?.color ?? null,
      run.snapshot ?? null, run.endOffsets ? JSON.stringify(run.endOffsets) : null]);
  return hash;
}

export async function finishRun(db: pg.ClientBase, runId: string, status: Exclude<RunStatus, 'running'>, detail: { error?: string; summary?: unknown } = {}): Promise<void> {
  await db.query(
    `UPDATE runs SET status = $2, error = $3, summary = $4, finished_at = now(), updated_at = now() WHERE run_id = $1`,
    [runId, status, detail.error ?? null, detail.summary === undefined ? null : JSON.stringify(detail.summary)]);
}
