/**
 * Snapshot and load of the whole calibration state with an integrity header,
 * after the mm-bot README's "Snapshots: integrity header" (docs/calibration.md,
 * "Snapshot format"):
 *
 *   {"created_at":"<ISO>","instrument_count":<n>,"kind":"cost_calib","payload":{<instrument>:<state>},"sha256":"<hex>","version":1}\n
 *
 * The file is canonical JSON — keys sorted at every level, no whitespace,
 * non-ASCII escaped as \uXXXX (Python's `json.dumps(sort_keys=True,
 * separators=(",", ":"))`) — so the same state and time give the same bytes.
 * `sha256` is of the canonical JSON of every other header field and the
 * payload: unlike the seed, which hashes the payload only, a flipped byte in
 * the header is caught too. The loader refuses, with the seed's kinds plus two:
 * file_too_large, non_ascii, invalid_structure, unsupported_version,
 * wrong_kind, bad_checksum, invalid_payload.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { SepError } from '../runtime/errors.ts';
import { instrumentCalibrationProblem, type CalibrationState } from './calibration.ts';
import { INSTRUMENT_NAME } from '../model/instruments.ts';

export const SNAPSHOT_VERSION = 1;
export const SNAPSHOT_KIND = 'cost_calib';
/** The seed's loader limit (1 MB); COST_SNAPSHOT_MAX_BYTES overrides it. */
export const DEFAULT_SNAPSHOT_MAX_BYTES = 1_048_576;

export type SnapshotProblem =
  | 'file_too_large' | 'non_ascii' | 'invalid_structure' | 'unsupported_version' | 'wrong_kind' | 'bad_checksum' | 'invalid_payload';

/**
 * A snapshot that cannot be written or loaded. `problem` is the seed's kind
 * (the `snapshot_integrity_fail_total{kind}` label); the message says what is
 * wrong and what to do.
 */
export class SnapshotError extends SepError {
  constructor(readonly problem: SnapshotProblem, message: string) {
    super('INPUT_INVALID', `cost calibration snapshot refused (${problem}): ${message}`);
  }
}

export interface LoadedSnapshot {
  state: CalibrationState;
  /** created_at, epoch ms. */
  createdAt: number;
  version: number;
  instrumentCount: number;
}

export interface SnapshotOptions {
  /** Largest snapshot, bytes; default 1 MiB (COST_SNAPSHOT_MAX_BYTES). */
  maxBytes?: number;
}

/**
 * Canonical JSON: object keys sorted (by UTF-16 code unit) at every level, no
 * whitespace, numbers as ECMAScript prints them (shortest round trip), and
 * characters above U+007F escaped, so the text is ASCII. Throws on what JSON
 * cannot hold exactly (NaN, ±Infinity, undefined, functions).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${value} has no JSON form`);
    return JSON.stringify(value);
  }
  if (typeof value === 'string') return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${canonicalJson(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  throw new TypeError(`canonicalJson: a ${typeof value} has no JSON form`);
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** The header and payload the checksum covers: every field but `sha256`. */
function body(createdAt: string, state: CalibrationState) {
  return { created_at: createdAt, instrument_count: Object.keys(state).length, kind: SNAPSHOT_KIND, payload: state, version: SNAPSHOT_VERSION };
}

/**
 * The snapshot bytes of `state` taken at `createdAtMs` (epoch ms, from the
 * caller's clock so tests and replays are exact). Refuses a state the loader
 * would refuse, so every snapshot written can be loaded.
 */
export function encodeSnapshot(state: CalibrationState, createdAtMs: number, options: SnapshotOptions = {}): Buffer {
  const payloadProblem = statePayloadProblem(state);
  if (payloadProblem !== null) throw new SnapshotError('invalid_payload', `${payloadProblem}; this is a bug in the calibration steps, not in a file`);
  const b = body(new Date(createdAtMs).toISOString(), state);
  const text = `${canonicalJson({ ...b, sha256: sha256(canonicalJson(b)) })}\n`;
  const maxBytes = options.maxBytes ?? DEFAULT_SNAPSHOT_MAX_BYTES;
  if (text.length > maxBytes) {
    throw new SnapshotError('file_too_large', `the snapshot of ${b.instrument_count} instruments is ${text.length} bytes, over COST_SNAPSHOT_MAX_BYTES=${maxBytes}; raise COST_SNAPSHOT_MAX_BYTES or lower COST_DEDUP_CAPACITY (the fill and order id lists are most of it)`);
  }
  return Buffer.from(text, 'ascii');
}

const HEADER = ['created_at', 'instrument_count', 'kind', 'payload', 'sha256', 'version'];
const RESTORE = 'restore the previous snapshot, or remove the file to start from an empty calibration';

