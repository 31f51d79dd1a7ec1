/**
 * The offline mode over a small slice of the bundled day (the first four
 * hours, 10 instruments; candles NDJSON, ticks gzipped NDJSON, orders CSV,
 * fills NDJSON) with the gates test's knobs, so gates flip and the allocator
 * sizes something. Bad lines are reported and dead-lettered while the rest
 * runs; outputs equal the topologies run by hand through the test driver (as
 * the integration tests' offline() do); two runs are byte-identical; CSV
 * parses back to the NDJSON values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { exitCodeOf, runOffline, OFFLINE_OUTPUTS, type OfflineDeadLetter, type OfflineSummary } from '../../../connectors/replay/offline.ts';
import { csvCell, schemaColumns } from '../../../connectors/replay/output.ts';
import { splitCsv } from '../../../connectors/import/read-lines.ts';
import { UsageError } from '../../../streams/runtime/errors.ts';
import { TopologyTestDriver } from '../../../streams/runtime/test-driver.ts';
import { TOPICS } from '../../../streams/runtime/topics.ts';
import { partitionForKey } from '../../../streams/runtime/kafka.ts';
import { validateRecord, type RecordKind } from '../../../streams/model/records.ts';
import { pipelineTopology } from '../../../streams/execution/topology.ts';
import { gatesBlobTopology } from '../../../streams/gates/blob-processor.ts';
import { resolvePipelineConfig } from '../../../src/pipeline/run.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
const DAY = path.join(ROOT, 'data/recorded/2026-11-13');
// test/integration/allocation.test.ts's knobs: 6-hour spans, 5-minute evaluations, a low coherence guard.
const KNOBS = {
  EVAL_INTERVAL_SEC: '300', GATES_BLOB_MAX_AGE_SEC: '900', GATES_SPAN_DAYS: '0.25', SPAN_MIN_BARS: '120', SPAN_MAX_MISSING_BARS: '30',
  GUARD_MIN_COHERENCE: '0.05', GATES_MIN_TRADES: '2', ECHO_MIN_REPETITIONS: '1', ECHO_HAZARD_MAX: '1',
  ALLOC_INTERVAL_SEC: '300',
};
const config = resolvePipelineConfig(KNOBS);
const UNTIL = Date.UTC(2026, 10, 13, 4);
const tmp = (name: string) => mkdtempSync(path.join(os.tmpdir(), `sep-offline-${name}-`));

const lines = (file: string) => (file.endsWith('.gz') ? gunzipSync(readFileSync(file)) : readFileSync(file)).toString('utf8').split('\n').filter(Boolean);
const slice = (file: string) => lines(path.join(DAY, file)).filter((l) => Date.parse((JSON.parse(l) as { ts: string }).ts) < UNTIL);

/** The fixture day: clean files, and the same with bad lines spliced in. */
function fixture(corrupt: boolean): string {
  const dir = tmp(corrupt ? 'bad-in' : 'in');
  const candles = slice('candles.ndjson');
  const ticks = slice('ticks.ndjson.gz');
  const orders = slice('orders.ndjson');
  const fills = slice('fills.ndjson');
  if (corrupt) {
    candles.splice(4, 0, '{"instrument":"EUR_USD","ts":"2026-11-13T00:01:00Z","open":1.1'); // line 5: cut off
    fills.splice(9, 0, fills[9]!.replace(/"instrument":"[A-Z_]+"/, '"instrument":"XAU_USD"')); // line 10: not in the catalog
    // A valid tick a minute behind its instrument's stream time: the runtime dead-letters it as late.
    const prev = JSON.parse(ticks[999]!) as { ts: string };
    ticks.splice(1000, 0, JSON.stringify({ ...prev, ts: new Date(Date.parse(prev.ts) - 60_000).toISOString() }));
  }
  writeFileSync(path.join(dir, 'candles.ndjson'), `${candles.join('\n')}\n`);
  writeFileSync(path.join(dir, 'ticks.ndjson.gz'), gzipSync(`${ticks.join('\n')}\n`));
  writeFileSync(path.join(dir, 'fills.ndjson'), `${fills.join('\n')}\n`);
  const cols = ['cid', 'instrument', 'ts', 'kind', 'side', 'price', 'qty', 'color'];
  const rows = orders.map((l) => { const o = JSON.parse(l) as Record<string, unknown>; return cols.map((c) => csvCell(o[c])).join(','); });
  if (corrupt) rows.splice(2, 0, rows[2]!.replace(/,(buy|sell),[^,]+,/, ',$1,abc,')); // line 4 (header is line 1): price abc
  writeFileSync(path.join(dir, 'orders.csv'), `${cols.join(',')}\n${rows.join('\n')}\n`);
  return dir;
}

