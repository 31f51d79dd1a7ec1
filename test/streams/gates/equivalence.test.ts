/**
 * The evaluator's caches change no decision. The evaluator keeps each
 * instrument's span as a SpanSeries (evaluate.ts) instead of re-measuring the
 * stored bars at every evaluation; deterministic replay is a product
 * guarantee, so every figure must stay bit-identical. The reference below is
 * the evaluator as it was before the caches (streams/gates at commit
 * 02ad15a): filter the span, check it with one calendar query per gap,
 * simulate it into per-bar returns, walk the compounded curve, apply the
 * rules. It is kept here, verbatim in its arithmetic, as the oracle.
 * Comparisons use deepStrictEqual, which tells 0 from −0 and compares NaN
 * as equal, so "equal" means the same bits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../../src/generate/random.ts';
import { generateRecordedDay } from '../../../src/generate/recorded-day.ts';
import { DEFAULT_FEATURE_PARAMS } from '../../../streams/features/features.ts';
import { featuresTopology } from '../../../streams/features/processor.ts';
import { resolveRegimeParams } from '../../../streams/features/regime.ts';
import { InstrumentCatalog } from '../../../streams/model/instruments.ts';
import type { Processor, ProcessorContext, StreamRecord } from '../../../streams/runtime/processor.ts';
import { KeyValueStore, WindowStore, type ChangelogWrite } from '../../../streams/runtime/stores.ts';
import { STREAM_TIME_STORE, Task } from '../../../streams/runtime/task.ts';
import { TopologyTestDriver } from '../../../streams/runtime/test-driver.ts';
import { Topology } from '../../../streams/runtime/topology.ts';
import { TOPICS } from '../../../streams/runtime/topics.ts';
import { CompoundedCurve } from '../../../streams/gates/calmar.ts';
import { bufFor, resolveGatesConfig, type GatesConfig, type GatesKnob } from '../../../streams/gates/config.ts';
import { SpanSeries, initialGateState, type GateDecision, type GateReason, type GateState } from '../../../streams/gates/evaluate.ts';
import { GATES_SPAN_STORE, GATES_STATE_STORE, GatesProcessor, type GatesPartial, type InstrumentGateState } from '../../../streams/gates/processor.ts';
import { isOpen, minutesToClose, openIntervals, type SessionCalendar } from '../../../streams/gates/sessions.ts';
import type { SimBar } from '../../../streams/gates/simulate.ts';
import { signalTopology } from '../../../streams/gates/topology.ts';

// ---------------------------------------------------------------------------
// Reference: streams/gates before the caches.
// ---------------------------------------------------------------------------

const DAY_MS = 86_400_000;
const M1 = 60_000;
const START = 100;
const THRESHOLD_EPS = 1e-12;

interface RefMeasure {
  bars: number;
  missingBars: number;
  spanOk: boolean;
  simulation: { trades: number; calmar: number; totalReturn: number; maxDrawdown: number; annualReturn: number };
}

function refOpenSlots(cal: SessionCalendar, after: number, slots: number, bar: number): number {
  let count = 0;
  for (const [start, end] of openIntervals(cal, after, after + slots * bar)) count += Math.ceil((end - after) / bar) - Math.ceil((start - after) / bar);
  return count;
}

function refCheckSpan(cal: SessionCalendar, barTs: readonly number[], p: { maxMissingBars: number; minBars: number; asOfMs: number }): { ok: boolean; bars: number; missingBars: number } {
  const bar = M1;
  let missingBars = 0;
  let unordered = false;
  for (let i = 1; i < barTs.length; i++) {
    const a = barTs[i - 1]!;
    const b = barTs[i]!;
    if (!(b > a)) {
      unordered = true;
      continue;
    }
    const slots = Math.round((b - a) / bar) - 1;
    if (slots > 0) missingBars += refOpenSlots(cal, a, slots, bar);
  }
  const last = barTs[barTs.length - 1];
  if (last !== undefined && p.asOfMs > last) {
    const slots = Math.floor((p.asOfMs - last) / bar) - 1;
    if (slots > 0) missingBars += refOpenSlots(cal, last, slots, bar);
  }
  const ok = !unordered && barTs.length >= p.minBars && missingBars <= p.maxMissingBars;
  return { ok, bars: barTs.length, missingBars };
}

function refFinite(x: number): number {
  if (Number.isNaN(x)) return 0;
  return Math.min(Number.MAX_VALUE, Math.max(-Number.MAX_VALUE, x));
}

function refCalmarStats(returns: readonly number[], p: { periodsPerYear: number; calmarCap: number }) {
  let growth = 1;
  let peak = START;
  let worst = 0;
  for (const r of returns) {
    growth *= 1 + (Number.isFinite(r) ? r : 0);
    const value = growth * START;
    if (value > peak) peak = value;
    const dd = (value - peak) / peak;
    if (dd < worst) worst = dd;
  }
  const n = returns.length;
  const annual = n === 0 ? 0 : growth <= 0 ? -1 : refFinite(growth ** (1 / (n / p.periodsPerYear)) - 1);
  let calmar: number;
  if (worst >= 0) calmar = annual > 0 ? p.calmarCap : 0;
  else {
    const value = annual / Math.abs(worst);
    calmar = Number.isNaN(value) ? 0 : Math.min(p.calmarCap, Math.max(-p.calmarCap, value));
  }
  return { totalReturn: refFinite(growth - 1), maxDrawdown: worst, annualReturn: annual, calmar };
}

function refSimulate(bars: readonly SimBar[], p: { periodsPerYear: number; calmarCap: number }) {
  const returns: number[] = new Array(bars.length);
  let trades = 0;
  let prevPos = 0;
  let prevClose = NaN;
  let spread = 0;
  for (let t = 0; t < bars.length; t++) {
    const bar = bars[t]!;
    const pos = Number.isFinite(bar.signal) ? Math.sign(bar.signal) : 0;
    if (bar.spread_bps !== null && Number.isFinite(bar.spread_bps) && bar.spread_bps >= 0) spread = bar.spread_bps;
    const close = Number.isFinite(bar.close) && bar.close > 0 ? bar.close : NaN;
    const move = prevPos !== 0 && close > 0 && prevClose > 0 ? prevPos * (close / prevClose - 1) : 0;
    const cost = (spread / 2 / 1e4) * Math.abs(pos - prevPos);
    returns[t] = move - cost;
    if (pos !== 0 && pos !== prevPos) trades += 1;
    prevPos = pos;
    if (close > 0) prevClose = close;
  }
  return { trades, ...refCalmarStats(returns, p) };
}

function refMeasure(allBars: readonly SimBar[], now: number, config: GatesConfig): RefMeasure {
  const from = now - config.spanDays * DAY_MS;
  const bars = allBars.filter((b) => b.ts > from && b.ts <= now);
  const span = refCheckSpan(config.calendar, bars.map((b) => b.ts), { maxMissingBars: config.spanMaxMissingBars, minBars: config.spanMinBars, asOfMs: now });
  return { bars: span.bars, missingBars: span.missingBars, spanOk: span.ok, simulation: refSimulate(bars, { periodsPerYear: config.periodsPerYear, calmarCap: config.calmarCap }) };
}

function refEvaluateGate(instrument: string, now: number, bars: readonly SimBar[], repetitionIn: number | null, hazardIn: number | null, prevIn: GateState | undefined, config: GatesConfig): { decision: GateDecision; state: GateState } {
  const measured = refMeasure(bars, now, config);
  const sessionOpen = isOpen(config.calendar, now);
  const m = {
    trades: measured.simulation.trades, calmar: measured.simulation.calmar, spanOk: measured.spanOk, sessionOpen,
    minutesToClose: sessionOpen ? minutesToClose(config.calendar, now) : 0, repetition: repetitionIn, hazard: hazardIn,
  };
  const prev = prevIn ?? initialGateState();
  const buf = bufFor(config, instrument);
  const state = prev.cooldownUntil !== null && now >= prev.cooldownUntil ? initialGateState() : prev;
  const cooling = state.cooldownUntil !== null;
  const exitWindow = m.sessionOpen && m.minutesToClose <= config.sessionExitMinutes;
  const repetition = m.repetition !== null && Number.isFinite(m.repetition) ? Math.floor(m.repetition) : null;
  const hazard = m.hazard !== null && Number.isFinite(m.hazard) ? m.hazard : null;
  const failing = (calmarThreshold: number): GateReason[] => {
    const reasons: GateReason[] = [];
    if (!m.spanOk) reasons.push('span_integrity');
    if (!m.sessionOpen) reasons.push('session_closed');
    if (exitWindow) reasons.push('session_exit');
    if (m.trades < config.minTrades) reasons.push('min_trades');
    if (m.calmar < calmarThreshold - THRESHOLD_EPS * Math.abs(calmarThreshold)) reasons.push('calmar');
    if (repetition === null || repetition < config.echoMinRepetitions) reasons.push('echo_repetition');
    if (hazard === null || hazard > config.echoHazardMax) reasons.push('echo_hazard');
    return reasons;
  };
  const rawPass = failing(config.calmarFloor).length === 0;
  const reasons = failing(config.calmarFloor * (state.eligible ? 1 - buf : 1 + buf));
  let next: GateState = state;
  let misses = state.consecutiveMisses;
  if (cooling) {
    reasons.push('cooldown');
  } else if (m.sessionOpen && !exitWindow) {
    const eligible = reasons.length === 0;
    const inPlay = state.eligible || state.consecutiveMisses > 0;
    misses = eligible ? 0 : inPlay ? state.consecutiveMisses + 1 : 0;
    next = { eligible, consecutiveMisses: misses, cooldownUntil: null, passes: state.passes + (eligible ? 1 : 0), fails: state.fails + (eligible ? 0 : 1) };
    if (misses >= config.cooldownMisses) {
      reasons.push('cooldown');
      next = { ...initialGateState(), cooldownUntil: now + config.cooldownSec * 1000 };
    }
  }
  return {
    state: next,
    decision: {
      instrument, ts: now, eligible: reasons.length === 0, raw_pass: rawPass, trades: m.trades, calmar: m.calmar, buf,
      repetition: repetition ?? 0, hazard: hazard ?? 1, span_ok: m.spanOk, session_open: m.sessionOpen,
      cooldown_until: next.cooldownUntil, consecutive_misses: misses, reasons,
    },
  };
}

type GateFeature = { instrument: string; ts: number; close: number; signal?: number | null; spread_bps?: number | null; repetition?: number | null; hazard?: number | null; ewma_vol?: number | null };

/** GatesProcessor before the caches: every evaluation fetches and re-measures the stored span. */
class ReferenceGatesProcessor implements Processor<GateFeature> {
  private ctx!: ProcessorContext;
  private span!: WindowStore<SimBar>;
  private state!: KeyValueStore<InstrumentGateState>;