/** Checks a snapshot's bytes end to end and returns the state it holds; throws SnapshotError naming the problem and the fix. */
export function decodeSnapshot(bytes: Uint8Array, options: SnapshotOptions = {}): LoadedSnapshot {
  const maxBytes = options.maxBytes ?? DEFAULT_SNAPSHOT_MAX_BYTES;
  if (bytes.length > maxBytes) {
    throw new SnapshotError('file_too_large', `${bytes.length} bytes, over COST_SNAPSHOT_MAX_BYTES=${maxBytes}; if the file is genuine, raise COST_SNAPSHOT_MAX_BYTES`);
  }
  const bad = bytes.findIndex((b) => b > 0x7f);
  if (bad >= 0) {
    throw new SnapshotError('non_ascii', `byte 0x${bytes[bad]!.toString(16)} at offset ${bad} is not ASCII, and snapshots are written as ASCII: the file is corrupt or not a snapshot; ${RESTORE}`);
  }
  const text = Buffer.from(bytes).toString('ascii');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new SnapshotError('invalid_structure', `not valid JSON (${(err as Error).message}): the file is truncated or corrupt; ${RESTORE}`);
  }
  const structure = (message: string) => new SnapshotError('invalid_structure', `${message}; ${RESTORE}`);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw structure('the top level is not a JSON object with the integrity header');
  const h = doc as Record<string, unknown>;
  for (const k of HEADER) if (!(k in h)) throw structure(`the header misses "${k}" (expected ${HEADER.join(', ')})`);
  for (const k of Object.keys(h)) if (!HEADER.includes(k)) throw structure(`the header has an unknown field "${k}"`);

  if (!Number.isInteger(h.version)) throw structure(`version ${JSON.stringify(h.version)} is not an integer`);
  if (h.version !== SNAPSHOT_VERSION) {
    throw new SnapshotError('unsupported_version', `version ${h.version as number}, but this build reads version ${SNAPSHOT_VERSION}; load it with the build that wrote it, or remove it to start from an empty calibration`);
  }
  if (h.kind !== SNAPSHOT_KIND) {
    throw new SnapshotError('wrong_kind', `kind ${JSON.stringify(h.kind)} is not ${JSON.stringify(SNAPSHOT_KIND)}: this is another component's snapshot; check the path`);
  }
  if (typeof h.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(h.sha256)) throw structure('sha256 is not 64 lowercase hex digits');
  const createdAt = typeof h.created_at === 'string' ? Date.parse(h.created_at) : NaN;
  if (!Number.isFinite(createdAt) || new Date(createdAt).toISOString() !== h.created_at) throw structure(`created_at ${JSON.stringify(h.created_at)} is not an ISO-8601 UTC time like 2026-11-13T00:00:00.000Z`);
  if (!Number.isSafeInteger(h.instrument_count) || (h.instrument_count as number) < 0) throw structure(`instrument_count ${JSON.stringify(h.instrument_count)} is not a whole number ≥ 0`);

  const { sha256: stated, ...rest } = h;
  const actual = sha256(canonicalJson(rest));
  if (actual !== stated) {
    throw new SnapshotError('bad_checksum', `the header says sha256 ${stated} but the content hashes to ${actual}: the file was corrupted or edited by hand; ${RESTORE}`);
  }

  const payloadProblem = statePayloadProblem(h.payload);
  if (payloadProblem !== null) throw new SnapshotError('invalid_payload', `${payloadProblem}; the checksum matches, so the writer was faulty or foreign: ${RESTORE}`);
  const state = h.payload as CalibrationState;
  if (Object.keys(state).length !== h.instrument_count) {
    throw new SnapshotError('invalid_payload', `instrument_count is ${h.instrument_count as number} but the payload holds ${Object.keys(state).length} instruments; ${RESTORE}`);
  }
  // Same state ⇔ same bytes: a valid snapshot is exactly what encodeSnapshot writes.
  if (`${canonicalJson(h)}\n` !== text) throw structure('the content checks out but is not in canonical form (whitespace, key order, number format or the final newline changed)');
  return { state, createdAt, version: h.version, instrumentCount: h.instrument_count as number };
}

function statePayloadProblem(payload: unknown): string | null {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return 'payload is not an object of instrument → state';
  for (const [instrument, s] of Object.entries(payload)) {
    if (!INSTRUMENT_NAME.test(instrument)) return `payload key ${JSON.stringify(instrument)} is not an instrument name like EUR_USD`;
    const p = instrumentCalibrationProblem(s);
    if (p !== null) return `payload.${instrument} ${p}`;
  }
  return null;
}

/**
 * Writes a snapshot atomically, as the seed does: temporary file → write →
 * fsync(file) → rename over the target → fsync(directory), so a crash leaves
 * the old or the new snapshot, never a torn one.
 */
export async function writeSnapshotFile(file: string, state: CalibrationState, createdAtMs: number, options: SnapshotOptions = {}): Promise<void> {
  const bytes = encodeSnapshot(state, createdAtMs, options);
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  const dir = await open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Reads and checks a snapshot file; the size is checked before the file is read. */
export async function readSnapshotFile(file: string, options: SnapshotOptions = {}): Promise<LoadedSnapshot> {
  const maxBytes = options.maxBytes ?? DEFAULT_SNAPSHOT_MAX_BYTES;
  const { size } = await stat(file);
  if (size > maxBytes) throw new SnapshotError('file_too_large', `${file} is ${size} bytes, over COST_SNAPSHOT_MAX_BYTES=${maxBytes}; if the file is genuine, raise COST_SNAPSHOT_MAX_BYTES`);
  return decodeSnapshot(await readFile(file), options);
}
