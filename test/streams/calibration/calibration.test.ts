import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  applyBar, applyFill, applyOrderEvent, applyTick, capEffBps, costCalibration, initialInstrumentCalibration,
  instrumentCalibrationProblem, kEff, quoteToUsd, slippageBps, spreadBps,
  type InstrumentCalibration, type MarketBar, type Quote,
} from '../../../streams/calibration/calibration.ts';
import { DEFAULT_CALIBRATION_CONFIG, type CalibrationConfig } from '../../../streams/calibration/config.ts';
import { alphaFrom } from '../../../streams/features/ewma.ts';
import { InputError } from '../../../streams/runtime/errors.ts';
import type { Fill, OrderEvent } from '../../../streams/model/records.ts';
import { rng } from '../../support/random.ts';

const T0 = Date.parse('2026-11-13T10:00:00Z');
const cfg = (over: Partial<CalibrationConfig> = {}): CalibrationConfig => ({ ...DEFAULT_CALIBRATION_CONFIG, ...over });
const near = (actual: number | null, expected: number, tol: number, what = '') =>
  assert.ok(actual !== null && Math.abs(actual - expected) <= tol, `${what}: ${actual} ≠ ${expected} (±${tol})`);

let nextCid = 0;
function fill(over: Partial<Fill> = {}): Fill {
  return { cid: `c-${nextCid++}`, instrument: 'EUR_USD', ts: T0, side: 'buy', price: 1.10011, qty: 100_000, fee_bps: 0.2, liquidity: 'taker', color: 'blue', ...over };
}
function order(kind: OrderEvent['kind'], ts: number, cid = `o-${nextCid++}`): OrderEvent {
  return { cid, instrument: 'EUR_USD', ts, kind, side: 'buy', price: 1.1, qty: 100_000, color: 'blue' };
}
/** bid 1.0999 / ask 1.1001: mid 1.1, spread 0.0002/1.1·1e4 = 1.8182 bps. */
const QUOTE: Quote = { ts: T0 - 100, bid: 1.0999, ask: 1.1001 };

function rejects(fn: () => unknown, reason: string, field: string, pattern: RegExp) {
  assert.throws(fn, (e: unknown) => e instanceof InputError && e.reason === reason && e.field === field && pattern.test(e.message));
}

// ---------------------------------------------------------------------------
// Formulas, by hand
// ---------------------------------------------------------------------------

test('slippage is s·(P − mid)/mid·1e4: positive is a cost for buys and sells alike', () => {
  near(slippageBps('buy', 1.10011, 1.1), 1, 1e-9, 'buy 1.1 pip above mid');
  near(slippageBps('sell', 1.09989, 1.1), 1, 1e-9, 'sell 1.1 pip below mid');
  near(slippageBps('buy', 1.09989, 1.1), -1, 1e-9, 'buy below mid is an improvement');
  near(spreadBps(QUOTE), 0.0002 / 1.1 * 1e4, 1e-12, 'spread');
});

test('a sell exactly at mid has slippage +0, not −0 (JSON cannot keep −0, so a restored state would differ)', () => {
  assert.ok(Object.is(slippageBps('sell', 1.1, 1.1), 0));
  const { state } = applyFill(initialInstrumentCalibration(), fill({ side: 'sell', price: 1.1 }), QUOTE, cfg());
  assert.ok(Object.is(state.slippage.mean, 0));
});

test('USD notional: XXX_USD is price·qty, USD_XXX is qty, a cross needs COST_USD_PER_QUOTE_JSON', () => {
  assert.equal(quoteToUsd('EUR_USD', 1.1 * 1000, 1.1, {}), 1100);
  near(quoteToUsd('USD_JPY', 150.25 * 1000, 150.25, {}), 1000, 1e-9, 'USD_JPY');
  assert.equal(quoteToUsd('EUR_GBP', 850, 0.85, {}), null);
  near(quoteToUsd('EUR_GBP', 850, 0.85, { GBP: 1.27 }), 1079.5, 1e-9, 'EUR_GBP with a rate');
  assert.equal(quoteToUsd('EUR_GBP', 850, 0.85, { JPY: 0.0066 }), null, 'a rate for another currency does not apply');
});

