/**
 * `sep offline`: the pipeline's topologies over recorded-day files,
 * in-process (connectors/replay/offline.ts) — no broker, registry or
 * database. The knobs come from the environment exactly as for `sep run`.
 */
import path from 'node:path';
import { UsageError } from '../../streams/runtime/errors.ts';
import { resolveConfig } from '../../streams/runtime/config.ts';
import type { RecordKind } from '../../streams/model/records.ts';
import { DLQ_FILE, exitCodeOf, runOffline, SUMMARY_FILE } from '../../connectors/replay/offline.ts';
import { OUTPUT_FORMATS, type OutputFormat } from '../../connectors/replay/output.ts';
import { resolvePipelineConfig } from '../pipeline/run.ts';
import { SERVICE_CONFIG } from '../pipeline/services.ts';
import { runIdFlag, type Command } from './command.ts';

const log = (line: string) => console.log(line);
const KINDS: readonly RecordKind[] = ['candles', 'ticks', 'orders', 'fills'];

export const offlineCmd: Command = {
  usage: `usage: sep offline <file|dir>... --out DIR [--format ndjson|csv] [--kind K] [--run-id ID]
  Runs what \`sep run\` runs (features → rolling gates → gates blob → allocator-lite;
  fills + orders + ticks → markouts, cost calibration) over recorded-day files,
  in-process: no Kafka, registry, database or Redis. Files are read as \`sep import\`
  reads them (NDJSON/CSV, .gz; the kind from the name unless --kind); bad lines are
  reported with file:line and written to DIR/${DLQ_FILE}, the rest is processed.
  Knobs from the environment as for \`sep run\`; SEP_PARTITIONS (default 3) partitions.
  --out DIR        output directory (created when missing): <topic>.ndjson|.csv for
                   features.v1, gates.v1, gates.blob.v1, alloc.weights.v1, markout.v1,
                   calib.cost.v1 (every record; per topic by partition, then production
                   order), ${DLQ_FILE} and ${SUMMARY_FILE}
  --format F       ndjson (default) or csv (a header row; nested fields as JSON text)
  --kind K         candles, ticks, orders or fills for every file
  --run-id ID      recorded in ${SUMMARY_FILE} (default offline)
  Exit code 0 when every line was processed, 3 when some were rejected.`,
  options: { out: { type: 'string' }, format: { type: 'string' }, kind: { type: 'string' }, 'run-id': { type: 'string' } },
  positionals: true,
  async run(v, positionals) {
    if (v.out === undefined || v.out === '') throw new UsageError('--out DIR is required: give the directory for the output files, e.g. --out out/2026-11-13');
    if (v.format !== undefined && !OUTPUT_FORMATS.includes(String(v.format) as OutputFormat)) throw new UsageError(`--format ${JSON.stringify(v.format)}: use ndjson or csv`);
    if (v.kind !== undefined && !KINDS.includes(String(v.kind) as RecordKind)) throw new UsageError(`--kind ${JSON.stringify(v.kind)}: use one of ${KINDS.join(', ')}`);
    const runId = runIdFlag(v['run-id'], 'offline');
    // Knobs first, as `sep run` does: a bad one stops here, naming the knob and its range.
    const config = resolvePipelineConfig();
    for (const w of config.warnings) log(`warning: ${w}`);
    const { SEP_PARTITIONS: partitions } = resolveConfig({ SEP_PARTITIONS: SERVICE_CONFIG.SEP_PARTITIONS });
    const outDir = String(v.out);
    const result = await runOffline({
      inputs: positionals, kind: v.kind as RecordKind | undefined, outDir, config, partitions, runId,
      format: (v.format ?? 'ndjson') as OutputFormat, log,
    });
    const s = result.summary;
    const rate = Math.round(s.input_records / Math.max(0.001, s.elapsed_ms / 1000));
    log(`offline ${s.run_id}: ${s.input_records.toLocaleString('en-US')} records from ${s.inputs.length} file(s) in ${(s.elapsed_ms / 1000).toFixed(1)} s (${rate.toLocaleString('en-US')} events/s), config ${s.config_hash.slice(0, 12)}, ${s.partitions} partitions`);
    for (const [topic, x] of Object.entries(s.outputs)) log(`  ${path.join(outDir, x.file)}: ${x.records.toLocaleString('en-US')} ${topic} records`);
    log(`  ${path.join(outDir, DLQ_FILE)}: ${s.dead_letters.records} dead letters (${s.rejected.lines} input lines rejected, ${s.rejected.stream} records dead-lettered by the stream runtime)`);
    log(`  ${path.join(outDir, SUMMARY_FILE)}`);
    return exitCodeOf(result);
  },
};
