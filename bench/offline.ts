/**
 * Offline mode throughput (issue 8): input events/s of `sep offline`'s
 * module (connectors/replay/offline.ts runOffline) over the bundled recorded
 * day, end to end — read + validate the files, the signal + execution
 * topology and the blob stage + allocator in the runtime's test driver,
 * write every output record as NDJSON — and per phase.
 *
 *   npm run bench:offline -- [--runs 3] [--copies 5]
 *
 * Variants (interleaved per round, medians of --runs):
 * - the bundled day (data/recorded/2026-11-13: 239 711 events, 10
 *   instruments, 3 days) with the default knobs (resolvePipelineConfig({})),
 * - the same with the gates test's knobs (6-hour spans, 5-minute evaluations,
 *   a coherence guard of 0.05: gates flip, the allocator sizes; the
 *   evaluator simulates on every evaluation),
 * - the bundled day scaled to --copies × 10 instruments (each line repeated
 *   with the instrument renamed, EUR_USD → EUR1_USD …, so every copy has the
 *   same records and order; files written once before the runs, not timed;
 *   ticks gzipped like the bundled day), default knobs.
 * 3 partitions (SEP_PARTITIONS' default). Each run in its own process (as
 * `sep offline` runs; knobs from its environment; peak RSS = its maxRSS),
 * output to a temporary directory removed after the run, progress silenced.
 * Table on stdout (Markdown), per-run lines on stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { runOffline, type OfflineResult, type OfflineSummary } from '../connectors/replay/offline.ts';
import { resolvePipelineConfig } from '../src/pipeline/run.ts';
import { DEFAULT_INSTRUMENTS } from '../streams/model/instruments.ts';
import { argInt } from './args.ts';
import { fmt, median } from './stats.ts';
import { DAY, renamed, scaledDay } from './scaled-day.ts';

const RUNS = argInt('runs', 3);
const COPIES = argInt('copies', 5);
// test/integration/allocation.test.ts's KNOBS.
const GATES_KNOBS = {
  EVAL_INTERVAL_SEC: '300', GATES_BLOB_MAX_AGE_SEC: '900', GATES_SPAN_DAYS: '0.25', SPAN_MIN_BARS: '120', SPAN_MAX_MISSING_BARS: '30',
  GUARD_MIN_COHERENCE: '0.05', GATES_MIN_TRADES: '2', ECHO_MIN_REPETITIONS: '1', ECHO_HAZARD_MAX: '1',
  ALLOC_INTERVAL_SEC: '300',
};
/** Set in a child run: the input directory. */
const CHILD_ENV = 'SEP_BENCH_OFFLINE_INPUT';
const quiet = new Writable({ write: (_c, _e, done) => done() }) as unknown as NodeJS.WriteStream;

interface Variant { label: string; input: string; env: Record<string, string>; instruments: number }
/** What a child run reports. */
interface Sample { summary: OfflineSummary; timings: OfflineResult['timings']; maxRssMiB: number }


/** One run in a fresh process, as `sep offline` runs: knobs from its environment, peak RSS its own. */
async function child(input: string): Promise<void> {
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'sep-bench-offline-out-'));
  const { summary, timings } = await runOffline({ inputs: [input], outDir, config: resolvePipelineConfig(), progressStream: quiet });
  rmSync(outDir, { recursive: true, force: true });
  const sample: Sample = { summary, timings, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(JSON.stringify(sample));
}

function runChild(v: Variant): Sample {
  const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename], {
    env: { ...process.env, ...v.env, [CHILD_ENV]: v.input, CI: '1' }, encoding: 'utf8', maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`${v.label}: the run failed (exit ${r.status})\n${r.stderr}`);
  return JSON.parse(r.stdout) as Sample;
}

if (process.env[CHILD_ENV]) {
  await child(process.env[CHILD_ENV]);
} else {
  process.stderr.write(`writing the bundled day × ${COPIES} instruments …\n`);
  const scaled = await scaledDay(COPIES);
  const scaledInstruments = DEFAULT_INSTRUMENTS.flatMap((i) => Array.from({ length: COPIES }, (_, k) => renamed(i, k)));
  const variants: Variant[] = [
    { label: 'bundled day, default knobs', input: DAY, env: {}, instruments: 10 },
    { label: 'bundled day, gates test knobs (gates flip, allocator sizes)', input: DAY, env: GATES_KNOBS, instruments: 10 },
    { label: `bundled day × ${COPIES} (${10 * COPIES} instruments), default knobs`, input: scaled, env: { SEP_INSTRUMENTS: scaledInstruments.join(',') }, instruments: 10 * COPIES },
  ];
  const samples = new Map<Variant, Sample[]>(variants.map((v) => [v, []]));
  try {
    for (let round = 1; round <= RUNS; round++) {
      for (const v of variants) {
        const x = runChild(v);
        samples.get(v)!.push(x);
        const s = x.summary;
        process.stderr.write(`round ${round} ${v.label}: ${fmt(s.input_records)} events in ${(s.elapsed_ms / 1000).toFixed(2)} s = ${fmt(s.input_records / (s.elapsed_ms / 1000))} events/s (read ${x.timings.readMs} ms, topologies ${x.timings.processMs} ms, write ${x.timings.writeMs} ms), peak RSS ${x.maxRssMiB.toFixed(0)} MiB\n`);
      }
    }
  } finally {
    rmSync(scaled, { recursive: true, force: true });
  }

  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  console.log(`\nOffline mode (runOffline, one process per run), ${os.cpus().length} cores (${cpu}), Node ${process.version}; 3 partitions; NDJSON output; medians of ${RUNS}\n`);
  console.log('| variant | instruments | input events | output records | wall s | events/s end to end | read + validate s | topologies s | events/s in the topologies | write s | peak RSS |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const v of variants) {
    const xs = samples.get(v)!;
    const first = xs[0]!.summary;
    const outputs = Object.values(first.outputs).reduce((n, o) => n + o.records, 0);
    const m = (f: (x: Sample) => number) => median(xs.map(f));
    console.log(`| ${v.label} | ${v.instruments} | ${fmt(first.input_records)} | ${fmt(outputs)} | ${(m((x) => x.summary.elapsed_ms) / 1000).toFixed(2)} | ${fmt(m((x) => x.summary.input_records / (x.summary.elapsed_ms / 1000)))} | ${(m((x) => x.timings.readMs) / 1000).toFixed(2)} | ${(m((x) => x.timings.processMs) / 1000).toFixed(2)} | ${fmt(m((x) => x.summary.input_records / (x.timings.processMs / 1000)))} | ${(m((x) => x.timings.writeMs) / 1000).toFixed(2)} | ${m((x) => x.maxRssMiB).toFixed(0)} MiB |`);
  }
  console.log(`\nPer run, events/s end to end: ${variants.map((v) => `${v.label}: ${samples.get(v)!.map((x) => fmt(x.summary.input_records / (x.summary.elapsed_ms / 1000))).join(' / ')}`).join('; ')}`);
}
