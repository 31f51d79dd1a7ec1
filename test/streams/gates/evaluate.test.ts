import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { resolveGatesConfig, type GatesConfig, type GatesKnob } from '../../../streams/gates/config.ts';
import { decideGate, evaluateGate, initialGateState, type GateMetrics, type GateState } from '../../../streams/gates/evaluate.ts';
import type { SimBar } from '../../../streams/gates/simulate.ts';

const config = (explicit: Partial<Record<GatesKnob, unknown>> = {}): GatesConfig => resolveGatesConfig(explicit, {}).config;
const DEFAULTS = config();
const NOW = Date.parse('2024-01-08T12:00:00Z'); // a winter Monday, London open
const MIN = 60_000;
const GOOD: GateMetrics = { trades: 20, calmar: 1, spanOk: true, sessionOpen: true, minutesToClose: 600, repetition: 5, hazard: 0.3 };

/** Runs metrics through decideGate one minute apart, returning every decision and the final state. */
function run(steps: Partial<GateMetrics>[], start: GateState = initialGateState(), cfg = DEFAULTS, instrument = 'EUR_USD', t0 = NOW) {
  let state = start;
  const decisions = steps.map((s, i) => {
    const out = decideGate(instrument, t0 + i * MIN, { ...GOOD, ...s }, state, cfg);
    state = out.state;
    return out.decision;
  });
  return { decisions, state, last: decisions[decisions.length - 1]! };
}
const eligibleState = (): GateState => run([{}]).state;

test('a decision has exactly the fields of gates.v1 and is valid Avro', () => {
  const schema = JSON.parse(readFileSync(new URL('../../../schemas/avro/gate.avsc', import.meta.url), 'utf8'));
  const { last } = run([{}]);
  assert.deepEqual(Object.keys(last), schema.fields.map((f: { name: string }) => f.name));
  assert.ok(avro.Type.forSchema(schema).isValid(last));
  assert.deepEqual(last, {
    instrument: 'EUR_USD', ts: NOW, eligible: true, raw_pass: true, trades: 20, calmar: 1, buf: 0.1, repetition: 5, hazard: 0.3,
    span_ok: true, session_open: true, cooldown_until: null, consecutive_misses: 0, reasons: [],
  });
});

test('reasons come in rule order; missing echo metrics are reported as 0 and 1', () => {
  const { last } = run([{ spanOk: false, sessionOpen: false, minutesToClose: 0, trades: 3, calmar: -2, repetition: null, hazard: null }]);
  assert.deepEqual(last.reasons, ['span_integrity', 'session_closed', 'min_trades', 'calmar', 'echo_repetition', 'echo_hazard']);
  assert.equal(last.repetition, 0);
  assert.equal(last.hazard, 1);
  assert.equal(last.raw_pass, false);
});

test('min trades: 9 fails, 10 passes', () => {
  assert.deepEqual(run([{ trades: 9 }]).last.reasons, ['min_trades']);
  assert.equal(run([{ trades: 10 }]).last.eligible, true);
});

test('echo gates: repetition ≥ 3 and hazard ≤ 0.70 pass, one step beyond fails', () => {
  assert.deepEqual(run([{ repetition: 2 }]).last.reasons, ['echo_repetition']);
  assert.equal(run([{ repetition: 3 }]).last.eligible, true);
  assert.deepEqual(run([{ hazard: 0.71 }]).last.reasons, ['echo_hazard']);
  assert.equal(run([{ hazard: 0.7 }]).last.eligible, true);
  assert.deepEqual(run([{ hazard: NaN }]).last.reasons, ['echo_hazard']);
  assert.deepEqual(run([{ repetition: 1 }], initialGateState(), config({ ECHO_MIN_REPETITIONS: 2 })).last.reasons, ['echo_repetition']);
});

