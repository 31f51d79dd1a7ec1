/**
 * Writes a generated recorded day as NDJSON files (ticks gzipped), with a
 * manifest giving the seed, range, counts and checksums so a reader can check
 * that the committed data is what the generator makes.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import type { GenerateOptions, RecordedDay } from './recorded-day.ts';

export const GENERATOR_VERSION = 1;

function ndjson(records: readonly { ts: number }[]): string {
  return records.map((r) => JSON.stringify({ ...r, ts: new Date(r.ts).toISOString() })).join('\n') + '\n';
}

export function writeRecordedDay(dir: string, day: RecordedDay, opts: GenerateOptions): Record<string, { records: number; sha256: string }> {
  mkdirSync(dir, { recursive: true });
  const files: Record<string, { records: number; sha256: string }> = {};
  const put = (name: string, body: string, records: number, gzip = false) => {
    // mtime 0 in the gzip header keeps the .gz bytes reproducible.
    const bytes = gzip ? gzipSync(body, { level: 9 }) : Buffer.from(body);
    writeFileSync(path.join(dir, name), bytes);
    files[name] = { records, sha256: createHash('sha256').update(body).digest('hex') };
  };
  put('candles.ndjson', ndjson(day.candles), day.candles.length);
  put('ticks.ndjson.gz', ndjson(day.ticks), day.ticks.length, true);
  put('orders.ndjson', ndjson(day.orders), day.orders.length);
  put('fills.ndjson', ndjson(day.fills), day.fills.length);
  const manifest = {
    generator: 'src/generate/recorded-day.ts', version: GENERATOR_VERSION, seed: opts.seed,
    from: new Date(opts.from).toISOString(), to: new Date(opts.to).toISOString(),
    note: 'sha256 is of the uncompressed NDJSON text', files,
  };
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return files;
}