const clean = fixture(false);
const corrupt = fixture(true);
const readJson = <T>(file: string) => JSON.parse(readFileSync(file, 'utf8')) as T;
const ndjson = (file: string) => lines(file).map((l) => JSON.parse(l) as Record<string, unknown>);

async function offline(inputs: string[], opts: { format?: 'ndjson' | 'csv'; log?: (line: string) => void; progressStream?: NodeJS.WriteStream } = {}) {
  const out = tmp('out');
  const result = await runOffline({ inputs, outDir: out, config, ...opts });
  return { out, result };
}

test('bad lines are reported as sep import reports them and written to dlq.ndjson; the valid rest runs; exit code 3', async () => {
  const logged: string[] = [];
  const { out, result } = await offline([corrupt], { log: (l) => logged.push(l) });
  assert.equal(exitCodeOf(result), 3);
  const text = logged.join('\n');
  assert.match(text, new RegExp(`${corrupt}/candles\\.ndjson:5: malformed: not valid JSON`));
  assert.match(text, new RegExp(`${corrupt}/fills\\.ndjson:10: unknown_instrument: instrument: "XAU_USD" is not in the instrument catalog`));
  assert.match(text, new RegExp(`${corrupt}/orders\\.csv:4: invalid_value: price: must be a finite number, got "abc"`));

  const dead = ndjson(path.join(out, 'dlq.ndjson')) as unknown as OfflineDeadLetter[];
  assert.deepEqual(dead.map((d) => [d.reason, d.field, d.source_topic, d.source_file && path.basename(d.source_file), d.source_line]), [
    ['malformed', null, 'md.candles.v1', 'candles.ndjson', 5],
    ['unknown_instrument', 'instrument', 'exec.fills.v1', 'fills.ndjson', 10],
    ['invalid_value', 'price', 'exec.orders.v1', 'orders.csv', 4],
    ['late', 'timestamp', 'md.ticks.v1', null, null],
  ]);
  assert.equal(dead[0]!.value, '{"instrument":"EUR_USD","ts":"2026-11-13T00:01:00Z","open":1.1', 'the line as it was');
  const late = dead[3]!;
  const lateTick = JSON.parse(late.value) as { instrument: string; ts: number };
  assert.equal(late.key, lateTick.instrument);
  assert.equal(late.ts, lateTick.ts);
  assert.equal(late.source_partition, partitionForKey(lateTick.instrument, 3));
  assert.ok(late.source_offset! > 0);

  const summary = readJson<OfflineSummary>(path.join(out, 'summary.json'));
  assert.deepEqual(summary.rejected, { lines: 3, lines_by_reason: { malformed: 1, unknown_instrument: 1, invalid_value: 1 }, stream: 1, stream_by_reason: { late: 1 } });
  assert.equal(summary.dead_letters.records, 4);
  // The rest is the clean day plus a late tick, which leaves no trace: every output equals the clean run's.
  const reference = await offline([clean]);
  assert.equal(exitCodeOf(reference.result), 0);
  assert.equal(summary.input_records, reference.result.summary.input_records + 1);
  for (const spec of OFFLINE_OUTPUTS) {
    const name = `${spec.name}.ndjson`;
    assert.ok(readFileSync(path.join(out, name)).equals(readFileSync(path.join(reference.out, name))), `${name} equals the clean run's`);
  }
});