  constructor(private readonly config: GatesConfig, private readonly children: { decisions: string; partial: string }) {}

  init(ctx: ProcessorContext): void {
    this.ctx = ctx;
    this.span = ctx.getStateStore(GATES_SPAN_STORE);
    this.state = ctx.getStateStore(GATES_STATE_STORE);
    ctx.schedule(this.config.evalIntervalSec * 1000, 'stream-time', (at) => this.evaluate(at));
  }

  process({ value: f }: StreamRecord<GateFeature>): void {
    this.span.put(f.instrument, f.ts, { ts: f.ts, close: f.close, signal: f.signal ?? 0, spread_bps: f.spread_bps ?? null });
    const prev = this.state.get(f.instrument);
    this.state.put(f.instrument, { gate: prev?.gate, repetition: f.repetition ?? null, hazard: f.hazard ?? null, vol: f.ewma_vol ?? null });
  }

  private evaluate(at: number): void {
    this.span.evict(at);
    const decisions: GatesPartial['decisions'] = [];
    for (const [instrument, s] of this.state.all()) {
      const bars = this.span.fetchValues(instrument, at - this.config.spanDays * DAY_MS, at);
      const { decision, state } = refEvaluateGate(instrument, at, bars, s.repetition, s.hazard, s.gate, this.config);
      this.state.put(instrument, { ...s, gate: state });
      this.ctx.forward({ key: instrument, value: decision, timestamp: at }, this.children.decisions);
      const { instrument: i, eligible, buf, repetition, hazard, calmar, span_ok, cooldown_until } = decision;
      // The allocator's inputs ride along unchanged (no calibration store in the signal topology).
      decisions.push({ instrument: i, eligible, buf, repetition, hazard, calmar, span_ok, cooldown_until, vol: s.vol ?? null, calibration: null });
    }
    this.ctx.forward({ key: String(this.ctx.partition), value: { ts: at, partition: this.ctx.partition, decisions }, timestamp: at }, this.children.partial);
  }
}

