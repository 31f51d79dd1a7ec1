import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canaryReport, canaryReportJson, canaryReportMarkdown, CANARY_REASONS, DEFAULT_CANARY_THRESHOLDS, LISTED_FLIPS, parseCanaryThresholds,
  type CanaryAllocation, type CanaryGate, type CanaryMarkout, type CanaryMeta, type CanaryOutputs, type CanaryThresholds,
} from '../../../connectors/replay/canary-report.ts';
import { ConfigError, UsageError } from '../../../streams/runtime/errors.ts';
import { rng } from '../../support/random.ts';

const MIN = 60_000;
const T0 = Date.parse('2026-11-13T00:00:00Z');

const meta = (from = T0, to = T0 + 1000 * MIN, config: { blue?: Record<string, string>; green?: Record<string, string> } = {}): CanaryMeta => ({
  from, to,
  blue: { runId: 'canary-blue', configHash: 'b1', config: config.blue ?? {} },
  green: { runId: 'canary-green', configHash: 'g1', config: config.green ?? {} },
});
const gate = (instrument: string, ts: number, eligible: boolean): CanaryGate => ({ instrument, ts, eligible, reasons: eligible ? [] : ['calmar'] });
const alloc = (seq: number, ts: number, weights: Record<string, number>, kill_switch = false): CanaryAllocation => ({
  seq, ts, kill_switch, stale: false, weights: Object.entries(weights).map(([instrument, weight]) => ({ instrument, weight })),
});
/** n fills of one instrument, each with a markout of `bps` at every horizon in `horizons`; `color` is what the record says (the executor's colour). */
const markouts = (instrument: string, n: number, bps: number, horizons = [200, 500], color: 'blue' | 'green' = 'blue'): (CanaryMarkout & { color: string })[] =>
  Array.from({ length: n }, (_, k) => horizons.map((horizon_ms) => ({ cid: `${instrument}-${k}`, instrument, fill_ts: T0 + k * 1000, horizon_ms, markout_bps: bps, color }))).flat();
const outputs = (o: Partial<CanaryOutputs> = {}): CanaryOutputs => ({ gates: o.gates ?? [], allocations: o.allocations ?? [], markouts: o.markouts ?? [] });
/** Gate decisions of one instrument every minute from T0: the first `rejected` ineligible, the rest eligible. */
const gateRun = (n: number, rejected: number, instrument = 'EUR_USD') => Array.from({ length: n }, (_, k) => gate(instrument, T0 + k * MIN, k >= rejected));

