import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { applyBar, applyFill, applyOrderEvent, initialInstrumentCalibration, type CalibrationState } from '../../../streams/calibration/calibration.ts';
import { DEFAULT_CALIBRATION_CONFIG as CFG } from '../../../streams/calibration/config.ts';
import {
  canonicalJson, decodeSnapshot, encodeSnapshot, readSnapshotFile, SnapshotError, writeSnapshotFile, type SnapshotProblem,
} from '../../../streams/calibration/snapshot.ts';

const T0 = Date.parse('2026-11-13T10:00:00Z');
const CREATED = Date.parse('2026-11-13T12:00:00.123Z');

/** A state with three instruments, built by the steps (a cid with a non-ASCII character included). */
function sampleState(order: string[] = ['USD_JPY', 'EUR_USD', 'EUR_GBP']): CalibrationState {
  const state: CalibrationState = {};
  for (const instrument of order) {
    let s = initialInstrumentCalibration();
    for (let i = 0; i < 40; i++) {
      const ts = T0 + i * 1500;
      const price = instrument === 'USD_JPY' ? 150 + i * 0.001 : 1.1 + i * 1e-6;
      const quote = { ts, bid: price * 0.9999, ask: price * 1.00005 };
      s = applyFill(s, { cid: `${instrument}-${i}${i === 3 ? '-é' : ''}`, instrument, ts, side: i % 2 ? 'buy' : 'sell', price, qty: 10_000 + i * 1000, fee_bps: 0.2, liquidity: 'taker', color: 'blue' }, i === 0 ? null : quote, CFG).state;
      s = applyOrderEvent(s, { cid: `o-${i}`, instrument, ts, kind: i % 3 ? 'filled' : 'cancelled', side: 'buy', price, qty: 1, color: 'green' }, CFG).state;
      s = applyBar(s, { instrument, ts, close: price, spread_bps: i % 5 ? 0.8 + i / 100 : null, volume_usd: 1e6 + i }, CFG);
    }
    state[instrument] = s;
  }
  return state;
}

function refused(fn: () => unknown, problem: SnapshotProblem, pattern: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SnapshotError, `expected a SnapshotError, got ${String(e)}`);
    assert.equal(e.problem, problem, e.message);
    assert.match(e.message, new RegExp(`^cost calibration snapshot refused \\(${problem}\\): `));
    assert.match(e.message, pattern);
    return true;
  });
}

/** Re-signs a tampered header so only the intended check can fail. */
function signed(fields: Record<string, unknown>): Buffer {
  const { sha256: _, ...rest } = fields;
  const sha = createHash('sha256').update(canonicalJson(rest)).digest('hex');
  return Buffer.from(`${canonicalJson({ ...rest, sha256: sha })}\n`, 'ascii');
}

const parse = (b: Buffer) => JSON.parse(b.toString('ascii')) as Record<string, unknown>;

test('canonical JSON is Python\'s json.dumps(sort_keys=True, separators=(",", ":")): same text, same sha256', () => {
  const text = canonicalJson({ b: [1, 2.5, 'é'], a: { z: null, y: true } });
  // python3 -c 'import json,hashlib; s=json.dumps({"b":[1,2.5,"é"],"a":{"z":None,"y":True}},sort_keys=True,separators=(",",":")); print(s, hashlib.sha256(s.encode()).hexdigest())'
  assert.equal(text, '{"a":{"y":true,"z":null},"b":[1,2.5,"\\u00e9"]}');
  assert.equal(createHash('sha256').update(text).digest('hex'), '684ec93f3e43bf14cf9a574c49babee40bafb474f1349e0c8ae14085ef71d8d1');
  assert.throws(() => canonicalJson({ x: NaN }), /NaN has no JSON form/);
  assert.throws(() => canonicalJson({ x: undefined }), /undefined has no JSON form/);
});

