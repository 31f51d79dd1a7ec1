/**
 * Offline mode (DESIGN §8, issue 8): the topologies `sep run` runs, over
 * recorded-day files, in-process through the runtime's TopologyTestDriver —
 * no broker, registry or database. Its outputs equal the Kafka path's
 * (test/integration/offline.test.ts checks it record for record) because
 * every step is the one the Kafka path takes:
 *
 * 1. Files are read and validated line by line as `sep import` does
 *    (readRawLines + validateRecord); a bad line is reported with file:line
 *    and written to dlq.ndjson, the valid rest goes on.
 * 2. Records are piped keyed by instrument, so the driver partitions them
 *    with Kafka's murmur2 partitioner over `partitions` (SEP_PARTITIONS) and
 *    each partition's task merges its source topics by timestamp, as the
 *    live tasks do over topics read to their end.
 * 3. pipelineTopology (features → rolling gates, markouts, cost
 *    calibration) runs; its gates.partial.v1 outputs feed gatesBlobTopology
 *    (blob stage + allocator-lite) on one partition, as the blob app
 *    consumes the single-partition internal topic. The allocator's live
 *    inputs are absent, as in any replay: the Redis kill switch and margin
 *    (KILL_SWITCH still applies), and alloc.overlay.v1, which `sep overlays`
 *    computes from the database — decisions are those of a Kafka run whose
 *    overlay topic is empty.
 *
 * Every record of every output topic is written (no compaction), per topic
 * ordered by output partition (the key's murmur2 partition; the blob and
 * allocation topics have one), then production order — the order a consumer
 * reading partition by partition sees. Everything but summary.json's
 * `elapsed_ms` is a function of the input files, the knobs and the partition
 * count: the same run twice gives byte-identical files.
 */
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { InputError, UsageError, type RejectReason } from '../../streams/runtime/errors.ts';
import { partitionForKey } from '../../streams/runtime/kafka.ts';
import { TopologyTestDriver } from '../../streams/runtime/test-driver.ts';
import type { OutputRecord } from '../../streams/runtime/task.ts';
import type { Topology } from '../../streams/runtime/topology.ts';
import { TOPICS, TOPIC_PREFIX, type TopicSpec } from '../../streams/runtime/topics.ts';
import { FIELDS, validateRecord, type RecordKind } from '../../streams/model/records.ts';
import type { InstrumentCatalog } from '../../streams/model/instruments.ts';
import { fingerprintedKnobs, pipelineTopology, type PipelineKnobs } from '../../streams/execution/topology.ts';
import { gatesBlobTopology } from '../../streams/gates/blob-processor.ts';
import { KIND_TOPIC, resolveImportFiles, type FileReport } from '../import/importer.ts';
import { countLines, formatOf, readRawLines } from '../import/read-lines.ts';
import { configFingerprint } from '../sink/runs.ts';
import { Progress } from '../progress.ts';
import { LineFile, RecordWriter, schemaColumns, type OutputFormat } from './output.ts';

/** The processor knobs, as `resolvePipelineConfig()` (src/pipeline/run.ts) resolves them for `sep run`. */
export type OfflineConfig = PipelineKnobs;

export interface OfflineOptions {
  /** Files or directories, as `sep import` takes them (.ndjson/.jsonl/.csv, optionally .gz). */
  inputs: readonly string[];
  /** Force the record kind instead of reading it from the file names. */
  kind?: RecordKind;
  /** Output directory; created when missing, its files of the same names replaced. */
  outDir: string;
  config: OfflineConfig;
  /** Output file format (default ndjson); dlq.ndjson and summary.json are always JSON. */
  format?: OutputFormat;
  /** Recorded in summary.json (default "offline"). */
  runId?: string;
  /** Partitions of the keyed topics, as SEP_PARTITIONS gives them to `sep run` (default 3). */
  partitions?: number;
  /** Per-file reports as they finish (default: none). */
  log?: (line: string) => void;
  /** Where progress is drawn when it is a TTY and CI is unset (default stderr). */
  progressStream?: NodeJS.WriteStream;
  /** Rejections listed per file in the report (default 50; all are in dlq.ndjson). */
  maxReported?: number;
}

/** The output topics written, in the order of summary.json. */
export const OFFLINE_OUTPUTS: readonly TopicSpec[] = [TOPICS.features, TOPICS.gates, TOPICS.gatesBlob, TOPICS.allocations, TOPICS.markouts, TOPICS.costCalibration];

export const DLQ_FILE = 'dlq.ndjson';
export const SUMMARY_FILE = 'summary.json';

