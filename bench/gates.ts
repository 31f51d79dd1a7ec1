/**
 * Features + rolling gates throughput (issue 4): candles/s through the signal
 * topology (features → evaluator every EVAL_INTERVAL_SEC of stream time, each
 * evaluation simulating GATES_SPAN_DAYS of M1 bars per instrument) for 50
 * instruments, next to the features processor alone, in-process (the runtime's
 * test driver: the processing cost without Kafka), and the memory it needs.
 *
 *   npm run bench:gates -- [--days 8] [--instruments 50] [--runs 3]
 *
 * Input: synthetic M1 candles on weekdays (the calendar's open sessions) from
 * Monday 2026-01-05, a random walk per instrument. The first GATES_SPAN_DAYS
 * fill the spans; "steady" is measured over the rest, when every evaluation
 * simulates full spans. Default gates knobs (EVAL_INTERVAL_SEC 60,
 * GATES_SPAN_DAYS 7). Two gates variants: the default coherence guard (0.55,
 * which random-walk prices never reach: the signal is 0 and no bar trades) and
 * a guard of 0 (the signal trades on most bars: the evaluator's worst case).
 * Each variant runs --runs times, interleaved; medians.
 * Memory: heap used after the run with all state live and the collected
 * outputs dropped (gc before measuring), minus the heap before building it,
 * per instrument — the state's footprint; the process RSS at that point; and
 * the span entries.
 * Table on stdout (Markdown), progress on stderr.
 */
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { TopologyTestDriver } from '../streams/runtime/test-driver.ts';
import { InstrumentCatalog } from '../streams/model/instruments.ts';
import { featuresTopology } from '../streams/features/processor.ts';
import { signalTopology } from '../streams/gates/topology.ts';
import { resolveGatesConfig } from '../streams/gates/config.ts';
import { GATES_SPAN_STORE } from '../streams/gates/processor.ts';
import { TOPICS } from '../streams/runtime/topics.ts';
import { DEFAULT_FEATURE_PARAMS } from '../streams/features/features.ts';
import { resolveRegimeParams } from '../streams/features/regime.ts';
import { Rng } from '../src/generate/random.ts';
import type { Candle } from '../streams/model/records.ts';
import { argInt } from './args.ts';
import { fmt, median } from './stats.ts';

const DAYS = argInt('days', 8);
const N = argInt('instruments', 50);
const RUNS = argInt('runs', 3);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write('run with node --expose-gc (npm run bench:gates does)\n');
  process.exit(2);
}

const instruments = Array.from({ length: N }, (_, i) => `I${String(i).padStart(2, '0')}_USD`);
const catalog = new InstrumentCatalog(instruments);
const { config: gates } = resolveGatesConfig({}, {});

function candles(): Candle[] {
  const rng = new Rng(4);
  const price = instruments.map(() => 1 + rng.next());
  const out: Candle[] = [];
  const t0 = Date.UTC(2026, 0, 5); // a Monday
  for (let d = 0, weekdays = 0; weekdays < DAYS; d++) {
    const day = new Date(t0 + d * 86_400_000).getUTCDay();
    if (day === 0 || day === 6) continue;
    weekdays++;
    for (let m = 1; m <= 1440; m++) {
      const ts = t0 + d * 86_400_000 + m * 60_000;
      for (const [k, instrument] of instruments.entries()) {
        const open = price[k]!;
        const close = open * Math.exp(0.0004 * rng.normal());
        price[k] = close;
        const high = Math.max(open, close) * (1 + 0.0001 * rng.next());
        const low = Math.min(open, close) * (1 - 0.0001 * rng.next());
        out.push({ instrument, granularity: 'M1', ts, open, high, low, close, volume: 1000 + rng.int(1000), complete: true });
      }
    }
  }
  return out;
}

interface Result { total: number; steady: number; heapPerInstrumentKiB: number; rssMiB: number; spanEntries: number }