test('one taker fill, by hand: slippage 1 bps, k sample (1 − 0.909 bps)/110.011, turnover = notional, every output field', () => {
  const c = cfg({ minSamples: 1 });
  const r = applyFill(initialInstrumentCalibration(), fill({ cid: 'a' }), QUOTE, c);
  assert.equal(r.outcome, 'sampled');
  const out = costCalibration('EUR_USD', r.state, c)!;
  near(out.slippage_bps_ewma, 1, 1e-9, 'slippage');
  near(out.turnover_usd_ewma, 110_011, 1e-6, 'turnover');
  const excess = 1 - (0.0002 / 1.1 * 1e4) / 2;
  near(out.k_eff, excess / 110.011, 1e-12, 'k_eff: one sample, y/x');
  near(out.cap_eff_bps, 1, 1e-9, 'cap_eff: σ = 0 with one sample');
  assert.deepEqual({ ...out, slippage_bps_ewma: 0, turnover_usd_ewma: 0, k_eff: 0, cap_eff_bps: 0 }, {
    instrument: 'EUR_USD', ts: T0, spread_bps_ewma: null, volume_usd_ewma: null, slippage_bps_ewma: 0,
    fill_rate_ewma: null, turnover_usd_ewma: 0, k_eff: 0, cap_eff_bps: 0, samples: 1,
  });
});

test('output records carry exactly the fields of schemas/avro/cost-calibration.avsc', () => {
  const schema = JSON.parse(readFileSync(new URL('../../../schemas/avro/cost-calibration.avsc', import.meta.url), 'utf8')) as { fields: { name: string }[] };
  const { state } = applyFill(initialInstrumentCalibration(), fill(), QUOTE, cfg());
  assert.deepEqual(Object.keys(costCalibration('EUR_USD', state, cfg())!).sort(), schema.fields.map((f) => f.name).sort());
  assert.equal(costCalibration('EUR_USD', initialInstrumentCalibration(), cfg()), null, 'nothing to publish before the first event');
});

test('k_eff, two samples with α = ½ by hand: Σwxy/Σwx² = (½·10·1 + ½·20·4)/(½·100 + ½·400) = 0.18', () => {
  // USD_JPY: notional USD = qty, so x = qty/1000 exactly; bid 149.985 / ask 150.015: mid 150, half-spread 1 bps.
  const q: Quote = { ts: T0, bid: 149.985, ask: 150.015 };
  const c = cfg({ alpha: 0.5, minSamples: 2 });
  const at = (y: number) => 150 * (1 + (y + 1) / 1e4); // slippage y + 1 bps → excess y
  let s = applyFill(initialInstrumentCalibration(), fill({ instrument: 'USD_JPY', price: at(1), qty: 10_000 }), q, c).state;
  assert.equal(kEff(s, c), null, 'one sample < COST_CALIB_MIN_SAMPLES');
  s = applyFill(s, fill({ instrument: 'USD_JPY', price: at(4), qty: 20_000 }), q, c).state;
  near(kEff(s, c), 0.18, 1e-9, 'k_eff');
});

test('cap_eff_bps by hand: slippage 1 and 3 with α = ½ → μ 2, σ 1, μ + 3σ = 5; capped by MAX_SLIPPAGE_BPS_CAP; floored at 0', () => {
  const run = (slips: number[], c: CalibrationConfig) =>
    slips.reduce((s, b) => applyFill(s, fill({ price: 1.1 * (1 + b / 1e4) }), QUOTE, c).state, initialInstrumentCalibration());
  const c = cfg({ alpha: 0.5, minSamples: 2 });
  near(capEffBps(run([1, 3], c), c), 5, 1e-9, 'μ + 3σ');
  near(capEffBps(run([1, 3], { ...c, capStdMult: 1 }), { ...c, capStdMult: 1 }), 3, 1e-9, 'μ + 1σ');
  assert.equal(capEffBps(run([1, 3], { ...c, maxSlippageBpsCap: 4 }), { ...c, maxSlippageBpsCap: 4 }), 4);
  assert.equal(capEffBps(run([-5, -5], c), c), 0, 'all price improvement: cap 0, not negative');
  assert.equal(kEff(run([-5, -5], c), c), 0, 'negative slope floored at 0');
  assert.equal(capEffBps(run([1], c), c), null, 'below COST_CALIB_MIN_SAMPLES');
});

// ---------------------------------------------------------------------------
// The pandas EWMA vectors of DESIGN §10, through the calibration steps
// ---------------------------------------------------------------------------

const DOC_X = [0, 1, 2, null, 4];

