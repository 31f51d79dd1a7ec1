import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_REGIME_PARAMS, initialRegimeState, nextRegime, resolveRegimeParams, REGIME_KNOBS,
  type RegimeMetrics, type RegimeParams, type RegimeState,
} from '../../../streams/features/regime.ts';
import { ConfigError } from '../../../streams/runtime/errors.ts';
import { Rng } from '../../../src/generate/random.ts';

const near = (a: number | null, b: number, tol = 1e-12) => assert.ok(a !== null && Math.abs(a - b) <= tol, `${a} ≠ ${b} (±${tol})`);

const params = (o: Partial<RegimeParams> = {}): RegimeParams => ({ ...DEFAULT_REGIME_PARAMS, ...o });

/** Feeds log returns (1 = up, 0 = down as ±0.001, or any number / null) with a constant close. */
function runReturns(returns: (number | null)[], p: RegimeParams, closes?: number[]) {
  let state: RegimeState = initialRegimeState(p);
  const out: RegimeMetrics[] = [];
  returns.forEach((r, i) => {
    const res = nextRegime(state, r, closes?.[i] ?? 1.1, p);
    state = res.state;
    out.push(res.metrics);
  });
  return { state, out };
}
const fromBits = (bits: string) => [...bits].map((b) => (b === '1' ? 0.001 : -0.001));
const last = <T>(xs: T[]) => xs[xs.length - 1]!;

test('alternating signs: rupture 1, two patterns of equal share, repetition = half the patterns', () => {
  // W = 10, k = 3: the window 0101010101 holds 8 patterns, 010 ×4 and 101 ×4,
  // so H = 1 bit, entropy = 1/3, coherence = 2/3; all 9 neighbours flip.
  const p = params({ window: 10, patternBits: 3 });
  const m = last(runReturns(fromBits('0101010101'), p).out);
  near(m.entropy, 1 / 3);
  near(m.coherence, 2 / 3);
  assert.equal(m.rupture, 1);
  assert.equal(m.stability, 0);
  assert.equal(m.repetition, 4);
  // Defaults, W = 64, k = 3: 62 patterns, 31 of each.
  const d = last(runReturns(fromBits('01'.repeat(40)), DEFAULT_REGIME_PARAMS).out);
  near(d.entropy, 1 / 3);
  assert.equal(d.rupture, 1);
  assert.equal(d.repetition, 31);
  near(d.hazard, 1); // every indicator is a flip
});

test('constant signs: entropy 0, coherence 1, rupture 0, hazard 0, repetition = every pattern', () => {
  const p = params({ window: 10, patternBits: 3 });
  for (const bits of ['1111111111111', '0000000000000']) {
    const m = last(runReturns(fromBits(bits), p).out);
    assert.equal(m.entropy, 0);
    assert.equal(m.coherence, 1);
    assert.equal(m.rupture, 0);
    assert.equal(m.stability, 1);
    assert.equal(m.hazard, 0);
    assert.equal(m.repetition, 8);
  }
});

test('a known mix, computed by hand', () => {
  // Signs 1101001110, k = 3: patterns 110 101 010 100 001 011 111 110 → 110 twice,
  // six others once: H = −(¼·log2 ¼ + 6·⅛·log2 ⅛) = 0.5 + 2.25 = 2.75 bits → entropy 2.75/3.
  // Flips: 1|1 1|0 0|1 1|0 0|0 0|1 1|1 1|1 1|0 → 5 of 9. Latest pattern 110 occurs twice.
  const p = params({ window: 10, patternBits: 3 });
  const m = last(runReturns(fromBits('1101001110'), p).out);
  near(m.entropy, 2.75 / 3);
  near(m.coherence, 1 - 2.75 / 3);
  near(m.rupture, 5 / 9);
  near(m.stability, 4 / 9);
  assert.equal(m.repetition, 2);
  // One more up sign slides the window to 1010011101: patterns 101 010 100 001 011 111 110 101
  // → 101 twice (and it is the latest); flips 1|0 0|1 1|0 0|0 0|1 1|1 1|1 1|0 0|1 → 6 of 9.
  const m2 = last(runReturns(fromBits('11010011101'), p).out);
  near(m2.entropy, 2.75 / 3);
  near(m2.rupture, 6 / 9);
  assert.equal(m2.repetition, 2);
});

test('a zero return repeats the previous sign; leading zeros and null add no sign', () => {
  const p = params({ window: 10, patternBits: 3 });
  // Ten ups then a zero: carried as up, the window stays constant (counted as down it would flip once).
  const m = last(runReturns([...fromBits('1111111111'), 0], p).out);
  assert.equal(m.rupture, 0);
  assert.equal(m.entropy, 0);
  // After a down sign, a zero is a down sign.
  const z = runReturns([...fromBits('111111111'), -0.001, 0], p);
  assert.equal(z.state.signs, '1111111100');
  // null (first bar), non-finite and leading zeros enter nothing.
  const lead = runReturns([null, 0, 0, Number.NaN, 0.001, Number.NaN, -Infinity, null], p);
  assert.equal(lead.state.signs, '1');
});

