/**
 * Markout + cost calibration throughput and state (issue 6): fills/s joined
 * against a tick stream of 100 000 ticks per second of event time, in-process
 * (the runtime's test driver: the processing cost without Kafka), and the
 * state the join needs.
 *
 *   npm run bench:execution -- [--seconds 10] [--instruments 10] [--tick-rate 100000] [--fill-rate 200] [--runs 3]
 *
 * Input (seeded, the same in every run, generated in 100 ms slices of event
 * time as the run goes and not timed): --tick-rate ticks per second of event
 * time spread evenly over --instruments instruments (default 10 × 10 000
 * ticks/s, round-robin, integer ms timestamps, so 10 ticks per ms per
 * instrument), each a bid/ask random walk quoted in pipettes (1e-5) with a
 * spread of 1–4 pipettes; --fill-rate fills per second of event time (Poisson
 * arrivals, random instrument, side, colour, maker/taker, unique cids, priced
 * at the touch ± a pipette), each with a `filled` order event and one
 * `cancelled` order (fill rate 0.5); --seconds of event time from Monday
 * 2026-01-05 08:00 UTC, everything in time order.
 *
 * Topology: the execution part of pipelineTopology alone (sources ticks,
 * fills, orders → CalibrationProcessor and MarkoutProcessor with their stores
 * and sinks; no features, so calibration gets no bars), default knobs
 * (resolveMarkoutConfig({}, {}), resolveCalibrationConfig({}, {}),
 * CALIB_EMIT_INTERVAL_SEC 60), 3 partitions. A second variant has the markout
 * alone (ticks + fills): the difference is the calibration's cost. The driver
 * merges the sources by timestamp on flush(), called after each slice; it
 * drains (serialises) the state stores' changelog every 5 000 records, as the
 * Kafka runner does before each send.
 *
 * Measured per run (medians of --runs, variants interleaved): ticks/s and
 * fills/s processed, overall and "steady" (from STEADY_FROM_MS of event time
 * on, when the tick buffers are full), the speed-up over real time, the share
 * of time in changelog serialisation (Task.drainChangelog, timed by wrapping
 * it), markouts emitted, the changelog written (records, bytes, the largest
 * record); at the end of the run, the state: ticks held and their segments,
 * pending (fill, horizon) pairs and fills remembered (from the stores), JSON
 * bytes of each store's values per instrument, the largest single store
 * value, and the V8 heap used with all state live
 * after gc() and the driver's collected outputs dropped, minus the heap
 * before building the topology, per instrument.
 * Table on stdout (Markdown), progress on stderr.
 */
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { TopologyTestDriver } from '../streams/runtime/test-driver.ts';
import { Task } from '../streams/runtime/task.ts';
import { Topology } from '../streams/runtime/topology.ts';
import { KeyValueStore } from '../streams/runtime/stores.ts';
import { TOPICS } from '../streams/runtime/topics.ts';
import { InstrumentCatalog } from '../streams/model/instruments.ts';
import { validateRecord, type Fill, type OrderEvent, type Tick } from '../streams/model/records.ts';
import { resolveMarkoutConfig } from '../streams/markout/config.ts';
import type { PendingFill } from '../streams/markout/markout.ts';
import type { TickSegment } from '../streams/markout/asof.ts';
import type { InstrumentAggregate } from '../streams/markout/aggregate.ts';
import { resolveCalibrationConfig } from '../streams/calibration/config.ts';
import { resolveExecutionConfig } from '../streams/execution/topology.ts';
import { CALIBRATION_STORE, CalibrationProcessor, MARKOUT_AGG_STORE, MARKOUT_FILLS_STORE, MARKOUT_TICKS_STORE, MarkoutProcessor, type CalibrationEntry } from '../streams/execution/processors.ts';
import { Rng } from '../src/generate/random.ts';
import { argInt } from './args.ts';
import { fmt, median } from './stats.ts';

const SECONDS = argInt('seconds', 10);
const N = argInt('instruments', 10);
const TICK_RATE = argInt('tick-rate', 100_000);
const FILL_RATE = argInt('fill-rate', 200);
const RUNS = argInt('runs', 3);
const PARTITIONS = 3;
/** Event time piped between two flushes of the driver's timestamp merge (ms). */
const FLUSH_EVERY_MS = 100;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write('run with node --expose-gc (npm run bench:execution does)\n');
  process.exit(2);
}

