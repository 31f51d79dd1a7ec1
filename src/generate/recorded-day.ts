/**
 * A seeded generator of realistic FX data: M1 candles, ticks, order events and
 * fills for about ten instruments. What makes it realistic enough to exercise
 * the pipeline (docs/recorded-day.md has the details):
 *  - FX hours: the week opens Sunday 22:00 UTC and closes Friday 22:00 UTC;
 *    nothing is quoted over the weekend.
 *  - Sessions: Tokyo 00–09, London 07–16, New York 12–21 UTC; activity
 *    (tick rate, volume) and volatility rise with each open session.
 *  - Volatility regimes: a two-state Markov chain per instrument (calm 1×,
 *    turbulent 2.5×) plus a common USD factor (ρ ≈ 0.5) so USD pairs co-move.
 *  - Gaps: rare 1–5 minute outages with no ticks and no candle, and one
 *    20-minute outage (NZD_USD, 14:00 UTC on the first day) for span-integrity tests.
 *  - Candles are built from the tick mids, so candles, ticks and fills agree.
 *  - The executor: orders placed at a rate that follows activity, half blue and
 *    half green (canary colours), filled / cancelled / rejected after a delay;
 *    fills at the quote (maker) or through it (taker, with slippage).
 */
import { Rng } from './random.ts';
import type { Candle, Fill, OrderEvent, Side, Tick } from '../../streams/model/records.ts';

export interface InstrumentProfile {
  name: string;
  price: number;
  /** Annualised volatility (fraction). */
  annualVol: number;
  /** Typical spread in price units during liquid hours. */
  spread: number;
  /** Decimal places of a quote (5 majors, 3 JPY crosses). */
  decimals: number;
  /** +1 when USD is the quote currency, −1 when it is the base, 0 for crosses. */
  usdSign: number;
}

export const PROFILES: readonly InstrumentProfile[] = [
  { name: 'EUR_USD', price: 1.0842, annualVol: 0.07, spread: 0.00008, decimals: 5, usdSign: 1 },
  { name: 'GBP_USD', price: 1.2713, annualVol: 0.08, spread: 0.00012, decimals: 5, usdSign: 1 },
  { name: 'USD_JPY', price: 151.32, annualVol: 0.09, spread: 0.011, decimals: 3, usdSign: -1 },
  { name: 'AUD_USD', price: 0.6571, annualVol: 0.10, spread: 0.00011, decimals: 5, usdSign: 1 },
  { name: 'USD_CAD', price: 1.3825, annualVol: 0.06, spread: 0.00015, decimals: 5, usdSign: -1 },
  { name: 'USD_CHF', price: 0.8812, annualVol: 0.075, spread: 0.00014, decimals: 5, usdSign: -1 },
  { name: 'NZD_USD', price: 0.5964, annualVol: 0.105, spread: 0.00016, decimals: 5, usdSign: 1 },
  { name: 'EUR_GBP', price: 0.8529, annualVol: 0.05, spread: 0.00013, decimals: 5, usdSign: 0 },
  { name: 'EUR_JPY', price: 164.07, annualVol: 0.095, spread: 0.017, decimals: 3, usdSign: 0 },
  { name: 'GBP_JPY', price: 192.38, annualVol: 0.11, spread: 0.026, decimals: 3, usdSign: 0 },
];

export interface GenerateOptions {
  seed: number;
  /** Inclusive start, epoch ms, minute-aligned. */
  from: number;
  /** Exclusive end, epoch ms, minute-aligned. */
  to: number;
  instruments?: readonly InstrumentProfile[];
  /** Mean ticks per minute at the busiest time (default 20). */
  peakTicksPerMinute?: number;
  /** Mean orders per instrument per hour at the busiest time (default 30). */
  peakOrdersPerHour?: number;
}

export interface RecordedDay {
  candles: Candle[];
  ticks: Tick[];
  orders: OrderEvent[];
  fills: Fill[];
}

const MINUTE = 60_000;
const MINUTES_PER_YEAR = 252 * 1440;
const USD_RHO = 0.5;

/** FX is open from Sunday 22:00 UTC to Friday 22:00 UTC. */
export function marketOpen(ms: number): boolean {
  const d = new Date(ms);
  const day = d.getUTCDay();
  const hour = d.getUTCHours();
  if (day === 6) return false;
  if (day === 5) return hour < 22;
  if (day === 0) return hour >= 22;
  return true;
}

/** Number of the Tokyo (00–09), London (07–16) and New York (12–21) sessions open at that minute. */
export function openSessions(ms: number): number {
  const h = new Date(ms).getUTCHours();
  return Number(h < 9) + Number(h >= 7 && h < 16) + Number(h >= 12 && h < 21);
}