test('every metric is null until the window holds W signs, then all appear together', () => {
  const p = params({ window: 10, patternBits: 3 });
  const { out } = runReturns([null, ...fromBits('1101001110')], p);
  for (const m of out.slice(0, 10)) {
    assert.deepEqual(m, { entropy: null, coherence: null, rupture: null, stability: null, hazard: null, repetition: null, signal: 0 });
  }
  for (const key of ['entropy', 'coherence', 'rupture', 'stability', 'hazard', 'repetition'] as const) assert.notEqual(out[10]![key], null, key);
});

test('hazard is the bias-corrected EWMA of the flip indicator (pandas ewm adjust=True)', () => {
  // Hand, α = 0.5 (weights 1 for the newest, 0.5 for the one before): flips 0,1 → 1/1.5 = 2/3; flips 1,0 → 0.5/1.5 = 1/3. W = 3, k = 1 reports after 3 signs.
  near(last(runReturns(fromBits('001'), params({ window: 3, patternBits: 1, hazardAlpha: 0.5 })).out).hazard, 2 / 3);
  near(last(runReturns(fromBits('011'), params({ window: 3, patternBits: 1, hazardAlpha: 0.5 })).out).hazard, 1 / 3);

  // Random series against the direct weighted mean Σ(1−α)^j f_{t−j} / Σ(1−α)^j, and,
  // once the start-up weight has died out, against the plain recursion h = αf + (1−α)h.
  const rng = new Rng(7);
  const alpha = 0.05;
  const p = params({ hazardAlpha: alpha });
  const bits = Array.from({ length: 3000 }, () => (rng.next() < 0.3 ? '1' : '0')).join('');
  const { out } = runReturns(fromBits(bits), p);
  const flips = [...bits].slice(1).map((b, i) => (b !== bits[i] ? 1 : 0));
  let plain = flips[0]!;
  for (let t = 1; t < flips.length; t++) {
    plain = alpha * flips[t]! + (1 - alpha) * plain;
    const signIndex = t + 1; // flips[t] is between signs t and t+1
    if (signIndex < p.window - 1) continue;
    if (t % 97 === 0 || t === flips.length - 1) {
      let num = 0;
      let den = 0;
      for (let j = 0; j <= t; j++) {
        num += (1 - alpha) ** j * flips[t - j]!;
        den += (1 - alpha) ** j;
      }
      near(out[signIndex]!.hazard, num / den, 1e-12);
    }
  }
  near(last(out).hazard, plain, 1e-12);
});

/** Independent reference: rebuild the window from all signs and count from scratch. */
function scratch(signs: string, p: RegimeParams) {
  if (signs.length < p.window) return null;
  const w = signs.slice(-p.window);
  const k = p.patternBits;
  const counts = new Map<string, number>();
  for (let i = 0; i + k <= w.length; i++) counts.set(w.slice(i, i + k), (counts.get(w.slice(i, i + k)) ?? 0) + 1);
  const n = w.length - k + 1;
  let h = 0;
  for (const c of counts.values()) h += -(c / n) * Math.log2(c / n);
  let flips = 0;
  for (let i = 1; i < w.length; i++) if (w[i] !== w[i - 1]) flips++;
  return { entropy: h / k, rupture: flips / (w.length - 1), repetition: counts.get(w.slice(-k))!, counts };
}

test('incremental counts, entropy, rupture and repetition equal a from-scratch recomputation over a long random series', () => {
  for (const [window, patternBits, seed] of [[64, 3, 1], [263, 8, 2], [5, 2, 3], [2, 1, 4]] as const) {
    const p = params({ window, patternBits });
    const rng = new Rng(seed);
    let state = initialRegimeState(p);
    let all = '';
    for (let i = 0; i < 20_000; i++) {
      // Some zero returns and a drifting up-probability, so windows range from noisy to coherent.
      const u = rng.next();
      const pUp = 0.5 + 0.45 * Math.sin(i / 500);
      const r = u < 0.08 ? 0 : rng.next() < pUp ? 0.0004 : -0.0004;
      if (r > 0) all += '1';
      else if (r < 0) all += '0';
      else if (all.length > 0) all += all[all.length - 1];
      const res = nextRegime(state, r, 1.1, p);
      state = res.state;
      const ref = scratch(all, p);
      if (ref === null) {
        assert.equal(res.metrics.entropy, null);
        continue;
      }
      near(res.metrics.entropy, ref.entropy, 1e-12);
      near(res.metrics.rupture, ref.rupture, 0);
      assert.equal(res.metrics.repetition, ref.repetition);
      if (i % 1000 === 0) {
        for (let v = 0; v < 2 ** patternBits; v++) {
          assert.equal(state.counts[v], ref.counts.get(v.toString(2).padStart(patternBits, '0')) ?? 0, `count of pattern ${v}`);
        }
      }
    }
    assert.equal(state.signs, all.slice(-window));
  }
});