// ---------------------------------------------------------------------------
// Inputs.
// ---------------------------------------------------------------------------

function gatesConfig(knobs: Partial<Record<GatesKnob, unknown>>): GatesConfig {
  return resolveGatesConfig({ GATES_BLOB_MAX_AGE_SEC: 86_400, ...knobs }, {}).config;
}

interface BarsOptions {
  seed: number;
  from: number;
  to: number;
  /** Dirty values: bad closes and signals (NaN, 0, negative, ±Infinity, null as JSON gives it). */
  dirty?: boolean;
  /** 'mixed': mostly valid with invalid runs; 'none': always null; 'valid': always valid. */
  spreads: 'valid' | 'mixed' | 'none';
  /** Closes that jump by hundreds of orders of magnitude, so the curve overflows. */
  wild?: boolean;
  /** Probability a bar's signal changes (long flat runs when low). */
  signalChange?: number;
}

/**
 * M1 bars from `from` to `to`: none from Friday 22:00 to Sunday 22:00 UTC,
 * bars in the calendar's closed hours on weekdays (FX trades 24/5), random
 * outages of 1–30 minutes, runs of positions with flats.
 */
function syntheticBars(o: BarsOptions): SimBar[] {
  const rng = new Rng(o.seed);
  const out: SimBar[] = [];
  let price = 1.1 + rng.next();
  let signal = 0;
  let spreadRun = 0;
  const nasty = [NaN, 0, -1, Infinity, -Infinity, null, 1e-300, 1e300];
  for (let ts = o.from; ts < o.to; ts += M1) {
    const d = new Date(ts);
    const day = d.getUTCDay();
    const hour = d.getUTCHours();
    if (day === 6 || (day === 5 && hour >= 22) || (day === 0 && hour < 22)) continue;
    if (rng.next() < 0.004) {
      ts += rng.int(30) * M1; // an outage: this bar and up to 29 more are missing
      continue;
    }
    price *= Math.exp(0.0006 * rng.normal());
    let close: number = price;
    if (o.wild && rng.next() < 0.01) close = rng.next() < 0.5 ? 1e-200 * price : 1e200 * price;
    if (o.dirty && rng.next() < 0.01) close = nasty[rng.int(nasty.length)] as number;
    if (rng.next() < (o.signalChange ?? 0.08)) signal = [-1, 0, 1, 1, -1][rng.int(5)]!;
    let s: number = signal;
    if (o.dirty && rng.next() < 0.01) s = [NaN, -0, 0.4, -7, Infinity, null][rng.int(6)] as number;
    let spread: number | null = 0.3 + 2 * rng.next();
    if (o.spreads === 'none') spread = null;
    else if (o.spreads === 'mixed') {
      if (spreadRun > 0) spreadRun--;
      else if (rng.next() < 0.01) spreadRun = rng.int(40);
      if (spreadRun > 0 || rng.next() < 0.05) spread = [null, NaN, -1, Infinity][rng.int(4)] as number | null;
    }
    out.push({ ts, close, signal: s, spread_bps: spread });
  }
  return out;
}

