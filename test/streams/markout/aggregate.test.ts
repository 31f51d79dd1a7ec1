import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addMarkout, adverseFillRates, aggregateRows, avgBps, bpsToInt, deltaBps, emptyAggregate, markoutGate, markoutGates, snapshotJson,
  type InstrumentAggregate,
} from '../../../streams/markout/aggregate.ts';
import { DEFAULT_MARKOUT_CONFIG, resolveMarkoutConfig } from '../../../streams/markout/config.ts';
import type { Color } from '../../../streams/model/records.ts';
import { rng } from '../../support/random.ts';

const m = (horizon_ms: number, color: Color, markout_bps: number) => ({ horizon_ms, color, markout_bps });


test('fixed point: round(bps · 1e4) half away from zero, sums exact where floating point drifts and beyond 2^53, in any order', () => {
  assert.equal(bpsToInt(1.23456), 12346n);
  assert.equal(bpsToInt(-1.23456), -12346n);
  assert.equal(bpsToInt(0.00004), 0n);
  assert.equal(bpsToInt(-0.00004), 0n);
  for (const x of [0.00005, 0.00015, 2.5e-4, 1.00005]) assert.equal(bpsToInt(-x), -bpsToInt(x), String(x));
  assert.throws(() => bpsToInt(NaN), RangeError);

  const a = emptyAggregate();
  for (let i = 0; i < 10; i++) addMarkout(a, m(200, 'blue', 0.1));
  assert.notEqual(Array.from({ length: 10 }, () => 0.1).reduce((s, x) => s + x, 0), 1); // the float sum is 0.9999999999999999
  assert.deepEqual(a.cells['200']!.blue, { count: 10, sum_bps_int: '10000', up: 10, down: 0 });
  assert.equal(avgBps(a.cells['200']!.blue!.sum_bps_int, 10), 0.1);

  // 3 · 1e12 bps (1e16 each) + 1e-4 bps (1): 30000000000000001 has no double.
  const values = [1e12, 1e12, 1e12, 1e-4, -0.5, 0.5];
  const forward = emptyAggregate();
  const backward = emptyAggregate();
  for (const v of values) addMarkout(forward, m(500, 'green', v));
  for (const v of [...values].reverse()) addMarkout(backward, m(500, 'green', v));
  assert.equal(forward.cells['500']!.green!.sum_bps_int, '30000000000000001');
  assert.ok(!Number.isSafeInteger(30000000000000001));
  assert.deepEqual(backward, forward);
  // A state-store round trip keeps it exact.
  assert.deepEqual(JSON.parse(JSON.stringify(forward)), forward);
});

test('avg_bps and delta_bps round half away from zero to 6 decimals from the integers', () => {
  assert.equal(avgBps(5n, 1000), 0.000001); // 0.0000005 bps → 0.000001
  assert.equal(avgBps(-5n, 1000), -0.000001);
  assert.equal(avgBps(4n, 1000), 0); // 0.0000004 → 0
  assert.equal(avgBps('12345', 3), 0.4115); // 1.2345 / 3 = 0.41150
  assert.equal(avgBps('10000', 3), 0.333333);
  assert.equal(avgBps('20000', 3), 0.666667);
  assert.equal(avgBps('0', 0), null);
  // green avg 1/3 bps, blue avg 1 bps: −0.666667 (computed from 10000·3 − 30000·3 over 9, not from rounded averages).
  assert.equal(deltaBps({ count: 3, sum_bps_int: '10000' }, { count: 3, sum_bps_int: '30000' }), -0.666667);
  assert.equal(deltaBps({ count: 0, sum_bps_int: '0' }, { count: 3, sum_bps_int: '30000' }), null);
  assert.equal(deltaBps(undefined, { count: 3, sum_bps_int: '30000' }), null);
});