const instruments = Array.from({ length: N }, (_, i) => `I${String(i).padStart(2, '0')}_USD`);
const catalog = new InstrumentCatalog(instruments);
const markout = resolveMarkoutConfig({}, {});
const calibration = { ...resolveCalibrationConfig({}, {}), ...resolveExecutionConfig({}) };
const topics = { ticks: TOPICS.ticks.name, fills: TOPICS.fills.name, orders: TOPICS.orders.name };

/**
 * Steady state of the tick buffers: they hold the last MARKOUT_GRACE_MS of
 * ticks (plus at most one 100 ms segment). grace · 4/3 + 1 s is kept from the
 * first design (an amortised eviction that ran once a quarter more had
 * arrived), so results compare with the earlier runs in BENCHMARKS.md.
 */
const STEADY_FROM_MS = Math.ceil((markout.graceMs * 4) / 3) + 1000;
if (SECONDS * 1000 <= STEADY_FROM_MS) {
  process.stderr.write(`--seconds must be more than ${STEADY_FROM_MS / 1000} (the tick buffers fill until then)\n`);
  process.exit(2);
}

interface Input { topic: string; key: string; value: Tick | Fill | OrderEvent; ts: number }

const PIP = 1e-5;
const round5 = (x: number) => Math.round(x / PIP) / 1e5;
const T0 = Date.UTC(2026, 0, 5, 8);

/**
 * The synthetic market, generated in slices of event time as the run goes (the
 * same seed gives the same input in every run): memory then holds the state,
 * not the input. Generation is not timed.
 */
class Market {
  private readonly rng = new Rng(6);
  private readonly mid = instruments.map(() => 1 + this.rng.next());
  private readonly bid = this.mid.map(round5);
  private readonly ask = this.bid.map((b) => round5(b + PIP));
  /** 0.5 bp per √s of event time, spread over each instrument's ticks. */
  private readonly sigma = 0.5e-4 / Math.sqrt(TICK_RATE / N);
  private k = 0;
  private nextFill = T0 + this.gap();
  ticks = 0;
  fills = 0;
  orders = 0;

  private gap(): number {
    return (-Math.log(1 - this.rng.next()) * 1000) / FILL_RATE;
  }

  /** Every record with a timestamp before `until` not given yet, in time order. */
  slice(until: number): Input[] {
    const out: Input[] = [];
    const rng = this.rng;
    for (; ; this.k++) {
      const ts = T0 + Math.floor((this.k * 1000) / TICK_RATE);
      if (ts >= until) return out;
      while (this.nextFill < ts + 1) {
        const fts = Math.floor(this.nextFill);
        const j = rng.int(N);
        const instrument = instruments[j]!;
        const side = rng.next() < 0.5 ? 'buy' : 'sell';
        const liquidity = rng.next() < 0.5 ? 'taker' : 'maker';
        const color = rng.next() < 0.5 ? 'blue' : 'green';
        // A taker buys at the ask, a maker at the bid (the other way round for sells), give or take a pipette.
        const touch = (side === 'buy') === (liquidity === 'taker') ? this.ask[j]! : this.bid[j]!;
        const price = round5(touch + (rng.int(3) - 1) * PIP);
        const qty = 1000 * (1 + rng.int(100));
        const cid = `f${this.fills}`;
        out.push({ topic: topics.orders, key: instrument, ts: fts, value: { cid: `c${this.fills}`, instrument, ts: fts, kind: 'cancelled', side, price, qty, color } });
        out.push({ topic: topics.fills, key: instrument, ts: fts, value: { cid, instrument, ts: fts, side, price, qty, fee_bps: 0.2, liquidity, color } });
        out.push({ topic: topics.orders, key: instrument, ts: fts, value: { cid, instrument, ts: fts, kind: 'filled', side, price, qty, color } });
        this.fills++;
        this.orders += 2;
        this.nextFill += this.gap();
      }
      const j = this.k % N;
      this.mid[j] = this.mid[j]! * Math.exp(this.sigma * rng.normal());
      const half = ((1 + rng.int(4)) * PIP) / 2;
      this.bid[j] = round5(this.mid[j]! - half);
      this.ask[j] = Math.max(round5(this.mid[j]! + half), round5(this.bid[j]! + PIP));
      out.push({ topic: topics.ticks, key: instruments[j]!, ts, value: { instrument: instruments[j]!, ts, bid: this.bid[j]!, ask: this.ask[j]!, bid_size: 1_000_000, ask_size: 1_000_000 } });
      this.ticks++;
    }
  }
}