const THU = Date.UTC(2026, 0, 8); // Thursday 2026-01-08; four days to Monday cover a weekend

const datasets: Array<{ name: string; bars: SimBar[] }> = [
  { name: 'clean, valid spreads', bars: syntheticBars({ seed: 1, from: THU, to: THU + 4.5 * DAY_MS, spreads: 'valid' }) },
  { name: 'dirty closes and signals, invalid spread runs', bars: syntheticBars({ seed: 2, from: THU, to: THU + 4.5 * DAY_MS, spreads: 'mixed', dirty: true }) },
  { name: 'no spreads, long flat runs', bars: syntheticBars({ seed: 3, from: THU, to: THU + 4.5 * DAY_MS, spreads: 'none', signalChange: 0.01 }) },
  { name: 'wild closes (overflowing curve), dirty', bars: syntheticBars({ seed: 4, from: THU, to: THU + 4.5 * DAY_MS, spreads: 'mixed', dirty: true, wild: true }) },
];

const configs: Array<{ name: string; config: GatesConfig }> = [
  { name: '72-minute spans', config: gatesConfig({ GATES_SPAN_DAYS: 0.05, SPAN_MIN_BARS: 30, SPAN_MAX_MISSING_BARS: 5 }) },
  { name: 'half-day spans', config: gatesConfig({ GATES_SPAN_DAYS: 0.5, SPAN_MIN_BARS: 200, SPAN_MAX_MISSING_BARS: 20, CALMAR_CAP: 50 }) },
  { name: '2.5-day spans over the weekend', config: gatesConfig({ GATES_SPAN_DAYS: 2.5, SPAN_MIN_BARS: 600, SPAN_MAX_MISSING_BARS: 60 }) },
];