test('aggregate rows, up/down counts and adverse_fill_rate equal a direct recomputation from the markouts, in a fixed order', () => {
  const rand = rng(7);
  const instruments = ['USD_JPY', 'EUR_USD', 'GBP_USD'];
  const horizons = [...DEFAULT_MARKOUT_CONFIG.horizonsMs];
  const markouts: { instrument: string; horizon_ms: number; color: Color; markout_bps: number }[] = [];
  for (let i = 0; i < 20_000; i++) {
    const v = rand() < 0.05 ? 0 : (rand() - 0.55) * 20; // some exact zeros: neither up nor down nor adverse
    markouts.push({ instrument: instruments[Math.floor(rand() * 3)]!, horizon_ms: horizons[Math.floor(rand() * horizons.length)]!, color: rand() < 0.5 ? 'blue' : 'green', markout_bps: v });
  }
  const aggs = new Map<string, InstrumentAggregate>();
  for (const x of markouts) addMarkout(aggs.get(x.instrument) ?? aggs.set(x.instrument, emptyAggregate()).get(x.instrument)!, x);

  const rows = aggregateRows(aggs);
  // Direct: group and sum each markout's integer as the seed defines it.
  const direct = new Map<string, { count: number; sum: bigint; up: number; down: number; float: number }>();
  for (const x of markouts) {
    const k = `${x.horizon_ms}|${x.color}|${x.instrument}`;
    const d = direct.get(k) ?? direct.set(k, { count: 0, sum: 0n, up: 0, down: 0, float: 0 }).get(k)!;
    d.count++;
    d.sum += BigInt(Math.sign(x.markout_bps) * Math.round(Math.abs(x.markout_bps) * 1e4));
    d.float += x.markout_bps;
    if (x.markout_bps > 0) d.up++;
    if (x.markout_bps < 0) d.down++;
  }
  assert.equal(rows.length, direct.size);
  assert.deepEqual(rows.map((r) => `${r.horizon_ms}|${r.color}|${r.instrument}`), [...direct.keys()].sort((a, b) => {
    const [ha, ca, ia] = a.split('|');
    const [hb, cb, ib] = b.split('|');
    return Number(ha) - Number(hb) || ca!.localeCompare(cb!) || ia!.localeCompare(ib!);
  }));
  for (const r of rows) {
    const d = direct.get(`${r.horizon_ms}|${r.color}|${r.instrument}`)!;
    assert.deepEqual([r.count, r.sum_bps_int, r.up, r.down], [d.count, d.sum.toString(), d.up, d.down]);
    // The average of the integers to 6 dp, and within rounding of the plain floating-point mean.
    assert.ok(Math.abs(r.avg_bps! - Number(d.sum) / 1e4 / d.count) <= 5e-7 + 1e-12);
    assert.ok(Math.abs(r.avg_bps! - d.float / d.count) <= 5e-7 + 0.5e-4);
  }

  const adverse = adverseFillRates(aggs, 5000);
  assert.deepEqual(adverse.map((a) => `${a.instrument}|${a.color}`), ['EUR_USD|blue', 'EUR_USD|green', 'GBP_USD|blue', 'GBP_USD|green', 'USD_JPY|blue', 'USD_JPY|green']);
  for (const a of adverse) {
    const at5s = markouts.filter((x) => x.instrument === a.instrument && x.color === a.color && x.horizon_ms === 5000);
    const negative = at5s.filter((x) => x.markout_bps < 0).length;
    assert.deepEqual([a.count, a.adverse, a.adverse_fill_rate], [at5s.length, negative, negative / at5s.length]);
  }
  assert.deepEqual(adverseFillRates(aggs, 7777), []);
});

/** An instrument's aggregate with `n` markouts of `bps` per colour at each horizon. */
function filled(spec: Record<number, { blue: [number, number]; green: [number, number] }>): InstrumentAggregate {
  const a = emptyAggregate();
  for (const [h, byColor] of Object.entries(spec)) {
    for (const color of ['blue', 'green'] as const) {
      const [n, bps] = byColor[color];
      for (let i = 0; i < n; i++) addMarkout(a, m(Number(h), color, bps));
    }
  }
  return a;
}

test('canary markout gate: green − blue per horizon, breach below −cap at a gated horizon, reasons, hints and alerts', () => {
  const cfg = DEFAULT_MARKOUT_CONFIG; // gate 200 and 500, min sample 50, cap 0.5
  const agg = filled({ 200: { blue: [50, 1.0], green: [50, 0.4] }, 500: { blue: [60, 1.0], green: [50, 0.3] }, 5000: { blue: [50, 5], green: [50, -5] } });
  const v = markoutGate('EUR_USD', agg, cfg);
  assert.equal(v.status, 'breach');
  assert.deepEqual(v.reasons, ['markout_delta_exceeds']);
  assert.deepEqual(v.hints, ['markout_green_worse_200ms', 'markout_green_worse_500ms']);
  assert.deepEqual(v.alerts, [
    { kind: 'markout_regression', instrument: 'EUR_USD', horizon_ms: 200, delta_bps: -0.6 },
    { kind: 'markout_regression', instrument: 'EUR_USD', horizon_ms: 500, delta_bps: -0.7 },
  ]);
  assert.deepEqual(v.horizons.map((h) => [h.horizon_ms, h.samples_blue, h.samples_green, h.avg_bps_blue, h.avg_bps_green, h.delta_bps, h.cap_bps, h.breach]), [
    [200, 50, 50, 1, 0.4, -0.6, 0.5, true],
    [500, 60, 50, 1, 0.3, -0.7, 0.5, true],
    [1000, 0, 0, null, null, null, null, false],
    // −10 bps at 5 s is not a gated horizon: reported, never a breach.
    [5000, 50, 50, 5, -5, -10, null, false],
    [60000, 0, 0, null, null, null, null, false],
  ]);
});

