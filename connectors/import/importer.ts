/**
 * `sep import`: recorded-day files (NDJSON or CSV, optionally .gz) into the
 * input topics with their original timestamps (the Kafka record timestamp is
 * the record's event time). Every line is validated; a bad line is reported
 * with file and line, counted, and published to dlq.v1 with its bytes — the
 * valid rest is imported. Keys are the instrument, so per-instrument order is
 * the file's order.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { InputError, UsageError, type RejectReason } from '../../streams/runtime/errors.ts';
import { deadLetterOf, DLQ_TOPIC } from '../../streams/runtime/dead-letter.ts';
import { importRecords } from '../../streams/runtime/metrics.ts';
import { TOPICS } from '../../streams/runtime/topics.ts';
import type { AvroSerde } from '../../streams/runtime/serde.ts';
import type { Message, Producer } from '../../streams/runtime/kafka.ts';
import { FIELDS, validateRecord, type RecordKind } from '../../streams/model/records.ts';
import type { InstrumentCatalog } from '../../streams/model/instruments.ts';
import { countLines, formatOf, readRawLines } from './read-lines.ts';
import { Progress } from '../progress.ts';

export const KIND_TOPIC: Record<RecordKind, string> = {
  candles: TOPICS.candles.name,
  ticks: TOPICS.ticks.name,
  orders: TOPICS.orders.name,
  fills: TOPICS.fills.name,
};

export interface Rejection {
  file: string;
  line: number;
  reason: RejectReason;
  field: string | undefined;
  message: string;
}

export interface FileReport {
  file: string;
  kind: RecordKind;
  topic: string;
  lines: number;
  imported: number;
  rejected: number;
  byReason: Partial<Record<RejectReason, number>>;
  /** The first rejections in line order (all are in dlq.v1). */
  rejections: Rejection[];
  /** Set when the whole file could not be read (e.g. an unknown CSV column). */
  fileError?: string;
  firstTs?: number;
  lastTs?: number;
}

export interface ImportDeps {
  producer: Producer;
  serde: AvroSerde;
  catalog: InstrumentCatalog;
}

export interface ImportOptions {
  /** Force the record kind instead of reading it from the file name. */
  kind?: RecordKind;
  /** Messages per produce request (default 2000). */
  batchSize?: number;
  /** Rejections kept in the report per file (default 50); all go to dlq.v1. */
  maxReported?: number;
}

/** Expands directories and checks every path before anything is produced. */
export function resolveImportFiles(paths: readonly string[], forcedKind?: RecordKind): { file: string; kind: RecordKind }[] {
  if (paths.length === 0) throw new UsageError('sep import needs at least one file or directory, e.g. sep import data/recorded/2026-11-13');
  const out: { file: string; kind: RecordKind }[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new UsageError(`${p}: no such file or directory`);
    }
    const files = st.isDirectory() ? readdirSync(p).sort().map((f) => path.join(p, f)).filter((f) => formatOf(f) && kindOf(f)) : [p];
    if (st.isDirectory() && files.length === 0) throw new UsageError(`${p}: no candles/ticks/orders/fills .ndjson/.csv files in this directory`);
    for (const file of files) {
      if (!formatOf(file)) throw new UsageError(`${file}: unknown file type; use .ndjson, .jsonl or .csv (optionally .gz)`);
      const kind = forcedKind ?? kindOf(file);
      if (!kind) throw new UsageError(`${file}: cannot tell the record kind from the name; name it candles*/ticks*/orders*/fills* or pass --kind`);
      out.push({ file, kind });
    }
  }
  return out;
}

export function kindOf(file: string): RecordKind | undefined {
  const base = path.basename(file).toLowerCase();
  return (['candles', 'ticks', 'orders', 'fills'] as const).find((k) => base.startsWith(k));
}

export async function importFile(deps: ImportDeps, file: string, kind: RecordKind, opts: ImportOptions = {}): Promise<FileReport> {
  const topic = KIND_TOPIC[kind];
  const batchSize = opts.batchSize ?? 2000;
  const maxReported = opts.maxReported ?? 50;
  const report: FileReport = { file, kind, topic, lines: 0, imported: 0, rejected: 0, byReason: {}, rejections: [] };
  const progress = new Progress(`import ${path.basename(file)}`, await countLines(file));
  const startedAt = Date.now();
  let batch: Message[] = [];
  let dead: Message[] = [];
  const flush = async () => {
    const topicMessages = [];
    if (batch.length) topicMessages.push({ topic, messages: batch });
    if (dead.length) topicMessages.push({ topic: DLQ_TOPIC, messages: dead });
    if (topicMessages.length) await deps.producer.sendBatch({ topicMessages, acks: -1 });
    progress.add(batch.length + dead.length);
    batch = [];
    dead = [];
  };

  const reject = (line: number, text: string, err: InputError, ts: number) => {
    report.rejected++;
    report.byReason[err.reason] = (report.byReason[err.reason] ?? 0) + 1;
    importRecords.inc({ kind, outcome: err.reason });
    if (report.rejections.length < maxReported) report.rejections.push({ file, line, reason: err.reason, field: err.field, message: err.message });
    const letter = deadLetterOf(err, { topic, file, line, value: Buffer.from(text), ts });
    dead.push({ key: topic, value: deps.serde.encode(DLQ_TOPIC, letter), timestamp: String(ts) });
  };

  try {
    for await (const entry of readRawLines(file, formatOf(file)!, Object.keys(FIELDS[kind]))) {
      report.lines++;
      if ('error' in entry) {
        reject(entry.line, entry.text, entry.error, startedAt);
      } else {
        try {
          const record = validateRecord(kind, entry.raw, deps.catalog);
          batch.push({ key: record.instrument, value: deps.serde.encode(topic, record), timestamp: String(record.ts) });
          report.imported++;
          importRecords.inc({ kind, outcome: 'imported' });
          report.firstTs = Math.min(report.firstTs ?? record.ts, record.ts);
          report.lastTs = Math.max(report.lastTs ?? record.ts, record.ts);
        } catch (err) {
          if (!(err instanceof InputError)) throw err;
          reject(entry.line, entry.text, err, startedAt);
        }
      }
      if (batch.length + dead.length >= batchSize) await flush();
    }
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    report.fileError = err.message;
  }
  await flush();
  progress.finish();
  return report;
}

export function formatReport(r: FileReport): string {
  const lines = [`${r.file}: ${r.kind} → ${r.topic}: ${r.imported} imported, ${r.rejected} rejected of ${r.lines} lines`];
  if (r.fileError) lines.push(`  file not imported: ${r.fileError}`);
  for (const [reason, n] of Object.entries(r.byReason)) lines.push(`  ${reason}: ${n}`);
  for (const x of r.rejections) lines.push(`  ${x.file}:${x.line}: ${x.reason}: ${x.message}`);
  if (r.rejected > r.rejections.length) lines.push(`  … ${r.rejected - r.rejections.length} more in ${DLQ_TOPIC}`);
  return lines.join('\n');
}