type Variant = 'markout' | 'markout+calibration';

/** The execution part of pipelineTopology (streams/execution/topology.ts), without the signal path. */
function executionTopology(kind: Variant): Topology {
  const grace = { graceMs: markout.graceMs };
  const t = new Topology()
    .addSource('ticks', topics.ticks, (v) => validateRecord('ticks', v as Record<string, unknown>, catalog), grace)
    .addSource('fills', topics.fills, (v) => validateRecord('fills', v as Record<string, unknown>, catalog), grace);
  if (kind === 'markout+calibration') {
    t.addSource('orders', topics.orders, (v) => validateRecord('orders', v as Record<string, unknown>, catalog))
      .addProcessor('calibration', () => new CalibrationProcessor(calibration, topics), 'ticks', 'fills', 'orders')
      .addStateStore(CALIBRATION_STORE, () => new KeyValueStore<CalibrationEntry>(CALIBRATION_STORE), 'calibration')
      .addSink('calibration-out', TOPICS.costCalibration.name, 'calibration');
  }
  return t.addProcessor('markout', () => new MarkoutProcessor(markout, topics), 'ticks', 'fills')
    .addStateStore(MARKOUT_TICKS_STORE, () => new KeyValueStore<TickSegment>(MARKOUT_TICKS_STORE), 'markout')
    .addStateStore(MARKOUT_FILLS_STORE, () => new KeyValueStore<PendingFill>(MARKOUT_FILLS_STORE), 'markout')
    .addStateStore(MARKOUT_AGG_STORE, () => new KeyValueStore<InstrumentAggregate>(MARKOUT_AGG_STORE), 'markout')
    .addSink('markout-out', TOPICS.markouts.name, 'markout');
}

// Changelog serialisation time and size: the driver drains every 5 000 records, as the Kafka runner does before a send.
let drainMs = 0;
let changelogBytes = 0;
let changelogRecords = 0;
let largestChangelogRecord = 0;
const drain = Task.prototype.drainChangelog;
Task.prototype.drainChangelog = function (this: Task) {
  const t = performance.now();
  const out = drain.call(this);
  drainMs += performance.now() - t;
  for (const c of out) {
    for (const w of c.writes) {
      const n = w.value === null ? 0 : Buffer.byteLength(w.value);
      changelogBytes += n;
      changelogRecords++;
      if (n > largestChangelogRecord) largestChangelogRecord = n;
    }
  }
  return out;
};

interface Result {
  /** Processing time (generation excluded), whole run and from STEADY_FROM_MS on; changelog serialisation in both. */
  wallMs: number; steadyMs: number; drainMs: number; steadyDrainMs: number;
  /** Records from STEADY_FROM_MS on. */
  steadyTicks: number; steadyFills: number;
  markouts: number; calibrations: number; ticks: number; fills: number; orders: number;
  /** Markout state summed over instruments: ticks held, tick segments, pending (fill, horizon) pairs, fills remembered. */
  tickEntries: number; segments: number; pending: number; fillsHeld: number;
  /** JSON bytes per instrument, by store; the largest single value (one changelog record). */
  bytes: Record<string, number>;
  largestValue: number;
  /** Changelog written over the run: records, bytes, the largest record. */
  changelogRecords: number; changelogBytes: number; largestChangelogRecord: number;
  heapPerInstrumentKiB: number; rssMiB: number;
}