export interface InputSummary {
  file: string;
  kind: RecordKind;
  topic: string;
  lines: number;
  records: number;
  rejected: number;
  by_reason: Partial<Record<RejectReason, number>>;
  first_ts: number | null;
  last_ts: number | null;
  file_error: string | null;
}

export interface OfflineSummary {
  run_id: string;
  mode: 'offline';
  /** sha256 of the resolved configuration, as `sep run` records it in runs.config_hash. */
  config_hash: string;
  partitions: number;
  format: OutputFormat;
  inputs: InputSummary[];
  /** Valid input records piped into the topology. */
  input_records: number;
  rejected: {
    /** Input lines refused by validation (the exit code 3 of `sep offline` and `sep import`). */
    lines: number;
    lines_by_reason: Partial<Record<RejectReason, number>>;
    /** Records the stream runtime dead-lettered (late beyond the grace period), as `sep run` sends them to dlq.v1. */
    stream: number;
    stream_by_reason: Partial<Record<RejectReason, number>>;
  };
  outputs: Record<string, { file: string; records: number; by_partition: number[] }>;
  dead_letters: { file: string; records: number };
  elapsed_ms: number;
}

export interface OfflineResult {
  summary: OfflineSummary;
  /** Per input file, in the shape `sep import` reports (`formatOfflineReport`). */
  reports: FileReport[];
  /** Wall time of each phase, ms: reading + validating, the topologies, writing. */
  timings: { readMs: number; processMs: number; writeMs: number };
}

/** What dlq.ndjson holds per line: the reason, what was wrong, and where the record came from. */
export interface OfflineDeadLetter {
  reason: RejectReason;
  field: string | null;
  message: string;
  source_topic: string;
  /** Set for an input line refused by validation. */
  source_file: string | null;
  source_line: number | null;
  /** Set for a record the stream runtime refused: its partition and offset as the Kafka path would number them. */
  source_partition: number | null;
  source_offset: number | null;
  key: string | null;
  /** The line's text, or the record as JSON. */
  value: string;
  /** The record's timestamp when the runtime refused it; null for a line (it may have none). */
  ts: number | null;
}

interface Piped { key: string; value: unknown; timestamp: number }

/** Records between two progress updates. */
const PROGRESS_EVERY = 1000;

/** The topic's name without SEP_TOPIC_PREFIX: the output file names and summary keys. */
export const baseTopic = (topic: string) => (TOPIC_PREFIX && topic.startsWith(TOPIC_PREFIX) ? topic.slice(TOPIC_PREFIX.length) : topic);

