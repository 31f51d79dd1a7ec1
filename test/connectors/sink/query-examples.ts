/**
 * Prints the example answers in docs/timescale.md: the bundled recorded day
 * through the pipeline offline (features, gates, blob stage, markouts, cost
 * calibration; the test driver, no broker), every output written through the
 * sink's mappings into an in-process PGlite + TimescaleDB, the aggregates
 * refreshed, then each docs/queries/*.sql run and printed as a Markdown table.
 * Allocations come from a stand-in for allocator-lite (fixtures.ts
 * synthAllocations: Top-3 eligible by calmar at each evaluation) until the
 * allocator's offline path is settled.
 *
 *   node --import tsx test/connectors/sink/query-examples.ts [query.sql …]
 *
 * Gate knobs as in test/integration/gates.test.ts (6-hour spans, 5-minute
 * evaluations, a low coherence guard) so that gates flip on this random-walk
 * day; everything else at its defaults. Not a test: it takes ~20 s.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { migrate } from '../../../connectors/sink/migrate.ts';
import { TABLES } from '../../../connectors/sink/tables.ts';
import { TopologyTestDriver } from '../../../streams/runtime/test-driver.ts';
import { TOPICS } from '../../../streams/runtime/topics.ts';
import { partitionForKey } from '../../../streams/runtime/kafka.ts';
import { pipelineTopology } from '../../../streams/execution/topology.ts';
import { gatesBlobTopology } from '../../../streams/gates/blob-processor.ts';
import { resolvePipelineConfig } from '../../../src/pipeline/run.ts';
import { openTimescale } from './pglite.ts';
import { readRecords, synthAllocations, writeRecords } from './fixtures.ts';
import type { GateDecision } from '../../../streams/gates/evaluate.ts';

const KNOBS = {
  EVAL_INTERVAL_SEC: '300', GATES_BLOB_MAX_AGE_SEC: '900', GATES_SPAN_DAYS: '0.25', SPAN_MIN_BARS: '120', SPAN_MAX_MISSING_BARS: '30',
  GUARD_MIN_COHERENCE: '0.05', GATES_MIN_TRADES: '2', ECHO_MIN_REPETITIONS: '1', ECHO_HAZARD_MAX: '1',
};
const QUERIES = path.resolve(import.meta.dirname, '..', '..', '..', 'docs', 'queries');
const INPUTS = [[TOPICS.candles.name, 'candles.ndjson'], [TOPICS.ticks.name, 'ticks.ndjson.gz'], [TOPICS.fills.name, 'fills.ndjson'], [TOPICS.orders.name, 'orders.ndjson']] as const;

const t0 = Date.now();
const config = resolvePipelineConfig(KNOBS);
const signal = new TopologyTestDriver(pipelineTopology(config.catalog, config), { partitions: 3 });
const inputs = new Map<string, Record<string, unknown>[]>();
for (const [topic, file] of INPUTS) {
  const records = await readRecords(file);
  inputs.set(topic, records);
  // The source validates records as files carry them (ISO timestamps).
  for (const r of records) signal.pipeInput(topic, r.instrument as string, { ...r, ts: new Date(r.ts as number).toISOString() }, r.ts as number);
}
const expectedPartitions = [...new Set(config.catalog.list().map((i) => partitionForKey(i, 3)))];
const blob = new TopologyTestDriver(gatesBlobTopology({ expectedPartitions }));
for (const o of signal.readOutput(TOPICS.gatesPartial.name)) blob.pipeInput(TOPICS.gatesPartial.name, o.key, o.value, o.timestamp);

const t = await openTimescale();
await migrate(t.client);
const written: Record<string, number> = {};
const outputs = (d: TopologyTestDriver, topic: string) => d.readOutput(topic).map((o) => o.value);
for (const [topic, records] of [
  ...[...inputs].filter(([topic]) => topic !== TOPICS.ticks.name), // no view reads ticks; 211k rows cost time only
  [TOPICS.features.name, outputs(signal, TOPICS.features.name)],
  [TOPICS.gates.name, outputs(signal, TOPICS.gates.name)],
  [TOPICS.markouts.name, outputs(signal, TOPICS.markouts.name)],
  [TOPICS.costCalibration.name, outputs(signal, TOPICS.costCalibration.name)],
  [TOPICS.gatesBlob.name, outputs(blob, TOPICS.gatesBlob.name)],
  [TOPICS.allocations.name, synthAllocations(outputs(signal, TOPICS.gates.name) as GateDecision[])],
] as const) {
  const m = TABLES[topic]!;
  written[m.table] = await writeRecords(t, m, records);
}
await t.client.query('CALL refresh_aggregates()');
console.log(`<!-- rows: ${JSON.stringify(written)}; ${((Date.now() - t0) / 1000).toFixed(1)} s to load -->\n`);

const files = process.argv.length > 2 ? process.argv.slice(2).map((f) => path.basename(f)) : readdirSync(QUERIES).filter((f) => f.endsWith('.sql')).sort();
for (const f of files) {
  const sql = readFileSync(path.join(QUERIES, f), 'utf8');
  const started = Date.now();
  const rows = await t.rows<Record<string, unknown>>(sql);
  const ms = Date.now() - started;
  console.log(`### ${f} (${rows.length} rows, ${ms} ms)\n`);
  if (rows.length === 0) continue;
  const cols = Object.keys(rows[0]!);
  console.log(`| ${cols.join(' | ')} |\n|${cols.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${cols.map((c) => cell(r[c])).join(' | ')} |`);
  console.log();
}
await t.close();

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString().replace('T', ' ').replace(/:00\.000Z$/, 'Z').replace(/\.000Z$/, 'Z');
  if (Array.isArray(v)) return `{${v.join(',')}}`;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