test('the outputs are the topologies run by hand through the test driver, as the integration tests\' offline() run them', async () => {
  const { out, result } = await offline([clean]);
  const d = new TopologyTestDriver(pipelineTopology(config.catalog, config), { partitions: 3 });
  for (const [kind, file] of [['candles', 'candles.ndjson'], ['fills', 'fills.ndjson'], ['orders', 'orders.csv'], ['ticks', 'ticks.ndjson.gz']] as const) {
    const topic = { candles: TOPICS.candles, fills: TOPICS.fills, orders: TOPICS.orders, ticks: TOPICS.ticks }[kind].name;
    for (const raw of rawRecords(path.join(clean, file))) {
      const r = validateRecord(kind as RecordKind, raw, config.catalog);
      d.pipeInput(topic, r.instrument, r, r.ts);
    }
  }
  const expectedPartitions = [...new Set(config.catalog.list().map((i) => partitionForKey(i, 3)))];
  const b = new TopologyTestDriver(gatesBlobTopology({ expectedPartitions, allocator: { config: config.allocator } }));
  for (const o of d.readOutput(TOPICS.gatesPartial.name)) b.pipeInput(TOPICS.gatesPartial.name, o.key, o.value, o.timestamp);
  const byPartition = (spec: (typeof OFFLINE_OUTPUTS)[number], records: { key: string; value: unknown }[]) =>
    records.map((r, i) => ({ r, i, p: partitionForKey(r.key, spec.partitions ?? 3) })).sort((x, y) => x.p - y.p || x.i - y.i).map((x) => x.r.value);
  for (const spec of OFFLINE_OUTPUTS) {
    const expected = byPartition(spec, (spec === TOPICS.gatesBlob || spec === TOPICS.allocations ? b : d).readOutput(spec.name));
    assert.deepEqual(ndjson(path.join(out, `${spec.name}.ndjson`)), JSON.parse(JSON.stringify(expected)), spec.name);
    assert.equal(result.summary.outputs[spec.name]!.records, expected.length);
  }
  d.close();
  b.close();
  const allocations = ndjson(path.join(out, 'alloc.weights.v1.ndjson')) as { seq: number; weights: { weight: number }[] }[];
  assert.deepEqual(allocations.map((a) => a.seq), allocations.map((_, i) => i + 1), 'one partition, seq order');
  assert.ok(allocations.some((a) => a.weights.some((w) => w.weight > 0)), 'the knobs make the allocator size something');
  const gates = ndjson(path.join(out, 'gates.v1.ndjson')) as { instrument: string }[];
  const partitions = gates.map((g) => partitionForKey(g.instrument, 3));
  assert.deepEqual(partitions, [...partitions].sort(), 'gates.v1 is ordered by partition');
  assert.deepEqual(result.summary.outputs['gates.v1']!.by_partition, [0, 1, 2].map((p) => partitions.filter((x) => x === p).length));
});

test('the same run twice gives byte-identical files (summary.json but for elapsed_ms)', async () => {
  const a = await offline([corrupt]);
  const b = await offline([corrupt]);
  const files = readdirSync(a.out).sort();
  assert.deepEqual(files, [...OFFLINE_OUTPUTS.map((s) => `${s.name}.ndjson`), 'dlq.ndjson', 'summary.json'].sort());
  assert.deepEqual(readdirSync(b.out).sort(), files);
  for (const f of files.filter((x) => x !== 'summary.json')) assert.ok(readFileSync(path.join(a.out, f)).equals(readFileSync(path.join(b.out, f))), `${f} differs between two runs`);
  const withoutElapsed = (dir: string) => readFileSync(path.join(dir, 'summary.json'), 'utf8').replace(/"elapsed_ms": \d+/, '"elapsed_ms": 0');
  assert.equal(withoutElapsed(a.out), withoutElapsed(b.out));
  assert.match(a.result.summary.config_hash, /^[0-9a-f]{64}$/);
});