export async function runOffline(o: OfflineOptions): Promise<OfflineResult> {
  const started = Date.now();
  if (o.inputs.length === 0) throw new UsageError('sep offline needs at least one file or directory, e.g. sep offline data/recorded/2026-11-13 --out out/2026-11-13');
  const files = resolveImportFiles(o.inputs, o.kind);
  const format = o.format ?? 'ndjson';
  const partitions = o.partitions ?? 3;
  const maxReported = o.maxReported ?? 50;
  prepareOutDir(o.outDir);
  const { catalog, params, gates, markout, calibration, allocator } = o.config;
  // The object `sep run` fingerprints into runs.config_hash (src/pipeline/run.ts): equal knobs, equal hash.
  const { hash: configHash } = configFingerprint(fingerprintedKnobs(o.config));

  const topology = pipelineTopology(catalog, { params, gates, markout, calibration });
  let progress: Progress | undefined;
  let processed = 0;
  observeSources(topology, () => {
    if (++processed % PROGRESS_EVERY === 0) progress?.add(PROGRESS_EVERY);
  });
  const driver = new TopologyTestDriver(topology, { partitions });
  const partitionOfKey = new Map<string, number>();
  const partitionOf = (key: string) => {
    let p = partitionOfKey.get(key);
    if (p === undefined) partitionOfKey.set(key, (p = partitionForKey(key, partitions)));
    return p;
  };
  /** Piped records per `${topic}/${partition}`, by offset: what a dead letter of the runtime names. */
  const piped = new Map<string, Piped[]>();
  const dead: OfflineDeadLetter[] = [];
  const reports: FileReport[] = [];

  // 1. Read and validate; valid records wait in the driver's per-partition timestamp merge.
  for (const { file, kind } of files) {
    const report = await readFile(file, kind, catalog, maxReported, o.progressStream, (topic, record) => {
      const p = `${topic}/${partitionOf(record.instrument)}`;
      const list = piped.get(p) ?? [];
      list.push({ key: record.instrument, value: record, timestamp: record.ts });
      piped.set(p, list);
      driver.pipeInput(topic, record.instrument, record, record.ts);
    }, (letter) => dead.push(letter));
    reports.push(report);
    o.log?.(formatOfflineReport(report, path.join(o.outDir, DLQ_FILE)));
  }
  const readDone = Date.now();

  // 2. The signal + execution app, then the blob stage + allocator over its partials.
  const inputRecords = reports.reduce((n, r) => n + r.imported, 0);
  progress = new Progress('offline run', inputRecords, o.progressStream);
  driver.flush();
  progress.add(inputRecords - processed + (processed % PROGRESS_EVERY));
  progress.finish();
  const expectedPartitions = [...new Set(catalog.list().map((i) => partitionForKey(i, partitions)))].sort((a, b) => a - b);
  const blob = new TopologyTestDriver(gatesBlobTopology({ expectedPartitions, allocator: { config: allocator } }));
  // In time order (stable: each partition's partials are already in it), as they reach the live blob app
  // when the tasks keep pace. The blob for T depends only on the partials for T, and blobs complete in time
  // order whatever the arrival order; piped partition after partition instead, every partial would wait
  // for the last partition, and the blob stage's held-back scan would make the run quadratic in its length.
  const partials = [...driver.readOutput(TOPICS.gatesPartial.name)].sort((a, b) => a.timestamp - b.timestamp);
  const partialsPiped: Piped[] = [];
  for (const r of partials) {
    partialsPiped.push({ key: r.key, value: r.value, timestamp: r.timestamp });
    blob.pipeInput(TOPICS.gatesPartial.name, r.key, r.value, r.timestamp);
  }
  piped.set(`${TOPICS.gatesPartial.name}/0`, partialsPiped);
  for (const d of [driver, blob]) {
    for (const r of d.rejections) {
      const source = piped.get(`${r.topic}/${r.partition}`)?.[r.offset];
      dead.push({
        reason: r.error.reason, field: r.error instanceof InputError ? r.error.field ?? null : null, message: r.error.message,
        source_topic: baseTopic(r.topic), source_file: null, source_line: null, source_partition: r.partition, source_offset: r.offset,
        key: source?.key ?? null, value: JSON.stringify(source?.value ?? null), ts: source?.timestamp ?? null,
      });
    }
  }
  const streamRejected = driver.rejections.length + blob.rejections.length;
  const processDone = Date.now();

  // 3. Every output topic, then the dead letters, then the summary (last: its presence marks a finished run).
  const outputs: OfflineSummary['outputs'] = {};
  for (const spec of OFFLINE_OUTPUTS) {
    const records = (spec === TOPICS.gatesBlob || spec === TOPICS.allocations ? blob : driver).readOutput(spec.name);
    const topicPartitions = spec.partitions ?? partitions;
    const name = baseTopic(spec.name);
    const file = `${name}.${format}`;
    const writer = new RecordWriter(path.join(o.outDir, file), format, schemaColumns(spec));
    const byPartition = Array.from({ length: topicPartitions }, () => 0);
    for (const r of byOutputPartition(records, topicPartitions)) {
      writer.write(r.record.value);
      byPartition[r.partition]!++;
    }
    writer.close();
    outputs[name] = { file, records: writer.records, by_partition: byPartition };
  }
  const dlq = new LineFile(path.join(o.outDir, DLQ_FILE));
  for (const letter of dead) dlq.write(JSON.stringify(letter));
  dlq.close();
  driver.close();
  blob.close();

  const count = (xs: { reason: RejectReason }[]) => {
    const out: Partial<Record<RejectReason, number>> = {};
    for (const x of xs) out[x.reason] = (out[x.reason] ?? 0) + 1;
    return out;
  };
  const writeDone = Date.now();
  const summary: OfflineSummary = {
    run_id: o.runId ?? 'offline',
    mode: 'offline',
    config_hash: configHash,
    partitions,
    format,
    inputs: reports.map((r) => ({
      file: r.file, kind: r.kind, topic: baseTopic(r.topic), lines: r.lines, records: r.imported, rejected: r.rejected, by_reason: r.byReason,
      first_ts: r.firstTs ?? null, last_ts: r.lastTs ?? null, file_error: r.fileError ?? null,
    })),
    input_records: inputRecords,
    rejected: {
      lines: reports.reduce((n, r) => n + r.rejected, 0),
      lines_by_reason: count(dead.filter((d) => d.source_file !== null)),
      stream: streamRejected,
      stream_by_reason: count(dead.filter((d) => d.source_file === null)),
    },
    outputs,
    dead_letters: { file: DLQ_FILE, records: dead.length },
    elapsed_ms: writeDone - started,
  };
  const summaryFile = new LineFile(path.join(o.outDir, SUMMARY_FILE));
  summaryFile.write(JSON.stringify(summary, null, 2));
  summaryFile.close();
  return { summary, reports, timings: { readMs: readDone - started, processMs: processDone - readDone, writeMs: writeDone - processDone } };
}