test('DESIGN §10 α vector through the spread EWMA: ewm(com=0.5, adjust=False) on [0, 1, 2, NaN, 4] → [0, .666667, 1.555556, 1.555556, 3.650794]', () => {
  // A feature bar without ticks (spread_bps null) is pandas' NaN row (ignore_na=False).
  const c = cfg({ alpha: alphaFrom({ com: 0.5 }) });
  let s = initialInstrumentCalibration();
  const seen = DOC_X.map((x, i) => {
    const bar: MarketBar = { instrument: 'EUR_USD', ts: T0 + i * 60_000, close: 1.1, spread_bps: x, volume_usd: 1000 };
    s = applyBar(s, bar, c);
    return s.spread.mean!.toFixed(6);
  });
  assert.deepEqual(seen, ['0.000000', '0.666667', '1.555556', '1.555556', '3.650794']);
  assert.equal(s.counts.spread_samples, 4);
});

test('DESIGN §10 α vector through the slippage EWMA (no missing rows in a fill series): [0, 1, 2] bps → [0, .666667, 1.555556]', () => {
  const c = cfg({ alpha: alphaFrom({ com: 0.5 }) });
  let s = initialInstrumentCalibration();
  const seen = [0, 1, 2].map((b) => {
    s = applyFill(s, fill({ price: 1.1 * (1 + b / 1e4) }), QUOTE, c).state;
    return s.slippage.mean!.toFixed(6);
  });
  assert.deepEqual(seen, ['0.000000', '0.666667', '1.555556']);
});

test('DESIGN §10 half-life vector through the turnover EWMA: 01-01, 01-03, 01-10, 01-17, h = 4 days → 1000 + 1000·[0, .292893, 1.492474, 3.254508]', () => {
  // Notionals 1000 + 1000·x (an EWMA is affine: weights sum to 1). The vector's
  // NaN row (01-15) is not a fill; with a half-life over times it changes
  // nothing (the decay compounds into the same power of ½), so it is left out.
  const c = cfg({ turnoverHalfLifeMs: 4 * 86_400_000 });
  const days = ['2020-01-01', '2020-01-03', '2020-01-10', '2020-01-17'].map((d) => Date.parse(`${d}T00:00:00Z`));
  let s = initialInstrumentCalibration();
  const seen = [0, 1, 2, 4].map((x, i) => {
    s = applyFill(s, fill({ ts: days[i]!, price: 1, qty: 1000 + 1000 * x }), null, c).state;
    return ((s.turnover.mean! - 1000) / 1000).toFixed(6);
  });
  assert.deepEqual(seen, ['0.000000', '0.292893', '1.492474', '3.254508']);
});

test('fill rate by hand: filled at 0, cancelled at h (α ½), filled at 3h (α ¾), rejected at 3h (Δt 0: weight 0, as pandas)', () => {
  const h = 1_800_000;
  const c = cfg({ fillRateHalfLifeMs: h });
  let s = initialInstrumentCalibration();
  const seen: number[] = [];
  for (const [kind, t] of [['filled', 0], ['cancelled', h], ['filled', 3 * h], ['rejected', 3 * h]] as const) {
    s = applyOrderEvent(s, order(kind, T0 + t), c).state;
    seen.push(s.fillRate.mean!);
  }
  assert.deepEqual(seen, [1, 0.5, 0.875, 0.875]);
  assert.equal(s.counts.order_outcomes, 4);
  const placed = applyOrderEvent(s, order('placed', T0 + 4 * h), c);
  assert.equal(placed.outcome, 'not_terminal');
  assert.equal(placed.state, s, 'placed is not an outcome: the state comes back as it is');
});

// ---------------------------------------------------------------------------
// k_eff and cap_eff_bps against a direct weighted computation
// ---------------------------------------------------------------------------


