import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { readRawLines, splitCsv, formatOf } from '../../../connectors/import/read-lines.ts';
import { InputError } from '../../../streams/runtime/errors.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sep-read-'));

async function collect(file: string, cols = ['a', 'b']) {
  const out = [];
  for await (const x of readRawLines(file, formatOf(file)!, cols)) out.push(x);
  return out;
}

test('CSV cells honour quotes and doubled quotes', () => {
  assert.deepEqual(splitCsv('a,"b,c","d""e",'), ['a', 'b,c', 'd"e', '']);
});

test('NDJSON: good lines parse, bad ones come back as errors with their line numbers', async () => {
  const f = path.join(dir, 'x.ndjson');
  writeFileSync(f, '{"a":1}\n\n{oops\n[1]\n{"b":2}\n');
  const lines = await collect(f);
  assert.deepEqual(lines.map((l) => [l.line, 'error' in l ? l.error.reason : 'ok']), [[1, 'ok'], [3, 'malformed'], [4, 'malformed'], [5, 'ok']]);
});

test('gzipped CSV with a short row reports it and reads the rest', async () => {
  const f = path.join(dir, 'x.csv.gz');
  writeFileSync(f, gzipSync('a,b\n1,2\n3\n4,5\n'));
  const lines = await collect(f);
  assert.deepEqual(lines.map((l) => ('raw' in l ? l.raw : l.error.reason)), [{ a: '1', b: '2' }, 'malformed', { a: '4', b: '5' }]);
});

test('an unknown CSV column fails the file at its header', async () => {
  const f = path.join(dir, 'y.csv');
  writeFileSync(f, 'a,venue\n1,2\n');
  await assert.rejects(collect(f), (err: unknown) => err instanceof InputError && err.reason === 'unknown_field' && /y\.csv:1: unknown column venue/.test(err.message));
});