test('identical runs pass with zero drift, no flips and zero markout deltas; small markout samples are insufficient_sample, not a failure', () => {
  const run = outputs({
    gates: [...gateRun(300, 30), ...gateRun(300, 0, 'GBP_USD')],
    allocations: [alloc(1, T0, { EUR_USD: 0.1, GBP_USD: 0.05 }), alloc(2, T0 + 30 * MIN, { EUR_USD: 0.08 })],
    markouts: [...markouts('EUR_USD', 60, 0.7), ...markouts('GBP_USD', 10, -0.3)],
  });
  const r = canaryReport(meta(), run, run, DEFAULT_CANARY_THRESHOLDS);
  assert.equal(r.decision, 'PASS');
  assert.deepEqual(r.reasons, []);
  assert.equal(r.drift.status, 'evaluated');
  assert.equal(r.drift.mean_pct, 0);
  assert.equal(r.drift.max_pct, 0);
  assert.deepEqual(r.drift.decisions, { blue: 2, green: 2 });
  assert.equal(r.gates.flips, 0);
  assert.equal(r.gates.aligned, 600);
  assert.equal(r.gates.reject_delta, 0);
  assert.equal(r.gates.status, 'evaluated');
  const [eur, gbp] = r.markout.instruments;
  assert.equal(eur!.status, 'pass');
  assert.deepEqual(eur!.horizons.filter((h) => h.cap_bps !== null).map((h) => [h.horizon_ms, h.samples_blue, h.samples_green, h.delta_bps]), [[200, 60, 60, 0], [500, 60, 60, 0]]);
  assert.equal(gbp!.status, 'insufficient_sample');
  assert.deepEqual(r.markout.insufficient_sample, ['GBP_USD']);
  assert.deepEqual(r.config_diff, []);
  assert.match(canaryReportMarkdown(r), /^# Canary replay: PASS\n/);
});

test('drift: the hand-computed time-weighted mean L1 of the weights in force, a missing instrument weighing 0', () => {
  // Blue holds A 10 %, B 10 % from minute 10. Green holds A 10 %, B 5 % from minute 10, then only A 20 % from minute 40.
  // [10, 40): |ΔB| = 5 % → L1 5 %; [40, 100): |ΔA| = 10 %, |ΔB| = 10 % → L1 20 %. Mean over [10, 100) = (5·30 + 20·60) / 90 = 15 %.
  const blue = outputs({ allocations: [alloc(1, T0 + 10 * MIN, { A_A: 0.1, B_B: 0.1 })] });
  const green = outputs({ allocations: [alloc(1, T0 + 10 * MIN, { A_A: 0.1, B_B: 0.05 }), alloc(2, T0 + 40 * MIN, { A_A: 0.2 })] });
  const window = meta(T0, T0 + 100 * MIN);
  const r = canaryReport(window, blue, green, DEFAULT_CANARY_THRESHOLDS);
  assert.equal(r.drift.points, 2);
  assert.equal(r.drift.start, T0 + 10 * MIN);
  assert.equal(r.drift.mean_pct, 15);
  assert.equal(r.drift.max_pct, 20);
  assert.equal(r.drift.max_at, T0 + 40 * MIN);
  assert.deepEqual(r.drift.instruments, [
    { instrument: 'A_A', mean_abs_delta_pct: 6.666667, max_abs_delta_pct: 10, max_at: T0 + 40 * MIN }, // 10·60/90
    { instrument: 'B_B', mean_abs_delta_pct: 8.333333, max_abs_delta_pct: 10, max_at: T0 + 40 * MIN }, // (5·30 + 10·60)/90
  ]);
  assert.deepEqual(r.reasons, ['rollout_drift']);
  // The cap is exclusive: a mean of exactly drift_cap_pct passes.
  assert.deepEqual(canaryReport(window, blue, green, { ...DEFAULT_CANARY_THRESHOLDS, driftCapPct: 15 }).reasons, []);

  // From minute 20, the decisions of minute 10 are in force at `from`: (5·20 + 20·60) / 80 = 16.25 %.
  const late = canaryReport(meta(T0 + 20 * MIN, T0 + 100 * MIN), blue, green, DEFAULT_CANARY_THRESHOLDS);
  assert.equal(late.drift.start, T0 + 20 * MIN);
  assert.equal(late.drift.mean_pct, 16.25);
  assert.deepEqual(late.drift.decisions, { blue: 0, green: 1 }, 'only decisions inside [from, to) are counted');
  assert.equal(late.runs.green.outside_window, 1);

  // Two decisions at one ts: the higher seq is in force.
  const twice = canaryReport(window, blue, outputs({ allocations: [alloc(2, T0 + 10 * MIN, { A_A: 0.1, B_B: 0.1 }), alloc(1, T0 + 10 * MIN, { A_A: 0.5 })] }), DEFAULT_CANARY_THRESHOLDS);
  assert.equal(twice.drift.mean_pct, 0);
});

test('drift with no allocation decision in either run says so and is not a failure', () => {
  const r = canaryReport(meta(), outputs(), outputs(), DEFAULT_CANARY_THRESHOLDS);
  assert.equal(r.drift.status, 'no_decisions');
  assert.equal(r.drift.mean_pct, null);
  assert.equal(r.decision, 'PASS');
  assert.match(canaryReportMarkdown(r), /No allocation decisions in either run/);
});

test('gate flips are counted by direction and listed by ts then instrument, at most LISTED_FLIPS of them', () => {
  const blue: CanaryGate[] = [];
  const green: CanaryGate[] = [];
  for (let k = 0; k < 15; k++) {
    const ts = T0 + k * MIN;
    blue.push(gate('GBP_USD', ts, true), gate('EUR_USD', ts, false));
    green.push(gate('GBP_USD', ts, false), gate('EUR_USD', ts, k % 3 === 0)); // GBP: 15 flips to ineligible; EUR: 5 to eligible
  }
  blue.push(gate('USD_JPY', T0, true));
  green.push(gate('USD_JPY', T0 + 1, true), gate('USD_JPY', T0 + 2, true)); // not aligned: one only in blue, two only in green
  const r = canaryReport(meta(), outputs({ gates: blue }), outputs({ gates: green }), DEFAULT_CANARY_THRESHOLDS);
  assert.equal(r.gates.flips, 20);
  assert.equal(r.gates.became_ineligible, 15);
  assert.equal(r.gates.became_eligible, 5);
  assert.deepEqual([r.gates.only_blue, r.gates.only_green, r.gates.aligned], [1, 2, 30]);
  assert.deepEqual(r.gates.instruments.map((i) => [i.instrument, i.flips, i.became_eligible, i.became_ineligible, i.only_blue, i.only_green, i.first_flip_ts]), [
    ['EUR_USD', 5, 5, 0, 0, 0, T0],
    ['GBP_USD', 15, 0, 15, 0, 0, T0],
    ['USD_JPY', 0, 0, 0, 1, 2, null],
  ]);
  assert.equal(r.gates.listed_flips.length, LISTED_FLIPS);
  assert.deepEqual(r.gates.listed_flips.slice(0, 4).map((f) => [f.ts - T0, f.instrument, f.green_eligible]), [[0, 'EUR_USD', true], [0, 'GBP_USD', false], [MIN, 'GBP_USD', false], [2 * MIN, 'GBP_USD', false]]);
  assert.deepEqual(r.gates.listed_flips[1]!.green_reasons, ['calmar']);
  const last = r.gates.listed_flips.at(-1)!;
  assert.equal(last.ts, T0 + 14 * MIN, '20 flips in all, so the 20th is the last one, at minute 14');
});

test('reject_delta_exceeds only when both runs have min_sample_gates decisions; exactly max_reject_delta passes', () => {
  // Blue rejects 10 of n, green 20 of n: delta 0.05 at n = 200.
  const at = (n: number, greenRejected: number) => canaryReport(meta(), outputs({ gates: gateRun(n, 10) }), outputs({ gates: gateRun(n, greenRejected) }), DEFAULT_CANARY_THRESHOLDS);
  const enough = at(200, 20);
  assert.equal(enough.gates.status, 'evaluated');
  assert.deepEqual(enough.gates.reject_rate, { blue: 0.05, green: 0.1 });
  assert.equal(enough.gates.reject_delta, 0.05);
  assert.deepEqual(enough.reasons, ['reject_delta_exceeds']);

  const few = at(199, 20);
  assert.equal(few.gates.status, 'insufficient_sample');
  assert.ok(few.gates.reject_delta! > 0.02);
  assert.deepEqual(few.reasons, []);
  assert.match(canaryReportMarkdown(few), /reject delta: insufficient sample \(blue 199, green 199 gate decisions; min_sample_gates 200 each\)/);

  assert.equal(at(200, 14).gates.reject_delta, 0.02);
  assert.deepEqual(at(200, 14).reasons, []);
  assert.deepEqual(at(200, 15).reasons, ['reject_delta_exceeds']);
  // A lower guard from the thresholds file applies.
  const low = parseCanaryThresholds({ canary_gate: { min_sample_gates: 100 } }, 'canary.json');
  assert.deepEqual(canaryReport(meta(), outputs({ gates: gateRun(150, 10) }), outputs({ gates: gateRun(150, 20) }), low).reasons, ['reject_delta_exceeds']);
});

test('markout breach: the blue run counts as blue and the green run as green whatever the records say, with hints and per-symbol caps', () => {
  // Both runs replay the same executor fills, whose records all say "blue".
  const blue = outputs({ markouts: markouts('EUR_USD', 50, 1.0) });
  const green = outputs({ markouts: markouts('EUR_USD', 50, 0.2) }); // delta −0.8 < −0.5 at 200 and 500 ms
  const r = canaryReport(meta(), blue, green, DEFAULT_CANARY_THRESHOLDS);
  assert.deepEqual(r.reasons, ['markout_delta_exceeds']);
  assert.deepEqual(r.hints, ['markout_green_worse_200ms', 'markout_green_worse_500ms']);
  assert.deepEqual(r.markout.breached, ['EUR_USD']);
  assert.deepEqual(r.markout.instruments[0]!.horizons.slice(0, 2).map((h) => [h.samples_blue, h.samples_green, h.avg_bps_blue, h.avg_bps_green, h.delta_bps, h.cap_bps, h.breach]), [
    [50, 50, 1, 0.2, -0.8, 0.5, true], [50, 50, 1, 0.2, -0.8, 0.5, true],
  ]);

  const looser = parseCanaryThresholds({ canary_gate_per_symbol: { EUR_USD: { markout_cap_bps_200: 1.0 } } }, 'canary.json');
  const r2 = canaryReport(meta(), blue, green, looser);
  assert.deepEqual(r2.hints, ['markout_green_worse_500ms'], 'the per-symbol cap at 200 ms is 1.0, 500 ms keeps the global 0.5');
  const global = parseCanaryThresholds({ canary_gate: { markout_cap_bps_200: 0.9, markout_cap_bps_500: 0.9 } }, 'canary.json');
  assert.deepEqual(canaryReport(meta(), blue, green, global).reasons, []);
  assert.deepEqual(canaryReport(meta(), blue, outputs({ markouts: markouts('EUR_USD', 49, 0.2) }), DEFAULT_CANARY_THRESHOLDS).markout.instruments[0]!.status, 'insufficient_sample');
});

test('several reasons come out unique and in the seed order: killswitch_fired, rollout_drift, reject_delta_exceeds, markout_delta_exceeds', () => {
  const blue = outputs({
    gates: gateRun(200, 0),
    allocations: [alloc(1, T0, { EUR_USD: 0.1, GBP_USD: 0.1 })],
    markouts: [...markouts('EUR_USD', 50, 1), ...markouts('GBP_USD', 50, 1)],
  });
  const green = outputs({
    gates: gateRun(200, 50),
    allocations: [alloc(1, T0, {}, true), alloc(2, T0 + MIN, {}, true)],
    markouts: [...markouts('EUR_USD', 50, -1), ...markouts('GBP_USD', 50, -1)], // two instruments breach: one reason
  });
  const r = canaryReport(meta(), blue, green, DEFAULT_CANARY_THRESHOLDS);
  assert.deepEqual(r.reasons, ['killswitch_fired', 'rollout_drift', 'reject_delta_exceeds', 'markout_delta_exceeds']);
  assert.deepEqual(r.reasons, CANARY_REASONS.filter((x) => r.reasons.includes(x)));
  assert.equal(r.decision, 'FAIL');
  const md = canaryReportMarkdown(r);
  assert.match(md, /^# Canary replay: FAIL\n/);
  const at = (s: string) => md.indexOf(s);
  assert.ok(at('1. `killswitch_fired`') > 0 && at('1. `killswitch_fired`') < at('2. `rollout_drift`') && at('2. `rollout_drift`') < at('3. `reject_delta_exceeds`')
    && at('3. `reject_delta_exceeds`') < at('4. `markout_delta_exceeds`') && at('4. `markout_delta_exceeds`') < at('## Allocation drift'), md);
  assert.match(md, /`killswitch_fired`: decisions with the kill switch on: green 2, blue 0\./);
  assert.match(md, /`markout_delta_exceeds`: EUR_USD at 200 ms: delta -2 bps < -0\.5 bps; EUR_USD at 500 ms: delta -2 bps < -0\.5 bps; GBP_USD at 200 ms/);
  // Blue having as many kill-switch decisions is no killswitch_fired.
  assert.ok(!canaryReport(meta(), green, green, DEFAULT_CANARY_THRESHOLDS).reasons.includes('killswitch_fired'));
});

test('records in another order, or delivered twice, give byte-identical JSON and Markdown', () => {
  const rand = rng(11);
  const instruments = ['EUR_USD', 'GBP_USD', 'USD_JPY'];
  const run = (flipRate: number, bias: number): CanaryOutputs => ({
    gates: instruments.flatMap((i) => Array.from({ length: 120 }, (_, k) => gate(i, T0 + k * MIN, rand() > flipRate))),
    allocations: Array.from({ length: 40 }, (_, k) => alloc(k + 1, T0 + k * 2 * MIN, Object.fromEntries(instruments.map((i) => [i, Math.round(rand() * 1000) / 10_000])), rand() < 0.05)),
    markouts: instruments.flatMap((i) => markouts(i, 60, 0).map((m) => ({ ...m, markout_bps: (rand() - 0.5) * 4 + bias }))),
  });
  const blue = run(0.3, 0);
  const green = run(0.35, -0.3);
  const shuffle = <T>(xs: readonly T[]): T[] => {
    const out = [...xs];
    for (let k = out.length - 1; k > 0; k--) {
      const j = Math.floor(rand() * (k + 1));
      [out[k], out[j]] = [out[j]!, out[k]!];
    }
    return out;
  };
  const mixed = (o: CanaryOutputs): CanaryOutputs => ({ gates: shuffle(o.gates), allocations: shuffle(o.allocations), markouts: shuffle(o.markouts) });
  const again = (o: CanaryOutputs): CanaryOutputs => ({ gates: [...o.gates, ...o.gates.slice(0, 7)], allocations: [o.allocations[3]!, ...o.allocations], markouts: [...o.markouts, ...o.markouts.slice(-5)] });
  const m = meta(T0, T0 + 100 * MIN, { blue: { GATES_SPAN_DAYS: '1' }, green: { GATES_SPAN_DAYS: '0.5', ALLOC_TOP_K: '3' } });
  const a = canaryReport(m, blue, green, DEFAULT_CANARY_THRESHOLDS);
  const b = canaryReport(m, mixed(blue), mixed(green), DEFAULT_CANARY_THRESHOLDS);
  assert.ok(a.gates.flips > 0 && a.drift.mean_pct! > 0 && a.gates.listed_flips.length === LISTED_FLIPS);
  assert.equal(canaryReportJson(b), canaryReportJson(a));
  assert.equal(canaryReportMarkdown(b), canaryReportMarkdown(a));
  // Records delivered twice count once: only the duplicate counts change.
  const c = canaryReport(m, mixed(again(blue)), mixed(again(green)), DEFAULT_CANARY_THRESHOLDS);
  assert.deepEqual([c.runs.blue.duplicates, a.runs.blue.duplicates], [13, 0]);
  assert.equal(canaryReportJson({ ...c, runs: a.runs }), canaryReportJson(a));
  assert.ok(canaryReportJson(a).endsWith('}\n'));
  assert.deepEqual(a.config_diff, [{ knob: 'ALLOC_TOP_K', blue: null, green: '3' }, { knob: 'GATES_SPAN_DAYS', blue: '1', green: '0.5' }]);
  assert.deepEqual(JSON.parse(canaryReportJson(a)), a, 'the JSON holds the report as it is, numbers already rounded');
});

test('thresholds: the seed shape is read over the defaults, used_thresholds reads back the same, and every bad key is named with its file and fix', () => {
  const t = parseCanaryThresholds({
    canary_gate: { drift_cap_pct: 3, max_reject_delta: 0.01, min_sample_gates: 500, markout_min_sample: 80, markout_cap_bps_200: 0.4 },
    canary_gate_per_symbol: { EUR_USD: { markout_cap_bps_500: 1.0 } },
  }, 'canary.json');
  assert.deepEqual([t.driftCapPct, t.maxRejectDelta, t.minSampleGates, t.markout.minSample], [3, 0.01, 500, 80]);
  const used = canaryReport(meta(), outputs(), outputs(), t).used_thresholds;
  assert.deepEqual(used, {
    canary_gate: { drift_cap_pct: 3, max_reject_delta: 0.01, min_sample_gates: 500, markout_min_sample: 80, markout_cap_bps_200: 0.4, markout_cap_bps_500: 0.5 },
    canary_gate_per_symbol: { EUR_USD: { markout_cap_bps_200: 0.4, markout_cap_bps_500: 1 } },
  });
  assert.deepEqual(canaryReport(meta(), outputs(), outputs(), parseCanaryThresholds(used, 'used.json')).used_thresholds, used);
  assert.deepEqual(parseCanaryThresholds({}, 'empty.json'), DEFAULT_CANARY_THRESHOLDS);

  const fails = (json: unknown, pattern: RegExp) => assert.throws(() => parseCanaryThresholds(json, 'th.json'), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, pattern);
    return true;
  });
  fails({ canary_gate: { drift_cap_pct: -1 } }, /^th\.json: canary_gate\.drift_cap_pct =-1: must be a number in \[0, 200\]/);
  fails({ canary_gate: { max_reject_delta: '0.02' } }, /th\.json: canary_gate\.max_reject_delta ="0\.02": must be a number in \[0, 1\]/);
  fails({ canary_gate: { min_sample_gates: 2.5 } }, /canary_gate\.min_sample_gates =2\.5: must be a whole number/);
  fails({ canary_gate: { drift_cap: 5 } }, /th\.json: canary_gate\.drift_cap is not a canary threshold; known: drift_cap_pct/);
  fails({ canary_gate: { max_latency_delta_ms: 50 } }, /canary_gate\.max_latency_delta_ms is a live-canary threshold .* remove it/);
  fails({ canary_gate: { markout_cap_bps_1000: 0.5 } }, /canary_gate\.markout_cap_bps_1000 names 1000 ms, which is not a gated markout horizon .* use one of markout_cap_bps_200, markout_cap_bps_500/);
  fails({ canary_gate_per_symbol: { EUR_USD: { drift_cap_pct: 3 } } }, /canary_gate_per_symbol\.EUR_USD\.drift_cap_pct cannot be set per symbol .* move it to canary_gate/);
  fails({ canary_gate_per_symbol: { eurusd: { markout_cap_bps_200: 1 } } }, /canary_gate_per_symbol\.eurusd is not an instrument name/);
  fails({ canary_gates: {} }, /th\.json: canary_gates is not a thresholds section/);
  fails([1], /th\.json: \(top level\) must be a JSON object/);
  // Every problem at once.
  assert.throws(() => parseCanaryThresholds({ canary_gate: { drift_cap_pct: 500, max_reject_delta: 2 } }, 'th.json'), (err: ConfigError) => err.problems.length === 2);
});