test('session exit: within 5 minutes of the close (inclusive) the instrument is ineligible', () => {
  assert.deepEqual(run([{ minutesToClose: 5 }]).last.reasons, ['session_exit']);
  assert.equal(run([{ minutesToClose: 5 }]).last.raw_pass, false);
  assert.equal(run([{ minutesToClose: 5.5 }]).last.eligible, true);
  assert.equal(run([{ minutesToClose: 5 }], initialGateState(), config({ SESSION_EXIT_MINUTES: 2 })).last.eligible, true);
});

test('hysteresis entry: a not-eligible instrument enters only at floor·(1+buf) = 0.165', () => {
  const below = run([{ calmar: 0.164 }]).last;
  assert.deepEqual({ raw: below.raw_pass, eligible: below.eligible, reasons: below.reasons }, { raw: true, eligible: false, reasons: ['calmar'] });
  assert.equal(run([{ calmar: 0.165 }]).last.eligible, true);
});

test('hysteresis exit: an eligible instrument stays down to floor·(1−buf) = 0.135 and leaves below it', () => {
  const held = run([{ calmar: 0.135 }], eligibleState()).last;
  assert.deepEqual({ raw: held.raw_pass, eligible: held.eligible, reasons: held.reasons }, { raw: false, eligible: true, reasons: [] });
  const left = run([{ calmar: 0.1349 }], eligibleState());
  assert.deepEqual(left.last.reasons, ['calmar']);
  assert.equal(left.state.eligible, false);
  // Once out it needs the entry threshold again: 0.16 is no longer enough.
  assert.equal(run([{ calmar: 0.1349 }, { calmar: 0.16 }], eligibleState()).last.eligible, false);
});

test('per-pair buffers: USD_CHF at 0.30 needs 0.195 to enter while EUR_USD at the default enters at 0.19', () => {
  const cfg = config({ HYSTERESIS_PAIR_JSON: '{"USD_CHF": 0.3}' });
  const chf = run([{ calmar: 0.19 }], initialGateState(), cfg, 'USD_CHF').last;
  assert.deepEqual({ eligible: chf.eligible, buf: chf.buf }, { eligible: false, buf: 0.3 });
  assert.equal(run([{ calmar: 0.195 }], initialGateState(), cfg, 'USD_CHF').last.eligible, true);
  const eur = run([{ calmar: 0.19 }], initialGateState(), cfg, 'EUR_USD').last;
  assert.deepEqual({ eligible: eur.eligible, buf: eur.buf }, { eligible: true, buf: 0.1 });
  // …and USD_CHF holds down to 0.105.
  assert.equal(run([{ calmar: 0.106 }], run([{}], initialGateState(), cfg, 'USD_CHF').state, cfg, 'USD_CHF').last.eligible, true);
});

test('a buffer override of 0 removes the hysteresis band', () => {
  const cfg = config({ HYSTERESIS_PAIR_JSON: { EUR_USD: 0 } });
  assert.equal(run([{ calmar: 0.15 }], initialGateState(), cfg).last.eligible, true);
  assert.equal(run([{ calmar: 0.1499 }], eligibleState(), cfg).last.eligible, false);
});

test('cooldown after exactly 4 consecutive misses: 2 h ineligible, counters reset', () => {
  const miss = { calmar: 0.1 };
  const three = run([{}, miss, miss, miss]);
  assert.equal(three.state.consecutiveMisses, 3);
  assert.equal(three.state.cooldownUntil, null);
  assert.deepEqual(three.decisions.map((d) => d.consecutive_misses), [0, 1, 2, 3]);

  const four = run([{}, miss, miss, miss, miss]);
  const started = NOW + 4 * MIN;
  assert.deepEqual({ eligible: four.last.eligible, reasons: four.last.reasons, misses: four.last.consecutive_misses, until: four.last.cooldown_until },
    { eligible: false, reasons: ['calmar', 'cooldown'], misses: 4, until: started + 7200 * 1000 });
  assert.deepEqual(four.state, { eligible: false, consecutiveMisses: 0, cooldownUntil: started + 7_200_000, passes: 0, fails: 0 });
});