test('snapshot round trip is bit-identical and gives the same state back', () => {
  const state = sampleState();
  const bytes = encodeSnapshot(state, CREATED);
  const loaded = decodeSnapshot(bytes);
  assert.deepEqual(loaded.state, state);
  assert.deepEqual([loaded.createdAt, loaded.version, loaded.instrumentCount], [CREATED, 1, 3]);
  assert.ok(encodeSnapshot(loaded.state, loaded.createdAt).equals(bytes));
  assert.ok(bytes.every((b) => b < 0x80), 'ASCII only');
  const header = parse(bytes);
  assert.deepEqual(Object.keys(header), ['created_at', 'instrument_count', 'kind', 'payload', 'sha256', 'version']);
  assert.deepEqual([header.created_at, header.instrument_count, header.kind, header.version], ['2026-11-13T12:00:00.123Z', 3, 'cost_calib', 1]);
});

test('the same state gives the same bytes whatever order the instruments were added in', () => {
  assert.ok(encodeSnapshot(sampleState(['EUR_GBP', 'USD_JPY', 'EUR_USD']), CREATED).equals(encodeSnapshot(sampleState(), CREATED)));
});

test('sha256 is of the canonical JSON of every field but sha256 itself', () => {
  const bytes = encodeSnapshot(sampleState(), CREATED);
  const { sha256, ...rest } = parse(bytes);
  assert.equal(sha256, createHash('sha256').update(canonicalJson(rest)).digest('hex'));
});