test('an empty or inverted window is a usage error', () => {
  assert.throws(() => canaryReport(meta(T0, T0), outputs(), outputs(), DEFAULT_CANARY_THRESHOLDS), UsageError);
  assert.throws(() => canaryReport(meta(T0 + 1, T0), outputs(), outputs(), DEFAULT_CANARY_THRESHOLDS), /--from before --to/);
});

test('records outside [from, to) are left out of every comparison', () => {
  const blue = outputs({ gates: [gate('EUR_USD', T0 - 1, true), gate('EUR_USD', T0, true)], markouts: markouts('EUR_USD', 1, 1) });
  const green = outputs({ gates: [gate('EUR_USD', T0 - 1, false), gate('EUR_USD', T0, true), gate('EUR_USD', T0 + 100 * MIN, false)], markouts: markouts('EUR_USD', 1, 1).map((m) => ({ ...m, fill_ts: T0 + 100 * MIN })) });
  const r = canaryReport(meta(T0, T0 + 100 * MIN), blue, green, DEFAULT_CANARY_THRESHOLDS as CanaryThresholds);
  assert.equal(r.gates.flips, 0);
  assert.deepEqual(r.gates.decisions, { blue: 1, green: 1 });
  assert.deepEqual(r.markout.markouts, { blue: 2, green: 0 });
  assert.deepEqual([r.runs.blue.outside_window, r.runs.green.outside_window], [1, 4]);
});