test('during the cooldown the reason is cooldown and the state does not move; at expiry counting starts afresh', () => {
  const cooled = run([{}, { calmar: 0.1 }, { calmar: 0.1 }, { calmar: 0.1 }, { calmar: 0.1 }]).state;
  const until = cooled.cooldownUntil!;
  const during = decideGate('EUR_USD', until - 1, GOOD, cooled, DEFAULTS);
  assert.deepEqual({ eligible: during.decision.eligible, reasons: during.decision.reasons, until: during.decision.cooldown_until }, { eligible: false, reasons: ['cooldown'], until });
  assert.deepEqual(during.state, cooled);

  const after = decideGate('EUR_USD', until, GOOD, cooled, DEFAULTS);
  assert.deepEqual({ eligible: after.decision.eligible, until: after.decision.cooldown_until, reasons: after.decision.reasons }, { eligible: true, until: null, reasons: [] });
  assert.deepEqual(after.state, { eligible: true, consecutiveMisses: 0, cooldownUntil: null, passes: 1, fails: 0 });
  // Afresh means not eligible before: the entry threshold applies.
  assert.equal(decideGate('EUR_USD', until, { ...GOOD, calmar: 0.16 }, cooled, DEFAULTS).decision.eligible, false);
});

test('COOLDOWN_MISSES and COOLDOWN_SEC are honoured', () => {
  const cfg = config({ COOLDOWN_MISSES: 2, COOLDOWN_SEC: 60 });
  const r = run([{}, { trades: 0 }, { trades: 0 }], initialGateState(), cfg);
  assert.equal(r.last.cooldown_until, NOW + 2 * MIN + 60_000);
});

test('a miss is a fail of an instrument in play: one never eligible never cools down', () => {
  const idle = run(Array.from({ length: 10 }, () => ({ calmar: -1 })));
  assert.deepEqual(idle.state, { eligible: false, consecutiveMisses: 0, cooldownUntil: null, passes: 0, fails: 10 });
  assert.ok(idle.decisions.every((d) => !d.reasons.includes('cooldown')));
});

test('a pass ends the run of misses', () => {
  const r = run([{}, { trades: 0 }, { trades: 0 }, { trades: 0 }, {}, { trades: 0 }]);
  assert.equal(r.state.consecutiveMisses, 1);
  assert.equal(r.state.cooldownUntil, null);
  assert.deepEqual({ passes: r.state.passes, fails: r.state.fails }, { passes: 2, fails: 4 });
});

test('an instrument that dropped out stays in play until it passes again, even below the entry threshold', () => {
  // Out at 0.1, then 0.16 (raw pass, but below the 0.165 entry): still misses.
  const r = run([{}, { calmar: 0.1 }, { calmar: 0.16 }, { calmar: 0.16 }, { calmar: 0.16 }]);
  assert.deepEqual(r.last.reasons, ['calmar', 'cooldown']);
  assert.equal(r.last.raw_pass, true);
});

test('closed-market evaluations neither count nor clear eligibility', () => {
  const closed = { sessionOpen: false, minutesToClose: 0, calmar: 0.14 };
  const r = run([{}, closed, closed, closed, closed, closed, { minutesToClose: 3 }, { calmar: 0.14 }]);
  assert.deepEqual(r.decisions.slice(1, 6).map((d) => d.reasons), Array(5).fill(['session_closed']));
  assert.deepEqual(r.decisions[6]!.reasons, ['session_exit']);
  // The latch survived the night: 0.14 is inside the band of an eligible instrument.
  assert.equal(r.last.eligible, true);
  assert.deepEqual(r.state, { eligible: true, consecutiveMisses: 0, cooldownUntil: null, passes: 2, fails: 0 });
});

test('a cooldown keeps running over a closed market and expires on stream time', () => {
  const cooled = run([{}, { calmar: 0 }, { calmar: 0 }, { calmar: 0 }, { calmar: 0 }]).state;
  const closedDuring = decideGate('EUR_USD', cooled.cooldownUntil! - 1, { ...GOOD, sessionOpen: false, minutesToClose: 0 }, cooled, DEFAULTS);
  assert.deepEqual(closedDuring.decision.reasons, ['session_closed', 'cooldown']);
  const closedAfter = decideGate('EUR_USD', cooled.cooldownUntil!, { ...GOOD, sessionOpen: false, minutesToClose: 0 }, cooled, DEFAULTS);
  assert.deepEqual(closedAfter.decision.reasons, ['session_closed']);
  assert.deepEqual(closedAfter.state, initialGateState());
});