test('a state that went through JSON continues bit-identically (changelog restore)', () => {
  const rng = new Rng(11);
  const p = DEFAULT_REGIME_PARAMS;
  const inputs = Array.from({ length: 400 }, (_, i) => ({ r: i === 0 ? null : rng.normal() * 1e-4, c: 1.1 + rng.normal() * 1e-3 }));
  let a = initialRegimeState(p);
  let b = initialRegimeState(p);
  inputs.forEach(({ r, c }, i) => {
    const ra = nextRegime(a, r, c, p);
    const rb = nextRegime(b, r, c, p);
    assert.deepEqual(rb.metrics, ra.metrics);
    a = ra.state;
    b = i % 37 === 0 ? (JSON.parse(JSON.stringify(rb.state)) as RegimeState) : rb.state;
  });
  assert.deepEqual(b, a);
});

test('nextRegime does not modify the state it is given', () => {
  const p = params({ window: 10, patternBits: 3 });
  const { state } = runReturns(fromBits('1101001110'), p);
  const frozen = JSON.stringify(state);
  nextRegime(state, -0.001, 1.2, p);
  assert.equal(JSON.stringify(state), frozen);
});

test('a state saved under another W or k is rebuilt from its newest signs', () => {
  const old = runReturns(fromBits('0011010011101'), params({ window: 12, patternBits: 2 })).state;
  assert.equal(old.signs, '011010011101');
  assert.equal(old.counts.length, 4);
  const p = params({ window: 10, patternBits: 3 });
  const { state, metrics: m } = nextRegime(old, 0.001, 1.1, p);
  assert.equal(state.counts.length, 8);
  assert.equal(state.signs, '0100111011');
  const ref = scratch(old.signs + '1', p)!;
  near(m.entropy, ref.entropy);
  near(m.rupture, ref.rupture);
  assert.equal(m.repetition, ref.repetition);
});

test('signal is the sign of EMA fast − EMA slow, EMAs seeded with the first close, α = 2/(n+1)', () => {
  // fast 2 (α ⅔), slow 4 (α ⅖); closes 1, 2, 3:
  // fast 1 → 5/3 → 23/9; slow 1 → 1.4 → 2.04. Window W = 2, k = 1 is full after two up signs (coherence 1).
  const p = params({ window: 2, patternBits: 1, emaFast: 2, emaSlow: 4, minCoherence: 0.55 });
  const up = runReturns([null, Math.log(2), Math.log(1.5)], p, [1, 2, 3]);
  near(up.state.emaFast, 23 / 9);
  near(up.state.emaSlow, 2.04);
  assert.deepEqual(up.out.map((m) => m.signal), [0, 0, 1]);
  // Falling closes 3, 2, 1: fast below slow → −1.
  const down = runReturns([null, Math.log(2 / 3), Math.log(1 / 2)], p, [3, 2, 1]);
  assert.equal(last(down.out).signal, -1);
  // Flat closes: the EMAs stay equal to the close bit for bit, so no ±1 from rounding.
  // (Under αx + (1−α)·ema with the default periods, 0.85295 drifts by an ulp in the slow EMA and 0.85211 in the fast one.)
  for (const c of [0.85295, 0.85211]) {
    const flat = runReturns([null, ...Array<number>(20).fill(0.001)], params({ window: 2, patternBits: 1, minCoherence: 0 }), Array<number>(21).fill(c));
    assert.equal(flat.state.emaFast, c);
    assert.equal(flat.state.emaSlow, c);
    assert.deepEqual(flat.out.map((m) => m.signal), Array<number>(21).fill(0));
  }
});

test('signal is forced to 0 below GUARD_MIN_COHERENCE and while coherence is null', () => {
  // Rising closes (fast > slow) with alternating signs: coherence exactly 2/3 (W 10, k 3).
  const closes = Array.from({ length: 11 }, (_, i) => 1 + i / 100);
  const returns = [null, ...fromBits('0101010101')];
  const at = (minCoherence: number) => last(runReturns(returns, params({ window: 10, patternBits: 3, minCoherence }), closes).out);
  near(at(0.55).coherence, 2 / 3);
  assert.equal(at(0.55).signal, 1);
  assert.equal(at(0.7).signal, 0);
  assert.equal(at(at(0.55).coherence!).signal, 1, 'coherence equal to the guard passes');
  // Coherence null (window not yet full): 0 even with the guard at 0.
  const early = runReturns(returns.slice(0, 10), params({ window: 10, patternBits: 3, minCoherence: 0 }), closes);
  assert.equal(last(early.out).coherence, null);
  assert.equal(last(early.out).signal, 0);
});