test('k_eff = Σ w x y / Σ w x² and cap_eff = μ + 3σ with the adjust=False weights w_0 = (1−α)^(n−1), w_i = α(1−α)^(n−1−i), to 1e-10', () => {
  const r = rng(6);
  for (const alpha of [0.1, 0.3]) {
    const c = cfg({ alpha, minSamples: 1, maxSlippageBpsCap: 1e6 });
    let s = initialInstrumentCalibration();
    const xs: number[] = [], ys: number[] = [], ss: number[] = [];
    for (let i = 0; i < 200; i++) {
      const bid = 1.1 + 0.01 * (r() - 0.5);
      const ask = bid + 0.00005 + 0.0003 * r();
      const q: Quote = { ts: T0 + i * 1000, bid, ask };
      const side = r() < 0.5 ? 'buy' : 'sell';
      const qty = Math.round(10_000 + 190_000 * r());
      const mid = (bid + ask) / 2;
      const sl = -1 + 4 * r() + (qty / 100_000) * 1.5; // bps, grows with size
      const price = mid * (1 + (side === 'buy' ? 1 : -1) * sl / 1e4);
      s = applyFill(s, fill({ ts: q.ts, side, price, qty }), q, c).state;
      const slip = slippageBps(side, price, mid);
      ss.push(slip);
      xs.push((price * qty) / 1000);
      ys.push(slip - spreadBps(q) / 2);
    }
    const n = ss.length;
    const w = ss.map((_, i) => (i === 0 ? (1 - alpha) ** (n - 1) : alpha * (1 - alpha) ** (n - 1 - i)));
    near(w.reduce((a, b) => a + b, 0), 1, 1e-12, 'weights sum to 1');
    const sum = (f: (i: number) => number) => w.reduce((acc, wi, i) => acc + wi * f(i), 0);
    const k = sum((i) => xs[i]! * ys[i]!) / sum((i) => xs[i]! ** 2);
    const mu = sum((i) => ss[i]!);
    const sigma = Math.sqrt(sum((i) => (ss[i]! - mu) ** 2));
    assert.ok(k > 0, 'the generated slippage grows with size');
    near(kEff(s, c), k, 1e-10 * Math.abs(k), `k_eff α ${alpha}`);
    near(s.slippage.mean, mu, 1e-10, `slippage EWMA α ${alpha}`);
    near(capEffBps(s, c), mu + 3 * sigma, 1e-9, `cap_eff α ${alpha}`);
  }
});

// ---------------------------------------------------------------------------
// Decisions: duplicates, missing ticks, bad values, order, liquidity, crosses
// ---------------------------------------------------------------------------

test('a duplicate fill id is counted once: the second delivery changes nothing but duplicate_fills', () => {
  const f = fill({ cid: 'dup' });
  const once = applyFill(initialInstrumentCalibration(), f, QUOTE, cfg()).state;
  const twice = applyFill(once, f, QUOTE, cfg());
  assert.equal(twice.outcome, 'duplicate');
  assert.deepEqual({ ...twice.state, counts: { ...twice.state.counts, duplicate_fills: 0 } }, once);
  assert.equal(twice.state.counts.duplicate_fills, 1);
  assert.equal(twice.state.counts.fills, 1);
  // An old duplicate is still a duplicate, not a late fill.
  const later = applyFill(once, fill({ ts: T0 + 60_000 }), QUOTE, cfg()).state;
  assert.equal(applyFill(later, f, QUOTE, cfg()).outcome, 'duplicate');
});

test('the seen-set holds the last COST_DEDUP_CAPACITY ids: older ids fall out (the documented bound)', () => {
  const c = cfg({ dedupCapacity: 3 });
  let s = initialInstrumentCalibration();
  for (const cid of ['a', 'b', 'c', 'd']) s = applyFill(s, fill({ cid }), QUOTE, c).state;
  assert.deepEqual(s.seenFills, ['b', 'c', 'd']);
  assert.equal(applyFill(s, fill({ cid: 'b' }), QUOTE, c).outcome, 'duplicate');
  assert.equal(applyFill(s, fill({ cid: 'a' }), QUOTE, c).outcome, 'sampled', 'a fell out of the window');
});

test('a duplicate order outcome is counted once; a second terminal event for the same order is a duplicate too', () => {
  let s = applyOrderEvent(initialInstrumentCalibration(), order('filled', T0, 'x'), cfg()).state;
  const r = applyOrderEvent(s, order('cancelled', T0 + 1000, 'x'), cfg());
  assert.equal(r.outcome, 'duplicate');
  s = r.state;
  assert.equal(s.fillRate.mean, 1);
  assert.deepEqual([s.counts.order_outcomes, s.counts.duplicate_outcomes], [1, 1]);
});

test('a fill before any tick: no slippage sample, counted as no_tick, but its turnover and id count', () => {
  const r = applyFill(initialInstrumentCalibration(), fill({ cid: 'early' }), null, cfg());
  assert.equal(r.outcome, 'no_tick');
  assert.deepEqual([r.state.counts.no_tick, r.state.counts.fills, r.state.counts.slippage_samples], [1, 1, 0]);
  assert.equal(r.state.slippage.mean, null);
  near(r.state.turnover.mean, 110_011, 1e-6, 'turnover');
  assert.equal(applyFill(r.state, fill({ cid: 'early' }), QUOTE, cfg()).outcome, 'duplicate');
});