type Variant = 'features' | 'features+gates' | 'features+gates trading';
const trading = { ...DEFAULT_FEATURE_PARAMS, regime: resolveRegimeParams({ GUARD_MIN_COHERENCE: 0 }, {}) };

function run(kind: Variant, input: Candle[]): Result {
  gc!();
  const heapBefore = process.memoryUsage().heapUsed;
  const topology = kind === 'features' ? featuresTopology(catalog, { ticksTopic: null })
    : signalTopology(catalog, { ticksTopic: null, gates, ...(kind === 'features+gates trading' ? { params: trading } : {}) });
  const d = new TopologyTestDriver(topology, { partitions: 3 });
  const warm = input[0]!.ts + gates.spanDays * 86_400_000;
  const steadyFrom = input.findIndex((c) => c.ts > warm);
  const t0 = performance.now();
  let tSteady = t0;
  for (let i = 0; i < input.length; i++) {
    if (i === steadyFrom) tSteady = performance.now();
    const c = input[i]!;
    d.pipeInput(TOPICS.candles.name, c.instrument, c, c.ts);
  }
  const t1 = performance.now();
  d.clearOutputs();
  gc!();
  const { heapUsed, rss } = process.memoryUsage();
  const heap = heapUsed - heapBefore;
  const spanEntries = kind === 'features' ? 0 : [0, 1, 2].reduce((s, p) => s + d.store(GATES_SPAN_STORE, p).size(), 0);
  const steadyCount = steadyFrom >= 0 ? input.length - steadyFrom : 0;
  const result = { total: input.length / ((t1 - t0) / 1000), steady: steadyCount ? steadyCount / ((t1 - tSteady) / 1000) : NaN, heapPerInstrumentKiB: heap / N / 1024, rssMiB: rss / 1024 / 1024, spanEntries };
  d.close();
  return result;
}


const input = candles();
process.stderr.write(`${input.length} candles (${N} instruments × ${DAYS} weekdays), ${RUNS} runs per variant\n`);
const VARIANTS: Variant[] = ['features', 'features+gates', 'features+gates trading'];
const results: Record<string, Result[]> = Object.fromEntries(VARIANTS.map((v) => [v, []]));
for (let r = 0; r < RUNS; r++) {
  for (const kind of VARIANTS) {
    const res = run(kind, input);
    results[kind]!.push(res);
    process.stderr.write(`run ${r + 1} ${kind}: ${Math.round(res.total)} candles/s overall, ${Math.round(res.steady)} steady\n`);
  }
}
const f = results.features!;
const g = results['features+gates']!;
const t = results['features+gates trading']!;
console.log(`\nFeatures + gates, in-process (${os.cpus().length} cores, Node ${process.version}); ${input.length.toLocaleString('en-US')} candles, ${N} instruments, ${DAYS} weekdays, EVAL_INTERVAL_SEC ${gates.evalIntervalSec}, GATES_SPAN_DAYS ${gates.spanDays}; medians of ${RUNS}\n`);
console.log('| variant | candles/s overall | candles/s with full spans | state heap per instrument | process RSS | span entries |');
console.log('|---|---:|---:|---:|---:|---:|');
const row = (label: string, xs: Result[]) => console.log(`| ${label} | ${fmt(median(xs.map((x) => x.total)))} | ${fmt(median(xs.map((x) => x.steady)))} | ${median(xs.map((x) => x.heapPerInstrumentKiB)).toFixed(0)} KiB | ${median(xs.map((x) => x.rssMiB)).toFixed(0)} MiB | ${xs[0]!.spanEntries ? fmt(median(xs.map((x) => x.spanEntries))) : '–'} |`);
row('features only', f);
row('features + gates (default guard 0.55: no bar trades)', g);
row('features + gates (guard 0: trading, worst case)', t);
const pct = (xs: Result[]) => (median(xs.map((x) => x.steady)) / median(f.map((x) => x.steady)) * 100).toFixed(1);
console.log(`\ngates cost: steady throughput is ${pct(g)}% (no trades) and ${pct(t)}% (trading) of features alone; real time needs ${N} candles/min.`);