test('canary markout gate: the min-sample guard skips the gate when a colour has fewer than MARKOUT_MIN_SAMPLE at a gated horizon', () => {
  const short = filled({ 200: { blue: [50, 1.0], green: [49, -3] }, 500: { blue: [50, 1.0], green: [50, -3] } });
  const v = markoutGate('EUR_USD', short, DEFAULT_MARKOUT_CONFIG);
  assert.equal(v.status, 'insufficient_sample');
  assert.deepEqual([v.reasons, v.hints, v.alerts], [[], [], []]);
  assert.deepEqual(v.horizons.slice(0, 2).map((h) => [h.delta_bps, h.breach]), [[-4, false], [-4, false]]);
  // The same data with MARKOUT_MIN_SAMPLE=49 is evaluated.
  assert.equal(markoutGate('EUR_USD', short, resolveMarkoutConfig({ MARKOUT_MIN_SAMPLE: 49 }, {})).status, 'breach');
  // Blue short at 500 alone is enough to skip.
  assert.equal(markoutGate('EUR_USD', filled({ 200: { blue: [50, 1], green: [50, -3] }, 500: { blue: [10, 1], green: [50, -3] } }), DEFAULT_MARKOUT_CONFIG).status, 'insufficient_sample');
});

test('canary markout gate: exactly −cap is not a breach; per-instrument caps override MARKOUT_CAP_BPS, per horizon or for all', () => {
  // delta −0.5 exactly (integers 10000 vs 5000): not below −0.5.
  const edge = filled({ 200: { blue: [50, 1.0], green: [50, 0.5] }, 500: { blue: [50, 1.0], green: [50, 0.5] } });
  assert.equal(markoutGate('EUR_USD', edge, DEFAULT_MARKOUT_CONFIG).status, 'pass');
  const worse = filled({ 200: { blue: [50, 1.0], green: [50, 0.2] }, 500: { blue: [50, 1.0], green: [50, 0.2] } }); // −0.8
  assert.equal(markoutGate('EUR_USD', worse, DEFAULT_MARKOUT_CONFIG).status, 'breach');
  const all = resolveMarkoutConfig({ MARKOUT_CAP_BPS_JSON: '{"EUR_USD": 1.0}' }, {});
  assert.equal(markoutGate('EUR_USD', worse, all).status, 'pass');
  assert.equal(markoutGate('GBP_USD', worse, all).status, 'breach'); // other instruments keep MARKOUT_CAP_BPS
  const at200 = resolveMarkoutConfig({ MARKOUT_CAP_BPS_JSON: '{"EUR_USD": {"200": 1.0}}' }, {});
  const v = markoutGate('EUR_USD', worse, at200);
  assert.deepEqual([v.status, v.hints, v.horizons.slice(0, 2).map((h) => h.cap_bps)], ['breach', ['markout_green_worse_500ms'], [1, 0.5]]);
});

test('gates for every instrument come in instrument order; the snapshot is the seed\'s shape as deterministic JSON', () => {
  const aggs: [string, InstrumentAggregate][] = [
    ['USD_JPY', filled({ 200: { blue: [2, 0.5], green: [1, -1.25] } })],
    ['EUR_USD', filled({ 500: { blue: [1, 0.8], green: [0, 0] }, 200: { blue: [1, 0.5], green: [3, 0.1] } })],
  ];
  assert.deepEqual(markoutGates(aggs, DEFAULT_MARKOUT_CONFIG).map((v) => [v.instrument, v.status]), [['EUR_USD', 'insufficient_sample'], ['USD_JPY', 'insufficient_sample']]);
  assert.equal(snapshotJson(aggs),
    '{"200":{"blue":{"EUR_USD":{"avg_bps":0.5,"count":1,"sum_bps_int":5000},"USD_JPY":{"avg_bps":0.5,"count":2,"sum_bps_int":10000}},' +
    '"green":{"EUR_USD":{"avg_bps":0.1,"count":3,"sum_bps_int":3000},"USD_JPY":{"avg_bps":-1.25,"count":1,"sum_bps_int":-12500}}},' +
    '"500":{"blue":{"EUR_USD":{"avg_bps":0.8,"count":1,"sum_bps_int":8000}}}}');
  assert.equal(snapshotJson([...aggs].reverse()), snapshotJson(aggs));
  const big = filled({ 200: { blue: [3, 1e12], green: [0, 0] } });
  addMarkout(big, m(200, 'blue', 1e-4));
  assert.match(snapshotJson([['EUR_USD', big]]), /"sum_bps_int":30000000000000001\}/);
});