test('CSV output has the schema\'s columns and parses back to the NDJSON values', async () => {
  const json = await offline([clean]);
  const csv = await offline([clean], { format: 'csv' });
  assert.equal(csv.result.summary.format, 'csv');
  for (const spec of OFFLINE_OUTPUTS) {
    const [header, ...rows] = lines(path.join(csv.out, `${spec.name}.csv`));
    const columns = splitCsv(header!);
    assert.deepEqual(columns, schemaColumns(spec), `${spec.name} header`);
    const expected = ndjson(path.join(json.out, `${spec.name}.ndjson`));
    assert.equal(rows.length, expected.length, spec.name);
    rows.forEach((row, i) => {
      const want = expected[i]!;
      const cells = splitCsv(row);
      const got = Object.fromEntries(columns.map((c, j) => [c, parseCell(cells[j]!, want[c])]));
      assert.deepEqual(got, want, `${spec.name} row ${i + 2}`);
    });
  }
});

test('progress is drawn on a terminal (events/s, ETA) and nowhere else', async () => {
  const written: string[] = [];
  const tty = { isTTY: true, write: (s: string) => { written.push(s); return true; } } as unknown as NodeJS.WriteStream;
  const ci = process.env.CI;
  delete process.env.CI;
  try {
    await offline([clean], { progressStream: tty });
  } finally {
    if (ci !== undefined) process.env.CI = ci;
  }
  const text = written.join('');
  assert.match(text, /offline read ticks\.ndjson\.gz: [\d,]+\/[\d,]+ 100\.0% [\d,]+ ev\/s/);
  assert.match(text, /offline run: [\d,]+\/[\d,]+ 100\.0% [\d,]+ ev\/s/);
  const pipe = { isTTY: false, write: () => assert.fail('drawn on a pipe') } as unknown as NodeJS.WriteStream;
  await offline([clean], { progressStream: pipe });
});

test('no input and an --out that is a file are usage errors naming the fix', async () => {
  await assert.rejects(runOffline({ inputs: [], outDir: tmp('none'), config }), (err: unknown) => err instanceof UsageError && /sep offline needs at least one file or directory/.test(err.message));
  const file = path.join(tmp('file'), 'x');
  writeFileSync(file, '');
  await assert.rejects(runOffline({ inputs: [clean], outDir: file, config }), (err: unknown) => err instanceof UsageError && /--out .* is a file: give a directory/.test(err.message));
});

test('sep offline: exit 3 with the report when lines were rejected, 2 with the flag named on bad usage', () => {
  const sepCli = (args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'bin/sep.mjs'), ...args], { cwd: ROOT, env: { ...process.env, ...KNOBS, CI: '1' }, encoding: 'utf8' });
  const out = tmp('cli');
  const r = sepCli(['offline', corrupt, '--out', out]);
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stdout, /fills\.ndjson:10: unknown_instrument: instrument: /);
  assert.match(r.stdout, /dlq\.ndjson: 4 dead letters \(3 input lines rejected, 1 records dead-lettered by the stream runtime\)/);
  assert.equal(readJson<OfflineSummary>(path.join(out, 'summary.json')).run_id, 'offline');
  const noOut = sepCli(['offline', corrupt]);
  assert.equal(noOut.status, 2);
  assert.match(noOut.stderr, /--out DIR is required/);
  const badFormat = sepCli(['offline', corrupt, '--out', out, '--format', 'parquet']);
  assert.equal(badFormat.status, 2);
  assert.match(badFormat.stderr, /--format "parquet": use ndjson or csv/);
});

/** The raw records of a fixture file (NDJSON or CSV), as the importer's reader gives them. */
function rawRecords(file: string): Record<string, unknown>[] {
  if (!file.endsWith('.csv')) return lines(file).map((l) => JSON.parse(l) as Record<string, unknown>);
  const [header, ...rows] = lines(file);
  const cols = splitCsv(header!);
  return rows.map((r) => Object.fromEntries(splitCsv(r).map((c, i) => [cols[i]!, c])));
}

/** A CSV cell back to the type the NDJSON value has. */
function parseCell(cell: string, like: unknown): unknown {
  if (cell === '') return like === undefined ? undefined : null;
  if (typeof like === 'number') return Number(cell);
  if (typeof like === 'boolean') return cell === 'true';
  if (typeof like === 'object' && like !== null) return JSON.parse(cell) as unknown;
  return cell;
}