/** The series' figures in the reference's shape. */
function seriesMeasure(series: SpanSeries, now: number, config: GatesConfig): RefMeasure {
  const m = series.measure(now, config);
  return { bars: m.bars, missingBars: m.missingBars, spanOk: m.spanOk, simulation: m.simulation };
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

test('a span series measures every span bit for bit as the stored bars measure, warm or freshly built', () => {
  for (const { name, bars } of datasets) {
    for (const { name: cname, config } of configs) {
      const warm = new SpanSeries(config.calendar);
      let appended = 0;
      let evaluations = 0;
      let built = 0;
      const seen = { ok: 0, broken: 0, trades: 0, negativeCalmar: 0, positiveCalmar: 0 };
      // Every 7 minutes plus 13 s (evaluations need not sit on the bar grid), and hours past the last bar (trailing gaps).
      for (let now = bars[0]!.ts - 5 * M1; now < bars[bars.length - 1]!.ts + 3 * 3_600_000; now += 7 * M1 + 13_000) {
        while (appended < bars.length && bars[appended]!.ts <= now + 2 * M1) assert.equal(warm.append(bars[appended++]!), true);
        const expected = refMeasure(bars, now, config);
        const label = `${name}, ${cname}, now ${new Date(now).toISOString()}`;
        assert.deepStrictEqual(seriesMeasure(warm, now, config), expected, label);
        evaluations++;
        if (evaluations % 5 === 0) {
          // What a restored evaluator builds: the store's bars, from the span start on (and bars after now).
          const from = now - config.spanDays * DAY_MS;
          const cold = new SpanSeries(config.calendar);
          for (const b of bars.slice(0, appended)) if (b.ts >= from) cold.append(b);
          assert.deepStrictEqual(seriesMeasure(cold, now, config), expected, `${label} (freshly built)`);
          built++;
        }
        if (expected.spanOk) seen.ok++;
        else seen.broken++;
        if (expected.simulation.trades > 0) seen.trades++;
        if (expected.simulation.calmar < 0) seen.negativeCalmar++;
        if (expected.simulation.calmar > 0) seen.positiveCalmar++;
      }
      assert.ok(evaluations > 800 && built > 150, `${name}, ${cname}: ${evaluations} evaluations`);
      // The data exercises both sides of each figure.
      for (const [k, v] of Object.entries(seen)) assert.ok(v > 0, `${name}, ${cname}: some evaluations with ${k}`);
    }
  }
});

test('a span series refuses a bar that is not after its last one, and changes nothing', () => {
  const config = configs[0]!.config;
  const bars = datasets[0]!.bars.slice(0, 300);
  const series = new SpanSeries(config.calendar);
  for (const b of bars) series.append(b);
  const now = bars[bars.length - 1]!.ts;
  const before = seriesMeasure(series, now, config);
  assert.equal(series.append({ ...bars[bars.length - 1]!, close: 2 }), false, 'same time');
  assert.equal(series.append(bars[100]!), false, 'older');
  assert.equal(series.append({ ts: NaN, close: 1, signal: 1, spread_bps: 1 }), false, 'not a time');
  assert.deepStrictEqual(seriesMeasure(series, now, config), before);
  assert.equal(series.covers(now - config.spanDays * DAY_MS - 1), false, 'bars before the last span were dropped');
});

test('flat steps counted without walking them leave the compounded curve bit-identical', () => {
  const rng = new Rng(9);
  const p = { periodsPerYear: 362_880, calmarCap: 1000 };
  for (let trial = 0; trial < 300; trial++) {
    const n = rng.int(400);
    const returns: number[] = [];
    for (let i = 0; i < n; i++) {
      const u = rng.next();
      returns.push(u < 0.4 ? 0 : u < 0.45 ? 1e-17 : u < 0.47 ? [NaN, Infinity, -1, -0.999, 1e300][rng.int(5)]! : 0.002 * rng.normal());
    }
    const curve = new CompoundedCurve();
    const moves = new Float64Array(n);
    let k = 0;
    for (const r of returns) {
      const f = 1 + (Number.isFinite(r) ? r : 0);
      if (f !== 1) moves[k++] = f;
    }
    curve.steps(moves, 0, k);
    curve.flat(n - k);
    assert.deepStrictEqual(curve.stats(p), refCalmarStats(returns, p), `trial ${trial}`);
  }
});

// The pipeline: features → gates on generated FX data, against the reference evaluator.

const catalog = InstrumentCatalog.fromEnv({});
const params = { ...DEFAULT_FEATURE_PARAMS, regime: resolveRegimeParams({ GUARD_MIN_COHERENCE: 0.05 }, {}) };
// Friday afternoon to Monday morning (2026-11-13 is a Friday): the weekend sits inside the 3-day spans.
const recorded = generateRecordedDay({ seed: 11, from: Date.UTC(2026, 10, 13, 14), to: Date.UTC(2026, 10, 16, 4), peakTicksPerMinute: 4 });
// A few more outages than the generator's, so spans break and recover.
const dropRng = new Rng(5);
const candles = recorded.candles.filter(() => dropRng.next() > 0.004);

const pipelineConfigs: Array<{ name: string; config: GatesConfig }> = [
  {
    name: 'two-hour spans every minute',
    config: gatesConfig({ EVAL_INTERVAL_SEC: 60, GATES_SPAN_DAYS: 2 / 24, SPAN_MIN_BARS: 60, SPAN_MAX_MISSING_BARS: 3, GATES_MIN_TRADES: 2, ECHO_MIN_REPETITIONS: 1, ECHO_HAZARD_MAX: 0.9, COOLDOWN_MISSES: 2, COOLDOWN_SEC: 900 }),
  },
  {
    name: 'three-day spans every five minutes',
    config: gatesConfig({ EVAL_INTERVAL_SEC: 300, GATES_SPAN_DAYS: 3, SPAN_MIN_BARS: 120, SPAN_MAX_MISSING_BARS: 40, GATES_MIN_TRADES: 3, ECHO_MIN_REPETITIONS: 1, ECHO_HAZARD_MAX: 1, COOLDOWN_MISSES: 3, COOLDOWN_SEC: 1800 }),
  },
];

function referenceTopology(gates: GatesConfig): Topology {
  const spanMs = gates.spanDays * DAY_MS;
  return featuresTopology(catalog, { params })
    .addProcessor('gates', () => new ReferenceGatesProcessor(gates, { decisions: 'gates-out', partial: 'partial-out' }), 'features')
    .addStateStore(GATES_SPAN_STORE, () => new WindowStore<SimBar>(GATES_SPAN_STORE, spanMs), 'gates')
    .addStateStore(GATES_STATE_STORE, () => new KeyValueStore<InstrumentGateState>(GATES_STATE_STORE), 'gates')
    .addSink('gates-out', TOPICS.gates.name, 'gates')
    .addSink('partial-out', TOPICS.gatesPartial.name, 'gates');
}

function runDriver(topology: Topology) {
  const d = new TopologyTestDriver(topology, { partitions: 3 });
  for (const t of recorded.ticks) d.pipeInput(TOPICS.ticks.name, t.instrument, { ...t }, t.ts);
  for (const c of candles) d.pipeInput(TOPICS.candles.name, c.instrument, { ...c }, c.ts);
  return { decisions: d.readOutput(TOPICS.gates.name).map((o) => o.value as GateDecision), partials: d.readOutput(TOPICS.gatesPartial.name).map((o) => o.value as GatesPartial) };
}

test('the evaluator with its caches decides exactly as the reference evaluator, decision by decision', () => {
  const all: GateDecision[] = [];
  for (const { name, config } of pipelineConfigs) {
    const fast = runDriver(signalTopology(catalog, { params, gates: config }));
    const ref = runDriver(referenceTopology(config));
    assert.equal(fast.decisions.length, ref.decisions.length, name);
    for (let i = 0; i < ref.decisions.length; i++) assert.deepStrictEqual(fast.decisions[i], ref.decisions[i], `${name}: decision ${i}`);
    assert.deepStrictEqual(fast.partials, ref.partials, name);
    // Each run covers what the caches could get wrong: passes and fails, broken spans, Calmars of both signs.
    const d = ref.decisions;
    assert.ok(d.length > 1500, `${name}: ${d.length} decisions`);
    assert.ok(d.some((x) => x.eligible) && d.some((x) => !x.eligible), `${name}: eligible and not`);
    assert.ok(d.some((x) => x.span_ok) && d.some((x) => !x.span_ok), `${name}: strict and broken spans`);
    assert.ok(d.some((x) => x.calmar < 0) && d.some((x) => x.calmar > 0), `${name}: Calmars of both signs`);
    all.push(...d);
  }
  for (const reason of ['span_integrity', 'session_closed', 'session_exit', 'min_trades', 'calmar', 'cooldown'] as const) {
    assert.ok(all.some((x) => x.reasons.includes(reason)), `some decisions fail ${reason}`);
  }
});

/** Candles and ticks in one time-ordered list (ticks first on equal times), for tasks fed by hand. */
const merged = [
  ...recorded.ticks.map((value) => ({ topic: TOPICS.ticks.name, key: value.instrument, value, ts: value.ts, order: 0 })),
  ...candles.map((value) => ({ topic: TOPICS.candles.name, key: value.instrument, value, ts: value.ts, order: 1 })),
].sort((a, b) => a.ts - b.ts || a.order - b.order);

interface TaskRun { task: Task; gates: GateDecision[]; changelog: Map<string, ChangelogWrite[]> }

function feed(run: TaskRun, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const r = merged[i]!;
    const out = run.task.process(r.topic, i, r.key, { ...r.value }, r.ts);
    for (const o of out.outputs) if (o.topic === TOPICS.gates.name) run.gates.push(o.value as GateDecision);
    // The stores' writes since the last drain, stream-time checkpoint included (the runner drains before each send).
    for (const c of run.task.drainChangelog()) {
      const list = run.changelog.get(c.store) ?? [];
      list.push(...c.writes);
      run.changelog.set(c.store, list);
    }
  }
}

