/**
 * The offline mode's output files: one record per line, NDJSON (the value as
 * the processor produced it, JSON.stringify) or CSV (RFC 4180, a header of the
 * topic's Avro field names; nested fields as JSON text, null as an empty
 * cell). Each file is written next to its final name and renamed when
 * complete, so a file under its final name is always whole.
 */
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { loadSchema, type TopicSpec } from '../../streams/runtime/topics.ts';

export type OutputFormat = 'ndjson' | 'csv';

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['ndjson', 'csv'];

/** Bytes buffered before a write (1 MiB). */
const CHUNK_BYTES = 1 << 20;

/** A file written in chunks to `<file>.tmp`, renamed to `<file>` by `close()`. */
export class LineFile {
  private readonly fd: number;
  private buffered: string[] = [];
  private bufferedBytes = 0;
  lines = 0;

  constructor(readonly file: string) {
    this.fd = openSync(`${file}.tmp`, 'w');
  }

  write(line: string): void {
    this.buffered.push(line, '\n');
    this.bufferedBytes += line.length + 1;
    this.lines++;
    if (this.bufferedBytes >= CHUNK_BYTES) this.flush();
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
    renameSync(`${this.file}.tmp`, this.file);
  }

  private flush(): void {
    if (this.buffered.length === 0) return;
    writeSync(this.fd, this.buffered.join(''));
    this.buffered = [];
    this.bufferedBytes = 0;
  }
}

/** The top-level field names of a topic's Avro schema, in schema order: the CSV columns. */
export function schemaColumns(spec: TopicSpec): string[] {
  const schema = JSON.parse(loadSchema(spec)) as { fields: { name: string }[] };
  return schema.fields.map((f) => f.name);
}

/**
 * Writes the records of one topic in `format`. CSV columns are the schema's
 * fields (what the Kafka path can carry); a value with a field outside them
 * is refused rather than silently dropped from the row.
 */
export class RecordWriter {
  private readonly out: LineFile;

  constructor(file: string, private readonly format: OutputFormat, private readonly columns: readonly string[]) {
    this.out = new LineFile(file);
    if (format === 'csv') this.out.write(columns.map(csvCell).join(','));
  }

  write(value: unknown): void {
    if (this.format === 'ndjson') {
      this.out.write(JSON.stringify(value));
      return;
    }
    const record = value as Record<string, unknown>;
    for (const k of Object.keys(record)) {
      if (!this.columns.includes(k)) throw new Error(`${this.out.file}: field ${k} is not in the topic's schema (columns ${this.columns.join(', ')}); write NDJSON or add the field to the schema`);
    }
    this.out.write(this.columns.map((c) => csvCell(record[c])).join(','));
  }

  /** Records written (the CSV header is not one). */
  get records(): number {
    return this.out.lines - (this.format === 'csv' ? 1 : 0);
  }

  close(): void {
    this.out.close();
  }
}

/** One CSV cell: null/undefined empty, objects and arrays as JSON text, quoted when it holds a comma, quote or line break. */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  if (text === undefined || text === 'null') return '';
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