test('a quote older than COST_MAX_QUOTE_AGE_MS gives no slippage sample (stale_quote); exactly the limit still counts', () => {
  const c = cfg({ maxQuoteAgeMs: 1000 });
  const q = { ...QUOTE, ts: T0 - 1000 };
  assert.equal(applyFill(initialInstrumentCalibration(), fill(), q, c).outcome, 'sampled');
  const r = applyFill(initialInstrumentCalibration(), fill(), { ...q, ts: T0 - 1001 }, c);
  assert.equal(r.outcome, 'stale_quote');
  assert.equal(r.state.counts.stale_quote, 1);
  assert.throws(() => applyFill(initialInstrumentCalibration(), fill(), { ...q, ts: T0 + 1 }, c), /must be a valid tick at or before the fill/);
  assert.throws(() => applyFill(initialInstrumentCalibration(), fill(), { ...q, bid: 0 }, c), /must be a valid tick/);
});

test('zero, negative or non-finite prices and quantities are rejected as invalid_value, naming the field; nothing changes', () => {
  const s = initialInstrumentCalibration();
  const frozen = JSON.stringify(s);
  rejects(() => applyFill(s, fill({ price: 0 }), QUOTE, cfg()), 'invalid_value', 'price', /must be a finite number > 0, got 0/);
  rejects(() => applyFill(s, fill({ price: -1.1 }), QUOTE, cfg()), 'invalid_value', 'price', /got -1\.1/);
  rejects(() => applyFill(s, fill({ price: NaN }), QUOTE, cfg()), 'invalid_value', 'price', /got NaN/);
  rejects(() => applyFill(s, fill({ qty: 0 }), QUOTE, cfg()), 'invalid_value', 'qty', /got 0/);
  rejects(() => applyBar(s, { instrument: 'EUR_USD', ts: T0, close: 0, spread_bps: 1, volume_usd: 1 }, cfg()), 'invalid_value', 'close', /got 0/);
  rejects(() => applyBar(s, { instrument: 'EUR_USD', ts: T0, close: 1, spread_bps: -1, volume_usd: 1 }, cfg()), 'invalid_value', 'spread_bps', /got -1/);
  rejects(() => applyBar(s, { instrument: 'EUR_USD', ts: T0, close: 1, spread_bps: 1, volume_usd: -5 }, cfg()), 'invalid_value', 'volume_usd', /got -5/);
  assert.equal(JSON.stringify(s), frozen);
});

test('a fill or an outcome before the last one of its time-decayed EWMA is rejected as late, naming both times', () => {
  const s = applyFill(initialInstrumentCalibration(), fill({ ts: T0 }), QUOTE, cfg()).state;
  rejects(() => applyFill(s, fill({ ts: T0 - 5 }), null, cfg()), 'late', 'ts', /is 5 ms before the previous one at 2026-11-13T10:00:00\.000Z/);
  assert.equal(applyFill(s, fill({ ts: T0 }), QUOTE, cfg()).outcome, 'sampled', 'the same millisecond is not late');
  const o = applyOrderEvent(initialInstrumentCalibration(), order('filled', T0), cfg()).state;
  rejects(() => applyOrderEvent(o, order('cancelled', T0 - 1), cfg()), 'late', 'ts', /cancelled.*1 ms before/);
});

test('maker fills are left out of slippage, k_eff and cap by default (COST_SLIPPAGE_LIQUIDITY=taker) and in with =all', () => {
  const maker = fill({ liquidity: 'maker', price: 1.0999 });
  const r = applyFill(initialInstrumentCalibration(), maker, QUOTE, cfg());
  assert.equal(r.outcome, 'liquidity_excluded');
  assert.deepEqual([r.state.counts.liquidity_excluded, r.state.counts.fills], [1, 1]);
  assert.equal(r.state.slippage.mean, null);
  const all = applyFill(initialInstrumentCalibration(), maker, QUOTE, cfg({ slippageLiquidity: 'all' }));
  assert.equal(all.outcome, 'sampled');
  near(all.state.slippage.mean, (1.0999 - 1.1) / 1.1 * 1e4, 1e-9, 'maker buy at the bid');
});

