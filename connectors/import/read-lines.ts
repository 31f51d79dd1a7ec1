/**
 * Reads a recorded-day file line by line (plain or .gz) and turns each line
 * into a raw record: NDJSON objects, or CSV rows keyed by the header. Parse
 * failures are yielded as errors with their line number, never thrown, so
 * one bad line never stops an import.
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import readline from 'node:readline';
import { InputError } from '../../streams/runtime/errors.ts';

export type RawLine =
  | { line: number; text: string; raw: Record<string, unknown> }
  | { line: number; text: string; error: InputError };

export type FileFormat = 'ndjson' | 'csv';

/** Lines in a file (plain or .gz), read as raw bytes: a progress total. */
export async function countLines(file: string): Promise<number> {
  let n = 0;
  const input = createReadStream(file);
  const stream = file.endsWith('.gz') ? input.pipe(createGunzip()) : input;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++;
  }
  return n;
}


export function formatOf(file: string): FileFormat | undefined {
  const base = file.replace(/\.gz$/, '');
  if (/\.(ndjson|jsonl)$/i.test(base)) return 'ndjson';
  if (/\.csv$/i.test(base)) return 'csv';
  return undefined;
}

export async function* readRawLines(file: string, format: FileFormat, allowedColumns: readonly string[]): AsyncGenerator<RawLine> {
  const input = createReadStream(file);
  const rl = readline.createInterface({ input: file.endsWith('.gz') ? input.pipe(createGunzip()) : input, crlfDelay: Infinity });
  let header: string[] | undefined;
  let line = 0;
  for await (const text of rl) {
    line++;
    if (text.trim() === '') continue;
    if (format === 'ndjson') {
      yield parseJsonLine(line, text);
      continue;
    }
    if (header === undefined) {
      header = splitCsv(text).map((h) => h.trim());
      const unknown = header.filter((h) => !allowedColumns.includes(h));
      if (unknown.length > 0) {
        // Every row would be misread; fail the file at its header instead of rejecting each row.
        throw new InputError('unknown_field', unknown[0], `${file}:${line}: unknown column${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; expected columns from ${allowedColumns.join(', ')}`);
      }
      continue;
    }
    const cells = splitCsv(text);
    if (cells.length !== header.length) {
      yield { line, text, error: new InputError('malformed', undefined, `expected ${header.length} columns, got ${cells.length}`) };
      continue;
    }
    yield { line, text, raw: Object.fromEntries(header.map((h, i) => [h, cells[i]])) };
  }
}

function parseJsonLine(line: number, text: string): RawLine {
  try {
    const raw: unknown = JSON.parse(text);
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      return { line, text, error: new InputError('malformed', undefined, 'expected a JSON object per line') };
    }
    return { line, text, raw: raw as Record<string, unknown> };
  } catch (err) {
    return { line, text, error: new InputError('malformed', undefined, `not valid JSON (${(err as Error).message})`) };
  }
}

/** RFC 4180 cells: commas inside double quotes, "" for a quote. */
export function splitCsv(text: string): string[] {
  const cells: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { cur += '"'; i++; }
      else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') { cells.push(cur); cur = ''; }
    else cur += ch;
  }
  cells.push(cur);
  return cells;
}