test('a task restored mid-stream from the changelogs (cold caches) decides exactly as the task that kept running', () => {
  const { config } = pipelineConfigs[1]!;
  const topology = signalTopology(catalog, { params, gates: config });
  const warm: TaskRun = { task: new Task(topology, 0), gates: [], changelog: new Map() };
  const reference: TaskRun = { task: new Task(referenceTopology(config), 0), gates: [], changelog: new Map() };
  // Restore points: Friday during London/New York, Friday after the close (the weekend ahead), Monday in Tokyo.
  const cuts = [Date.UTC(2026, 10, 13, 16, 7), Date.UTC(2026, 10, 13, 21, 58), Date.UTC(2026, 10, 16, 1, 31)].map((t) => merged.findIndex((r) => r.ts >= t));
  let done = 0;
  const restoredRuns: TaskRun[] = [];
  for (const cut of [...cuts, merged.length]) {
    feed(warm, done, cut);
    feed(reference, done, cut);
    for (const run of restoredRuns) feed(run, done, cut);
    done = cut;
    if (cut === merged.length) break;
    // A new task over stores restored from everything the warm task logged so far.
    const task = new Task(topology, 0);
    for (const [store, writes] of warm.changelog) for (const w of writes) task.store(store).restore(w.key, w.value);
    task.init();
    restoredRuns.push({ task, gates: [], changelog: new Map() });
  }
  assert.deepStrictEqual(warm.gates, reference.gates, 'the warm task decides as the reference');
  assert.ok(warm.gates.length > 1000, `${warm.gates.length} decisions`);
  for (const [k, run] of restoredRuns.entries()) {
    const after = warm.gates.slice(warm.gates.length - run.gates.length);
    assert.ok(run.gates.length > 100, `restore ${k}: ${run.gates.length} decisions after it`);
    assert.deepStrictEqual(run.gates, after, `restore ${k}: the same decisions as the warm task`);
  }
});