export function generateRecordedDay(opts: GenerateOptions): RecordedDay {
  const profiles = opts.instruments ?? PROFILES;
  const rng = new Rng(opts.seed);
  const peakTicks = opts.peakTicksPerMinute ?? 20;
  const out: RecordedDay = { candles: [], ticks: [], orders: [], fills: [] };
  const state = profiles.map((p) => ({ p, mid: p.price, turbulent: false, outageLeft: 0 }));
  const ticksByInstrument = new Map<string, Tick[]>(profiles.map((p) => [p.name, []]));

  for (let start = opts.from; start < opts.to; start += MINUTE) {
    if (!marketOpen(start)) continue;
    const sessions = openSessions(start);
    const activity = 0.25 + 0.375 * sessions; // 0.25 quiet … 1.0 with two sessions overlapping (max 3 → 1.375)
    const common = rng.normal();
    for (const s of state) {
      // Regime switch: calm → turbulent about every 4 h, back after about 1 h.
      if (s.turbulent ? rng.next() < 1 / 60 : rng.next() < 1 / 240) s.turbulent = !s.turbulent;
      const sigma = (s.p.annualVol / Math.sqrt(MINUTES_PER_YEAR)) * (0.5 + activity) * (s.turbulent ? 2.5 : 1);
      const z = s.p.usdSign === 0 ? rng.normal() : USD_RHO * s.p.usdSign * common + Math.sqrt(1 - USD_RHO ** 2) * rng.normal();
      if (s.outageLeft === 0 && rng.next() < 0.001) s.outageLeft = 1 + rng.int(5);
      if (s.p.name === 'NZD_USD' && start === opts.from + 14 * 60 * MINUTE) s.outageLeft = 20;
      const n = Math.max(1, rng.poisson(peakTicks * activity * (s.turbulent ? 1.5 : 1)));
      // The price still moves during an outage; we just do not see it.
      const step = (sigma * z) / n; // the minute's return, spread over its ticks
      const offsets = Array.from({ length: n }, () => rng.int(MINUTE)).sort((a, b) => a - b);
      const mids: number[] = [];
      const ticks: Tick[] = [];
      for (const off of offsets) {
        s.mid *= Math.exp(step + (sigma / Math.sqrt(n)) * 0.3 * rng.normal());
        const widen = (sessions === 0 ? 1.8 : 1) * (s.turbulent ? 1.6 : 1) * (0.85 + 0.3 * rng.next());
        const half = (s.p.spread * widen) / 2;
        const bid = round(s.mid - half, s.p.decimals);
        const ask = Math.max(round(s.mid + half, s.p.decimals), bid + 10 ** -s.p.decimals);
        const size = Math.round((1 + 4 * rng.next()) * 1e6 * activity);
        ticks.push({ instrument: s.p.name, ts: start + off, bid, ask: round(ask, s.p.decimals), bid_size: size, ask_size: Math.round(size * (0.8 + 0.4 * rng.next())) });
        mids.push(round((bid + ask) / 2, s.p.decimals + 1));
      }
      if (s.outageLeft > 0) {
        s.outageLeft--;
        continue;
      }
      out.ticks.push(...ticks);
      ticksByInstrument.get(s.p.name)!.push(...ticks);
      out.candles.push({
        instrument: s.p.name, granularity: 'M1', ts: start + MINUTE,
        open: mids[0]!, high: Math.max(...mids), low: Math.min(...mids), close: mids[mids.length - 1]!,
        volume: Math.round(n * 250_000 * Math.exp(0.5 * rng.normal())), complete: true,
      });
    }
  }
  out.ticks.sort(byTsThenInstrument);
  out.candles.sort(byTsThenInstrument);
  generateExecutions(rng, opts, profiles, ticksByInstrument, out);
  return out;
}

function generateExecutions(rng: Rng, opts: GenerateOptions, profiles: readonly InstrumentProfile[], ticks: Map<string, Tick[]>, out: RecordedDay): void {
  const peak = opts.peakOrdersPerHour ?? 30;
  let seq = 0;
  for (const p of profiles) {
    const series = ticks.get(p.name)!;
    for (const tick of series) {
      // Rate per tick chosen so orders per hour follow activity (busy hours have more ticks).
      if (rng.next() >= peak / (60 * 20)) continue;
      const color = rng.next() < 0.5 ? 'blue' : 'green';
      const cid = `${color[0]}-${p.name}-${String(++seq).padStart(6, '0')}`;
      const side: Side = rng.next() < 0.5 ? 'buy' : 'sell';
      const taker = rng.next() < 0.4;
      const qty = Math.round((1 + rng.int(10)) * 10_000);
      const t0 = tick.ts + 1 + rng.int(20);
      const price = side === 'buy' ? (taker ? tick.ask : tick.bid) : (taker ? tick.bid : tick.ask);
      out.orders.push({ cid, instrument: p.name, ts: t0, kind: 'placed', side, price, qty, color });
      const u = rng.next();
      if (u < 0.07) {
        out.orders.push({ cid, instrument: p.name, ts: t0 + 3 + rng.int(10), kind: 'rejected', side, price, qty, color });
        continue;
      }
      const delay = taker ? 5 + rng.int(150) : 200 + rng.int(30_000);
      const at = quoteAt(series, t0 + delay);
      if (u < 0.3 || at === undefined) {
        out.orders.push({ cid, instrument: p.name, ts: t0 + delay, kind: 'cancelled', side, price, qty, color });
        continue;
      }
      // Takers pay the far touch at fill time plus a little slippage; makers get their limit.
      const slip = taker ? Math.abs(rng.normal()) * p.spread * 0.2 : 0;
      const fillPrice = taker ? round(side === 'buy' ? at.ask + slip : at.bid - slip, p.decimals + 1) : price;
      const ts = t0 + delay;
      out.orders.push({ cid, instrument: p.name, ts, kind: 'filled', side, price: fillPrice, qty, color });
      out.fills.push({ cid, instrument: p.name, ts, side, price: fillPrice, qty, fee_bps: taker ? 0.2 : -0.05, liquidity: taker ? 'taker' : 'maker', color });
    }
  }
  out.orders.sort(byTsThenInstrument);
  out.fills.sort(byTsThenInstrument);
}

/** The last tick at or before `ts` (as-of). */
function quoteAt(series: Tick[], ts: number): Tick | undefined {
  let lo = 0;
  let hi = series.length - 1;
  let found: Tick | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (series[mid]!.ts <= ts) {
      found = series[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

function byTsThenInstrument(a: { ts: number; instrument: string }, b: { ts: number; instrument: string }): number {
  return a.ts - b.ts || (a.instrument < b.instrument ? -1 : a.instrument > b.instrument ? 1 : 0);
}