/** The exit code `sep import` would give for these reports: 3 when a line or a file was refused, else 0. */
export function exitCodeOf(result: Pick<OfflineResult, 'reports'>): 0 | 3 {
  return result.reports.some((r) => r.rejected > 0 || r.fileError) ? 3 : 0;
}

/** A file's report as `sep import` prints it (file:line: reason: field: message), the rest of the rejections pointing at dlq.ndjson. */
export function formatOfflineReport(r: FileReport, dlqFile: string): string {
  const lines = [`${r.file}: ${r.kind} → ${baseTopic(r.topic)}: ${r.imported} read, ${r.rejected} rejected of ${r.lines} lines`];
  if (r.fileError) lines.push(`  file not read: ${r.fileError}`);
  for (const [reason, n] of Object.entries(r.byReason)) lines.push(`  ${reason}: ${n}`);
  for (const x of r.rejections) lines.push(`  ${x.file}:${x.line}: ${x.reason}: ${x.message}`);
  if (r.rejected > r.rejections.length) lines.push(`  … ${r.rejected - r.rejections.length} more in ${dlqFile}`);
  return lines.join('\n');
}

type Validated = { instrument: string; ts: number };

/** One file through the importer's line reader and validation; valid records to `pipe`, refused lines to `reject`. */
async function readFile(
  file: string, kind: RecordKind, catalog: InstrumentCatalog, maxReported: number, progressStream: NodeJS.WriteStream | undefined,
  pipe: (topic: string, record: Validated) => void, reject: (letter: OfflineDeadLetter) => void,
): Promise<FileReport> {
  const topic = KIND_TOPIC[kind];
  const report: FileReport = { file, kind, topic, lines: 0, imported: 0, rejected: 0, byReason: {}, rejections: [] };
  const progress = new Progress(`offline read ${path.basename(file)}`, await countLines(file), progressStream);
  const refuse = (line: number, text: string, err: InputError) => {
    report.rejected++;
    report.byReason[err.reason] = (report.byReason[err.reason] ?? 0) + 1;
    if (report.rejections.length < maxReported) report.rejections.push({ file, line, reason: err.reason, field: err.field, message: err.message });
    reject({
      reason: err.reason, field: err.field ?? null, message: err.message, source_topic: baseTopic(topic), source_file: file, source_line: line,
      source_partition: null, source_offset: null, key: null, value: text, ts: null,
    });
  };
  let sinceDraw = 0;
  try {
    for await (const entry of readRawLines(file, formatOf(file)!, Object.keys(FIELDS[kind]))) {
      report.lines++;
      if (++sinceDraw === PROGRESS_EVERY) {
        progress.add(sinceDraw);
        sinceDraw = 0;
      }
      if ('error' in entry) {
        refuse(entry.line, entry.text, entry.error);
        continue;
      }
      let record: Validated;
      try {
        record = validateRecord(kind, entry.raw, catalog);
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        refuse(entry.line, entry.text, err);
        continue;
      }
      pipe(topic, record);
      report.imported++;
      report.firstTs = Math.min(report.firstTs ?? record.ts, record.ts);
      report.lastTs = Math.max(report.lastTs ?? record.ts, record.ts);
    }
  } catch (err) {
    // An unreadable file (e.g. an unknown CSV column) is reported, as `sep import` does; the other files go on.
    if (!(err instanceof InputError)) throw err;
    report.fileError = err.message;
  }
  progress.add(sinceDraw);
  progress.finish();
  return report;
}

/**
 * Calls `onRecord` for every record a source validates. The driver processes
 * all piped input in one synchronous flush (the timestamp merge needs every
 * topic read to its end); counting at the sources is how progress sees it
 * without changing the runtime. Records dead-lettered as late never reach
 * validation and are not counted.
 */
function observeSources(topology: Topology, onRecord: () => void): void {
  for (const source of topology.sources()) {
    const validate = source.validate;
    source.validate = (value) => {
      onRecord();
      return validate(value);
    };
  }
}

/** Records in output-partition order (Kafka's partitioner on the key), production order within a partition. */
function byOutputPartition(records: readonly OutputRecord[], partitions: number): { partition: number; record: OutputRecord }[] {
  const tagged = records.map((record) => ({ partition: partitionForKey(record.key, partitions), record }));
  // Array.prototype.sort is stable: production order is kept within a partition.
  return tagged.sort((a, b) => a.partition - b.partition);
}

function prepareOutDir(dir: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch {
    mkdirSync(dir, { recursive: true });
    return;
  }
  if (!st.isDirectory()) throw new UsageError(`--out ${dir} is a file: give a directory (it is created when missing)`);
}