// ---- measured from bars -------------------------------------------------------

/** M1 bars closing every minute up to `now`, prices drifting by `drift` per bar, long 4 bars then flat 1 (one entry per 5 bars). */
function trendBars(n: number, drift: number, now = NOW): SimBar[] {
  return Array.from({ length: n }, (_, i) => ({ ts: now - (n - 1 - i) * MIN, close: 1.1 * (1 + drift) ** i, signal: i % 5 === 4 ? 0 : 1, spread_bps: 0.5 }));
}
const SHORT_SPAN = config({ GATES_SPAN_DAYS: 0.1, SPAN_MIN_BARS: 100 }); // 144 minutes
const input = (bars: SimBar[]) => ({ instrument: 'EUR_USD', now: NOW, bars, repetition: 5, hazard: 0.3 });

test('from bars: a rising market with a long signal passes every gate', () => {
  const e = evaluateGate(input(trendBars(144, 1e-4)), undefined, SHORT_SPAN);
  assert.equal(e.decision.trades, 29);
  assert.ok(e.decision.calmar > 0.165, `calmar ${e.decision.calmar}`);
  assert.deepEqual({ eligible: e.decision.eligible, reasons: e.decision.reasons, span: e.span.missingBars }, { eligible: true, reasons: [], span: 0 });
});

test('from bars: a falling market fails on Calmar, a hole in the bars on span integrity', () => {
  assert.deepEqual(evaluateGate(input(trendBars(144, -1e-4)), undefined, SHORT_SPAN).decision.reasons, ['calmar']);
  const holed = trendBars(144, 1e-4).filter((_, i) => i < 60 || i >= 71);
  const e = evaluateGate(input(holed), undefined, SHORT_SPAN);
  assert.equal(e.span.missingBars, 11);
  assert.deepEqual(e.decision.reasons, ['span_integrity']);
  assert.equal(e.decision.span_ok, false);
});

test('from bars: bars outside (now − span, now] are ignored', () => {
  const inside = trendBars(144, 1e-4);
  const outside: SimBar[] = [
    { ts: NOW - 200 * MIN, close: 5, signal: -1, spread_bps: 500 },
    ...inside,
    { ts: NOW + MIN, close: 0.1, signal: 1, spread_bps: 500 },
  ];
  assert.deepEqual(evaluateGate(input(outside), undefined, SHORT_SPAN), evaluateGate(input(inside), undefined, SHORT_SPAN));
});

test('from bars: the session comes from the calendar at `now`', () => {
  const saturday = Date.parse('2024-01-13T12:00:00Z');
  const e = evaluateGate({ ...input(trendBars(144, 1e-4, saturday)), now: saturday }, undefined, SHORT_SPAN);
  assert.equal(e.decision.session_open, false);
  assert.deepEqual(e.decision.reasons, ['session_closed']);
  const nearClose = Date.parse('2024-01-08T21:57:00Z');
  assert.deepEqual(evaluateGate({ ...input(trendBars(144, 1e-4, nearClose)), now: nearClose }, undefined, SHORT_SPAN).decision.reasons, ['session_exit']);
});

test('deterministic, and the state survives a JSON round trip', () => {
  const a = evaluateGate(input(trendBars(144, 1e-4)), undefined, SHORT_SPAN);
  const b = evaluateGate(input(trendBars(144, 1e-4)), undefined, SHORT_SPAN);
  assert.deepEqual(a, b);
  const cooled = run([{}, { calmar: 0 }, { calmar: 0 }, { calmar: 0 }, { calmar: 0 }]).state;
  assert.deepEqual(JSON.parse(JSON.stringify(cooled)), cooled);
});