test('no output is NaN or infinite, whatever the input', () => {
  const rng = new Rng(5);
  const p = params({ window: 5, patternBits: 2 });
  let state = initialRegimeState(p);
  const odd = [null, 0, -0, Number.NaN, Infinity, -Infinity, 1e-300, -1e-300];
  for (let i = 0; i < 5000; i++) {
    const r = rng.next() < 0.2 ? odd[rng.int(odd.length)]! : rng.normal() * 1e-3;
    const c = rng.next() < 0.05 ? [Number.NaN, 0, -1, Infinity][rng.int(4)]! : 1 + rng.normal() * 0.01;
    const res = nextRegime(state, r, c, p);
    state = res.state;
    for (const [key, v] of Object.entries(res.metrics)) assert.ok(v === null || Number.isFinite(v), `${key} = ${v} at ${i}`);
    assert.ok([-1, 0, 1].includes(res.metrics.signal) && !Object.is(res.metrics.signal, -0));
    assert.ok(Number.isFinite(state.hazardNum) && Number.isFinite(state.hazardDen));
    assert.ok(state.emaFast === null || Number.isFinite(state.emaFast));
  }
  assert.ok(JSON.stringify(state).length < 200, 'state stays small');
});

test('knobs: defaults, environment, and errors that name the knob', () => {
  assert.deepEqual(resolveRegimeParams({}, {}), { window: 64, patternBits: 3, hazardAlpha: 0.05, emaFast: 12, emaSlow: 48, minCoherence: 0.55 });
  assert.deepEqual(DEFAULT_REGIME_PARAMS, resolveRegimeParams({}, {}));
  assert.equal(resolveRegimeParams({}, { REGIME_WINDOW: '128', GUARD_MIN_COHERENCE: '0.6' }).window, 128);
  assert.deepEqual(Object.keys(REGIME_KNOBS), ['REGIME_WINDOW', 'REGIME_PATTERN_BITS', 'REGIME_HAZARD_ALPHA', 'SIGNAL_EMA_FAST', 'SIGNAL_EMA_SLOW', 'GUARD_MIN_COHERENCE']);

  const fails = (env: Record<string, string>, pattern: RegExp, keys: string[]) =>
    assert.throws(() => resolveRegimeParams({}, env), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((x) => x.key), keys);
      assert.match(err.message, pattern);
      return true;
    });
  fails({ REGIME_PATTERN_BITS: '9' }, /REGIME_PATTERN_BITS ="9": must be ≤ 8; accepted range \[1, 8\]/, ['REGIME_PATTERN_BITS']);
  fails({ GUARD_MIN_COHERENCE: '1.5' }, /GUARD_MIN_COHERENCE ="1.5": must be ≤ 1/, ['GUARD_MIN_COHERENCE']);
  fails({ REGIME_HAZARD_ALPHA: '0' }, /REGIME_HAZARD_ALPHA ="0": must be ≥ 0.0001/, ['REGIME_HAZARD_ALPHA']);
  fails({ SIGNAL_EMA_FAST: '48', SIGNAL_EMA_SLOW: '12' }, /SIGNAL_EMA_FAST =48: must be lower than SIGNAL_EMA_SLOW=12/, ['SIGNAL_EMA_FAST']);
  fails({ SIGNAL_EMA_FAST: '20', SIGNAL_EMA_SLOW: '20' }, /SIGNAL_EMA_FAST =20: must be lower than SIGNAL_EMA_SLOW=20/, ['SIGNAL_EMA_FAST']);
  fails({ REGIME_WINDOW: '100', REGIME_PATTERN_BITS: '8' }, /REGIME_WINDOW =100: must be ≥ .*= 263 for REGIME_PATTERN_BITS=8/, ['REGIME_WINDOW']);
  fails({ REGIME_WINDOW: '3', SIGNAL_EMA_FAST: '50' }, /REGIME_WINDOW =3[\s\S]*SIGNAL_EMA_FAST =50/, ['REGIME_WINDOW', 'SIGNAL_EMA_FAST']);
  // The smallest window for k is accepted (2^k + k − 1: every pattern can occur once).
  assert.equal(resolveRegimeParams({ REGIME_WINDOW: 10 }, {}).window, 10);
  fails({ REGIME_WINDOW: '9' }, /REGIME_WINDOW =9/, ['REGIME_WINDOW']);
});