function run(kind: Variant): Result {
  gc!();
  const heapBefore = process.memoryUsage().heapUsed;
  const d = new TopologyTestDriver(executionTopology(kind), { partitions: PARTITIONS });
  const market = new Market();
  drainMs = 0;
  changelogBytes = 0;
  changelogRecords = 0;
  largestChangelogRecord = 0;
  let wallMs = 0;
  let steadyMs = 0;
  let steadyDrainMs = 0;
  let steadyTicks = 0;
  let steadyFills = 0;
  for (let at = T0; at < T0 + SECONDS * 1000; at += FLUSH_EVERY_MS) {
    const slice = market.slice(at + FLUSH_EVERY_MS);
    const steady = at >= T0 + STEADY_FROM_MS;
    const drainedBefore = drainMs;
    const t = performance.now();
    for (const r of slice) {
      if (kind === 'markout' && r.topic === topics.orders) continue;
      d.pipeInput(r.topic, r.key, r.value, r.ts);
    }
    d.flush();
    const ms = performance.now() - t;
    wallMs += ms;
    if (steady) {
      steadyMs += ms;
      steadyDrainMs += drainMs - drainedBefore;
      for (const r of slice) {
        if (r.topic === topics.ticks) steadyTicks++;
        else if (r.topic === topics.fills) steadyFills++;
      }
    }
  }
  const drained = drainMs;
  if (d.rejections.length > 0) throw new Error(`${d.rejections.length} records dead-lettered, first: ${d.rejections[0]!.error.message}`);
  const markouts = d.readOutput(TOPICS.markouts.name).length;
  const calibrations = d.readOutput(TOPICS.costCalibration.name).length;
  d.clearOutputs();
  gc!();
  const { heapUsed, rss } = process.memoryUsage();
  const stores = [MARKOUT_TICKS_STORE, MARKOUT_FILLS_STORE, MARKOUT_AGG_STORE, ...(kind === 'markout' ? [] : [CALIBRATION_STORE])];
  const bytes: Record<string, number> = {};
  const size = { tickEntries: 0, segments: 0, pending: 0, fillsHeld: 0 };
  let largestValue = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    for (const name of stores) {
      for (const [, v] of d.store<KeyValueStore<unknown>>(name, p).all()) {
        const n = Buffer.byteLength(JSON.stringify(v));
        bytes[name] = (bytes[name] ?? 0) + n / N;
        largestValue = Math.max(largestValue, n);
        if (name === MARKOUT_TICKS_STORE) {
          size.segments++;
          size.tickEntries += (v as TickSegment).ts.length;
        } else if (name === MARKOUT_FILLS_STORE) {
          size.fillsHeld++;
          size.pending += (v as PendingFill).open.length;
        }
      }
    }
  }
  d.close();
  return {
    wallMs, steadyMs, drainMs: drained, steadyDrainMs, steadyTicks, steadyFills, markouts, calibrations,
    ticks: market.ticks, fills: market.fills, orders: market.orders, ...size, bytes, largestValue, changelogRecords, changelogBytes, largestChangelogRecord,
    heapPerInstrumentKiB: (heapUsed - heapBefore) / N / 1024, rssMiB: rss / 1024 / 1024,
  };
}

const kib = (n: number) => (n < 1024 ? `${fmt(n)} B` : `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KiB`);
const rate = (n: number, ms: number) => (ms > 0 ? n / (ms / 1000) : NaN);

process.stderr.write(`${N} instruments, ${SECONDS} s of event time at ${fmt(TICK_RATE)} ticks/s and ${fmt(FILL_RATE)} fills/s; steady from ${STEADY_FROM_MS / 1000} s; ${RUNS} runs per variant\n`);
const VARIANTS: Variant[] = ['markout', 'markout+calibration'];
const results: Record<Variant, Result[]> = { markout: [], 'markout+calibration': [] };
for (let r = 0; r < RUNS; r++) {
  for (const kind of VARIANTS) {
    const res = run(kind);
    results[kind].push(res);
    process.stderr.write(`run ${r + 1} ${kind}: ${(res.wallMs / 1000).toFixed(2)} s processing; steady ${fmt(rate(res.steadyTicks, res.steadyMs))} ticks/s, ${fmt(rate(res.steadyFills, res.steadyMs))} fills/s, ${(rate(res.steadyTicks, res.steadyMs) / TICK_RATE).toFixed(2)}× real time, changelog ${(res.steadyDrainMs / res.steadyMs * 100).toFixed(0)} %\n`);
  }
}