test('bars replaced or arriving out of order (the cached span is rebuilt) give the reference decisions', () => {
  const config = gatesConfig({ EVAL_INTERVAL_SEC: 60, GATES_SPAN_DAYS: 0.05, SPAN_MIN_BARS: 10, SPAN_MAX_MISSING_BARS: 5, GATES_MIN_TRADES: 1, ECHO_MIN_REPETITIONS: 0, ECHO_HAZARD_MAX: 1 });
  const topology = (processor: () => Processor<GateFeature>) => new Topology()
    .addSource('in', TOPICS.features.name)
    .addProcessor('gates', processor, 'in')
    .addStateStore(GATES_SPAN_STORE, () => new WindowStore<SimBar>(GATES_SPAN_STORE, config.spanDays * DAY_MS), 'gates')
    .addStateStore(GATES_STATE_STORE, () => new KeyValueStore<InstrumentGateState>(GATES_STATE_STORE), 'gates')
    .addSink('gates-out', TOPICS.gates.name, 'gates')
    .addSink('partial-out', TOPICS.gatesPartial.name, 'gates');
  const children = { decisions: 'gates-out', partial: 'partial-out' };
  const rng = new Rng(3);
  const t0 = Date.UTC(2026, 0, 6, 9); // Tuesday, London open
  const features: GateFeature[] = [];
  let price = 1.2;
  for (let m = 0; m < 600; m++) {
    for (const instrument of ['EUR_USD', 'USD_JPY']) {
      price *= Math.exp(0.0008 * rng.normal());
      let ts = t0 + m * M1;
      const u = rng.next();
      if (m > 20 && u < 0.03) ts -= (1 + rng.int(4)) * M1; // a bar again (a replacement) or one that was skipped (out of order)
      features.push({ instrument, ts, close: price, signal: [-1, 0, 1][rng.int(3)]!, spread_bps: rng.next() < 0.1 ? null : rng.next(), repetition: 2, hazard: 0.4 });
    }
  }
  const run = (processor: () => Processor<GateFeature>) => {
    const d = new TopologyTestDriver(topology(processor));
    for (const f of features) d.pipeInput(TOPICS.features.name, f.instrument, f, f.ts);
    return d.readOutput(TOPICS.gates.name).map((o) => o.value as GateDecision);
  };
  const fast = run(() => new GatesProcessor(config, children));
  const ref = run(() => new ReferenceGatesProcessor(config, children));
  assert.ok(ref.length > 1000 && ref.some((x) => x.eligible) && ref.some((x) => !x.span_ok));
  assert.deepStrictEqual(fast, ref);
});
