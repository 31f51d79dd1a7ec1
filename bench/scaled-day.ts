/**
 * The bundled recorded day scaled to more instruments, shared by the
 * benchmarks of issue 8 (bench/offline.ts, bench/replay.ts): every line
 * repeated once per copy with the instrument renamed (EUR_USD → EUR1_USD …),
 * so each copy has the same records in the same order; ticks gzipped like the
 * bundled day. 5 copies of its 10 instruments = 50 instruments, 1 198 555
 * events.
 */
import { createReadStream, createWriteStream, mkdtempSync } from 'node:fs';
import { createGunzip, createGzip } from 'node:zlib';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import os from 'node:os';
import path from 'node:path';

/** The bundled recorded day: 10 instruments, 239 711 events over 2026-11-13..16. */
export const DAY = path.resolve(import.meta.dirname, '..', 'data', 'recorded', '2026-11-13');
export const FILES = ['candles.ndjson', 'fills.ndjson', 'orders.ndjson', 'ticks.ndjson.gz'];

/** Copy `k`'s name of an instrument: copy 0 keeps it, copy 3 of EUR_USD is EUR3_USD (still AAA_BBB-like for SEP_INSTRUMENTS). */
export const renamed = (name: string, k: number) => (k === 0 ? name : name.replace('_', `${k}_`));

/**
 * The bundled day with every line repeated `copies` times, instrument renamed,
 * in a new temporary directory `<tmp>/<prefix>…` (the caller removes it).
 */
export async function scaledDay(copies: number, prefix = 'sep-bench-offline-in-'): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  for (const file of FILES) {
    const gz = file.endsWith('.gz');
    const input = gz ? createReadStream(path.join(DAY, file)).pipe(createGunzip()) : createReadStream(path.join(DAY, file));
    async function* lines() {
      for await (const line of createInterface({ input, crlfDelay: Infinity })) {
        if (!line.trim()) continue;
        const instrument = (JSON.parse(line) as { instrument: string }).instrument;
        let chunk = '';
        for (let k = 0; k < copies; k++) chunk += `${line.replaceAll(instrument, renamed(instrument, k))}\n`;
        yield chunk;
      }
    }
    const out = createWriteStream(path.join(dir, file));
    await (gz ? pipeline(Readable.from(lines()), createGzip(), out) : pipeline(Readable.from(lines()), out));
  }
  return dir;
}