const first = results.markout[0]!;
const label = (kind: Variant) => (kind === 'markout' ? 'markout only (ticks + fills)' : 'markout + calibration (ticks + fills + orders)');
const m = (kind: Variant, f: (x: Result) => number) => median(results[kind].map(f));
console.log(`\nMarkout + cost calibration, in-process (${os.cpus().length} cores, Node ${process.version}); ${N} instruments, ${SECONDS} s of event time: ${fmt(first.ticks)} ticks (${fmt(TICK_RATE)}/s), ${fmt(first.fills)} fills (${fmt(FILL_RATE)}/s), ${fmt(first.orders)} order events; ${PARTITIONS} partitions; default knobs (horizons ${markout.horizonsMs.join(',')} ms, grace ${markout.graceMs} ms); steady = from ${STEADY_FROM_MS / 1000} s of event time on; medians of ${RUNS}\n`);
console.log('| variant | processing s | ticks/s overall | ticks/s steady | fills/s steady | × real time (steady) | changelog serialisation (steady) | markouts emitted |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const kind of VARIANTS) {
  const x = results[kind];
  const wall = m(kind, (r) => r.wallMs);
  const steadyTicks = m(kind, (r) => rate(r.steadyTicks, r.steadyMs));
  console.log(`| ${label(kind)} | ${(wall / 1000).toFixed(2)} | ${fmt(x[0]!.ticks / (wall / 1000))} | ${fmt(steadyTicks)} | ${fmt(m(kind, (r) => rate(r.steadyFills, r.steadyMs)))} | ${(steadyTicks / TICK_RATE).toFixed(2)} | ${m(kind, (r) => r.steadyDrainMs / r.steadyMs * 100).toFixed(0)} % | ${fmt(m(kind, (r) => r.markouts))} |`);
}
console.log(`\nState at the end (${SECONDS} s of event time; entries summed over the ${N} instruments, JSON bytes per instrument) and the changelog the run wrote:\n`);
console.log('| variant | ticks held (segments) | pending (fill, horizon) | fills remembered | markout JSON / instrument (ticks / fills) | aggregates JSON | calibration JSON | largest store value | changelog written (records, MiB per s of event time) | largest changelog record | state heap / instrument | process RSS |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const kind of VARIANTS) {
  const b = (f: (x: Result) => number) => kib(m(kind, f));
  const calib = kind === 'markout' ? '–' : b((x) => x.bytes[CALIBRATION_STORE] ?? 0);
  const markoutJson = (x: Result) => (x.bytes[MARKOUT_TICKS_STORE] ?? 0) + (x.bytes[MARKOUT_FILLS_STORE] ?? 0);
  const changelog = `${fmt(m(kind, (x) => x.changelogRecords))}, ${(m(kind, (x) => x.changelogBytes) / 1024 / 1024 / SECONDS).toFixed(1)} MiB/s`;
  console.log(`| ${label(kind)} | ${fmt(m(kind, (x) => x.tickEntries))} (${fmt(m(kind, (x) => x.segments))}) | ${fmt(m(kind, (x) => x.pending))} | ${fmt(m(kind, (x) => x.fillsHeld))} | ${b(markoutJson)} (${b((x) => x.bytes[MARKOUT_TICKS_STORE] ?? 0)} / ${b((x) => x.bytes[MARKOUT_FILLS_STORE] ?? 0)}) | ${b((x) => x.bytes[MARKOUT_AGG_STORE] ?? 0)} | ${calib} | ${b((x) => x.largestValue)} | ${changelog} | ${b((x) => x.largestChangelogRecord)} | ${b((x) => x.heapPerInstrumentKiB * 1024)} | ${m(kind, (x) => x.rssMiB).toFixed(0)} MiB |`);
}
console.log(`\nPer run, ticks/s steady: ${VARIANTS.map((k) => `${k} ${results[k].map((x) => fmt(rate(x.steadyTicks, x.steadyMs))).join(' / ')}`).join('; ')}`);
console.log(`Calibration records published (median): ${fmt(m('markout+calibration', (x) => x.calibrations))}`);