test('a corrupt byte anywhere in the content is refused as bad_checksum, with both hashes and the fix', () => {
  const bytes = encodeSnapshot(sampleState(), CREATED);
  const text = bytes.toString('ascii');
  const positions = [text.indexOf('"fills":') + 8, text.indexOf('2026-11-13T12'), text.indexOf('USD_JPY-1')];
  for (const at of positions) {
    const bad = Buffer.from(bytes);
    bad[at] = bad[at] === 0x31 ? 0x32 : 0x31; // another digit: still valid JSON
    refused(() => decodeSnapshot(bad), 'bad_checksum', /header says sha256 [0-9a-f]{64} but the content hashes to [0-9a-f]{64}.*restore the previous snapshot/);
  }
  const badSha = Buffer.from(text.replace(/"sha256":"(.)/, (_, c: string) => `"sha256":"${c === 'a' ? 'b' : 'a'}`), 'ascii');
  refused(() => decodeSnapshot(badSha), 'bad_checksum', /corrupted or edited by hand/);
});

test('a non-ASCII byte is refused as non_ascii with its offset', () => {
  const bad = Buffer.from(encodeSnapshot(sampleState(), CREATED));
  bad[100] = 0xc3;
  refused(() => decodeSnapshot(bad), 'non_ascii', /byte 0xc3 at offset 100 is not ASCII/);
});

test('a truncated file is refused as invalid_structure ("truncated or corrupt"), even when only the final newline is lost', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'calib-'));
  try {
    const file = path.join(dir, 'cost_calib.json');
    await writeSnapshotFile(file, sampleState(), CREATED);
    const size = (await readFile(file)).length;
    await truncate(file, Math.floor(size / 2));
    await assert.rejects(readSnapshotFile(file), (e: unknown) => e instanceof SnapshotError && e.problem === 'invalid_structure' && /not valid JSON \(.*\): the file is truncated or corrupt/.test(e.message));
    const whole = encodeSnapshot(sampleState(), CREATED);
    refused(() => decodeSnapshot(whole.subarray(0, whole.length - 1)), 'invalid_structure', /not in canonical form .*final newline/);
    refused(() => decodeSnapshot(Buffer.alloc(0)), 'invalid_structure', /truncated or corrupt/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('another version is refused as unsupported_version, naming both versions', () => {
  const h = parse(encodeSnapshot(sampleState(), CREATED));
  refused(() => decodeSnapshot(signed({ ...h, version: 2 })), 'unsupported_version', /version 2, but this build reads version 1; load it with the build that wrote it/);
  refused(() => decodeSnapshot(signed({ ...h, version: '1' })), 'invalid_structure', /version "1" is not an integer/);
});

test('another component\'s snapshot is refused as wrong_kind', () => {
  const h = parse(encodeSnapshot(sampleState(), CREATED));
  refused(() => decodeSnapshot(signed({ ...h, kind: 'allocator' })), 'wrong_kind', /kind "allocator" is not "cost_calib".*check the path/);
  // The seed's own example snapshot (payload + sha256 + version only): the header is incomplete.
  const seed = Buffer.from('{"payload":{"version":1,"hwm_equity_usd":123.0},"sha256":"a3b","version":1}\n', 'ascii');
  refused(() => decodeSnapshot(seed), 'invalid_structure', /the header misses "created_at"/);
});

test('a well-signed but wrong payload is refused as invalid_payload, naming the field', () => {
  const h = parse(encodeSnapshot(sampleState(), CREATED));
  const payload = h.payload as Record<string, Record<string, unknown>>;
  refused(() => decodeSnapshot(signed({ ...h, instrument_count: 2 })), 'invalid_payload', /instrument_count is 2 but the payload holds 3 instruments/);
  const broken = { ...payload, EUR_USD: { ...payload.EUR_USD, counts: { ...(payload.EUR_USD!.counts as object), fills: -1 } } };
  refused(() => decodeSnapshot(signed({ ...h, payload: broken })), 'invalid_payload', /payload\.EUR_USD counts\.fills must be a whole number ≥ 0/);
  refused(() => decodeSnapshot(signed({ ...h, payload: { eurusd: payload.EUR_USD }, instrument_count: 1 })), 'invalid_payload', /"eurusd" is not an instrument name/);
});

test('a snapshot is canonical or refused: reformatted JSON with a valid checksum does not load', () => {
  const bytes = encodeSnapshot(sampleState(), CREATED);
  const indented = JSON.stringify(parse(bytes), null, 2).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const pretty = Buffer.from(indented, 'ascii');
  refused(() => decodeSnapshot(pretty), 'invalid_structure', /not in canonical form/);
});

test('size limit: the loader refuses a file over COST_SNAPSHOT_MAX_BYTES, and the writer will not write one', async () => {
  const bytes = encodeSnapshot(sampleState(), CREATED);
  refused(() => decodeSnapshot(bytes, { maxBytes: bytes.length - 1 }), 'file_too_large', new RegExp(`${bytes.length} bytes, over COST_SNAPSHOT_MAX_BYTES=${bytes.length - 1}; if the file is genuine, raise COST_SNAPSHOT_MAX_BYTES`));
  assert.equal(decodeSnapshot(bytes, { maxBytes: bytes.length }).instrumentCount, 3);
  refused(() => encodeSnapshot(sampleState(), CREATED, { maxBytes: 1024 }), 'file_too_large', /raise COST_SNAPSHOT_MAX_BYTES or lower COST_DEDUP_CAPACITY/);
  const dir = await mkdtemp(path.join(tmpdir(), 'calib-'));
  try {
    const file = path.join(dir, 'big.json');
    await writeFile(file, Buffer.alloc(2048, 0x20));
    await assert.rejects(readSnapshotFile(file, { maxBytes: 1024 }), (e: unknown) => e instanceof SnapshotError && e.problem === 'file_too_large');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the writer refuses a state the loader would refuse (a NaN, a bad instrument name)', () => {
  const state = sampleState();
  refused(() => encodeSnapshot({ ...state, EUR_USD: { ...state.EUR_USD!, slippage: { mean: NaN, oldWeight: 1 } } }, CREATED), 'invalid_payload', /payload\.EUR_USD slippage: mean must be a finite number/);
  refused(() => encodeSnapshot({ 'EUR/USD': state.EUR_USD! }, CREATED), 'invalid_payload', /"EUR\/USD" is not an instrument name/);
});

test('writeSnapshotFile replaces the file atomically and leaves no temporary file; an empty state round-trips too', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'calib-'));
  try {
    const file = path.join(dir, 'cost_calib.json');
    await writeSnapshotFile(file, {}, CREATED);
    await writeSnapshotFile(file, sampleState(), CREATED);
    assert.deepEqual(await readdir(dir), ['cost_calib.json']);
    assert.ok((await readFile(file)).equals(encodeSnapshot(sampleState(), CREATED)));
    assert.deepEqual((await readSnapshotFile(file)).state, sampleState());
    assert.deepEqual(decodeSnapshot(encodeSnapshot({}, CREATED)).state, {});
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