test('a cross without a USD rate: slippage sampled, but no turnover and no k_eff sample (no_usd_rate); with a rate, both', () => {
  const q: Quote = { ts: T0, bid: 0.84995, ask: 0.85005 };
  const f = fill({ instrument: 'EUR_GBP', price: 0.85005, qty: 100_000 });
  const without = applyFill(initialInstrumentCalibration(), f, q, cfg()).state;
  assert.deepEqual([without.counts.slippage_samples, without.counts.impact_samples, without.counts.no_usd_rate], [1, 0, 1]);
  assert.equal(without.turnover.mean, null);
  const withRate = applyFill(initialInstrumentCalibration(), f, q, cfg({ usdPerQuote: { GBP: 1.27 } })).state;
  assert.deepEqual([withRate.counts.impact_samples, withRate.counts.no_usd_rate], [1, 0]);
  near(withRate.turnover.mean, 0.85005 * 100_000 * 1.27, 1e-6, 'turnover in USD');
});

test('volume EWMA from feature bars in USD: USD_JPY bar volume (JPY notional) is divided by the close', () => {
  const c = cfg({ alpha: 0.5 });
  let s = applyBar(initialInstrumentCalibration(), { instrument: 'USD_JPY', ts: T0, close: 150, spread_bps: 1, volume_usd: 150 * 2e6 }, c);
  s = applyBar(s, { instrument: 'USD_JPY', ts: T0 + 60_000, close: 150, spread_bps: 3, volume_usd: 150 * 4e6 }, c);
  near(s.volume.mean, 3e6, 1e-6, 'volume');
  assert.equal(s.spread.mean, 2);
  assert.equal(s.lastTs, T0 + 60_000);
});

test('COST_SPREAD_SOURCE picks ticks or feature bars; the other source leaves the spread alone', () => {
  const bar: MarketBar = { instrument: 'EUR_USD', ts: T0, close: 1.1, spread_bps: 7, volume_usd: 1000 };
  const s0 = initialInstrumentCalibration();
  assert.equal(applyTick(s0, QUOTE, cfg()), s0, 'features source: a tick is not a spread sample');
  near(applyTick(s0, QUOTE, cfg({ spreadSource: 'ticks' })).spread.mean, spreadBps(QUOTE), 1e-12, 'tick spread');
  assert.equal(applyBar(s0, bar, cfg({ spreadSource: 'ticks' })).spread.mean, null);
  assert.equal(applyBar(s0, bar, cfg()).spread.mean, 7);
});

test('a state that went through JSON mid-stream (a state store) gives bit-identical results', () => {
  const r = rng(9);
  const c = cfg({ minSamples: 5 });
  let live = initialInstrumentCalibration();
  let stored = initialInstrumentCalibration();
  for (let i = 0; i < 300; i++) {
    const ts = T0 + i * 997;
    const q: Quote = { ts, bid: 1.1 - 0.0001 * r(), ask: 1.1 + 0.0001 * r() };
    const f = fill({ ts, side: r() < 0.5 ? 'buy' : 'sell', price: 1.1 + 0.0003 * (r() - 0.5), qty: 1000 + Math.round(r() * 1e5), liquidity: r() < 0.7 ? 'taker' : 'maker' });
    const o = order(r() < 0.7 ? 'filled' : 'cancelled', ts);
    live = applyOrderEvent(applyFill(live, f, i % 17 === 0 ? null : q, c).state, o, c).state;
    stored = JSON.parse(JSON.stringify(applyOrderEvent(applyFill(stored, f, i % 17 === 0 ? null : q, c).state, o, c).state)) as InstrumentCalibration;
  }
  assert.deepEqual(costCalibration('EUR_USD', stored, c), costCalibration('EUR_USD', live, c));
  assert.equal(JSON.stringify(stored), JSON.stringify(live));
  assert.ok(live.counts.slippage_samples > 100 && live.counts.no_tick > 10);
});

test('instrumentCalibrationProblem names the broken field', () => {
  const ok = applyFill(initialInstrumentCalibration(), fill(), QUOTE, cfg()).state;
  assert.equal(instrumentCalibrationProblem(JSON.parse(JSON.stringify(ok))), null);
  assert.equal(instrumentCalibrationProblem({ ...ok, counts: { ...ok.counts, fills: -1 } }), 'counts.fills must be a whole number ≥ 0');
  assert.equal(instrumentCalibrationProblem({ ...ok, slippage: { mean: 'x', oldWeight: 1 } }), 'slippage: mean must be a finite number or null');
  assert.equal(instrumentCalibrationProblem({ ...ok, extra: 1 }), 'has an unknown field "extra"');
  const { seenOrders: _, ...missing } = ok;
  assert.equal(instrumentCalibrationProblem(missing), 'misses the field "seenOrders"');
  assert.equal(instrumentCalibrationProblem({ ...ok, seenFills: [1] }), 'seenFills must be an array of strings');
});
