/**
 * Cost calibration per instrument (DESIGN §6.5; mm-bot README L6.2, L6.3, L7;
 * docs/calibration.md): pure steps over a plain-JSON state that a state store
 * holds, one step per input record, and the `calib.cost.v1` record
 * (schemas/avro/cost-calibration.avsc) derived from the state.
 *
 * - Per sample, α = COST_EWMA_ALPHA (`ewma = α·x + (1−α)·ewma`, pandas
 *   `adjust=False`, streams/features/ewma.ts): spread bps, volume USD,
 *   slippage bps s·(P − mid)/mid·1e4, and the moments behind k_eff and
 *   cap_eff_bps (slippage², x·y and x² of the impact regression).
 * - Per unit of event time, half-life h (`α_i = 1 − 0.5^(Δt_i/h)`): fill rate
 *   over order outcomes (filled 1, cancelled/rejected 0) and turnover over fill
 *   notionals in USD.
 *
 * Steps validate before they change anything and throw InputError (the
 * dead-letter reason) for a record to reject, so a rejected record leaves no
 * trace. Everything else is counted in `counts`.
 */
import { InputError } from '../runtime/errors.ts';
import type { Fill, OrderEvent, Side } from '../model/records.ts';
import {
  ewmaAlphaStep, ewmaHalfLifeStep, initialEwmaAlphaState, initialEwmaHalfLifeState,
  type EwmaAlphaState, type EwmaHalfLifeState,
} from '../features/ewma.ts';
import type { CalibrationConfig } from './config.ts';

/** The quote a fill is measured against: the instrument's last tick at or before the fill (a Tick fits). */
export interface Quote {
  ts: number;
  bid: number;
  ask: number;
}

/** The fields of a feature bar (streams/features/features.ts) that calibration reads. */
export interface MarketBar {
  instrument: string;
  ts: number;
  close: number;
  /** Mean tick spread of the bar, bps; null when the bar had no tick. */
  spread_bps: number | null;
  /** Traded notional of the bar in the quote currency (features' volume · close). */
  volume_usd: number;
}

/** What happened to a fill; each distinct fill gets exactly one. */
export type FillOutcome =
  | 'sampled'            // slippage sample taken
  | 'duplicate'          // fill id seen before: nothing changed but the counter
  | 'no_tick'            // no quote at or before the fill
  | 'stale_quote'        // the quote is older than COST_MAX_QUOTE_AGE_MS
  | 'liquidity_excluded'; // a maker fill while COST_SLIPPAGE_LIQUIDITY=taker

export type OrderOutcome = 'sampled' | 'duplicate' | 'not_terminal';

export interface CalibrationCounts {
  /** Distinct fills applied. */
  fills: number;
  duplicate_fills: number;
  /** Fills in the slippage statistics (= `samples` of the output, `cost_calib_samples_total`). */
  slippage_samples: number;
  /** Fills in the k_eff regression (a slippage sample with a USD notional). */
  impact_samples: number;
  no_tick: number;
  stale_quote: number;
  liquidity_excluded: number;
  /** Fills and bars whose quote currency has no USD rate (crosses without COST_USD_PER_QUOTE_JSON). */
  no_usd_rate: number;
  /** Terminal order outcomes in the fill rate (`cost_fillrate_samples_total`). */
  order_outcomes: number;
  duplicate_outcomes: number;
  spread_samples: number;
  volume_samples: number;
}

export interface InstrumentCalibration {
  /** Latest event time applied, epoch ms; null before any. */
  lastTs: number | null;
  spread: EwmaAlphaState;
  volume: EwmaAlphaState;
  slippage: EwmaAlphaState;
  /** EWMA of slippage²: the EW variance is E[s²] − E[s]² under the same weights. */
  slippageSq: EwmaAlphaState;
  /** EWMAs of x·y and x² (x = notional/$1k, y = slippage − half-spread): k_eff = E[xy]/E[x²]. */
  impactXY: EwmaAlphaState;
  impactXX: EwmaAlphaState;
  fillRate: EwmaHalfLifeState;
  turnover: EwmaHalfLifeState;
  counts: CalibrationCounts;
  /** Last COST_DEDUP_CAPACITY fill ids (cid), oldest first. */
  seenFills: string[];
  /** Last COST_DEDUP_CAPACITY order ids with a terminal outcome, oldest first. */
  seenOrders: string[];
}

/** The whole calibration state: instrument → its state (what a snapshot holds). */
export type CalibrationState = Record<string, InstrumentCalibration>;

/** One `calib.cost.v1` record; field names as schemas/avro/cost-calibration.avsc. */
export interface CostCalibration {
  instrument: string;
  ts: number;
  spread_bps_ewma: number | null;
  volume_usd_ewma: number | null;
  slippage_bps_ewma: number | null;
  fill_rate_ewma: number | null;
  turnover_usd_ewma: number | null;
  k_eff: number | null;
  cap_eff_bps: number | null;
  samples: number;
}

export const COUNT_NAMES = [
  'fills', 'duplicate_fills', 'slippage_samples', 'impact_samples', 'no_tick', 'stale_quote', 'liquidity_excluded',
  'no_usd_rate', 'order_outcomes', 'duplicate_outcomes', 'spread_samples', 'volume_samples',
] as const satisfies readonly (keyof CalibrationCounts)[];

export function initialInstrumentCalibration(): InstrumentCalibration {
  return {
    lastTs: null,
    spread: initialEwmaAlphaState(), volume: initialEwmaAlphaState(),
    slippage: initialEwmaAlphaState(), slippageSq: initialEwmaAlphaState(),
    impactXY: initialEwmaAlphaState(), impactXX: initialEwmaAlphaState(),
    fillRate: initialEwmaHalfLifeState(), turnover: initialEwmaHalfLifeState(),
    counts: Object.fromEntries(COUNT_NAMES.map((n) => [n, 0])) as unknown as CalibrationCounts,
    seenFills: [], seenOrders: [],
  };
}

// ---- formulas

const sign = (side: Side) => (side === 'buy' ? 1 : -1);
/** −0 becomes 0: JSON (state stores, snapshots) cannot tell them apart, so a restored state must not differ from the live one. */
const noNegZero = (x: number) => (x === 0 ? 0 : x);

/** Observed slippage in bps against the mid at the fill, positive = cost: s·(P − mid)/mid·1e4 (DESIGN §6.5). */
export function slippageBps(side: Side, price: number, mid: number): number {
  return noNegZero((sign(side) * (price - mid) / mid) * 1e4);
}

/** Quoted spread of a quote in bps of its mid: (ask − bid)/mid·1e4, as features.ts computes it. */
export function spreadBps(q: Pick<Quote, 'bid' | 'ask'>): number {
  return ((q.ask - q.bid) / ((q.ask + q.bid) / 2)) * 1e4;
}

/**
 * USD value of an amount in the instrument's quote currency. XXX_USD: as it
 * is; USD_XXX: divided by the price (the base units are USD); crosses: times
 * COST_USD_PER_QUOTE_JSON[quote], null without a rate — a per-instrument task
 * does not see the other instruments' quotes, so it cannot convert by itself.
 */
export function quoteToUsd(instrument: string, quoteAmount: number, price: number, usdPerQuote: Readonly<Record<string, number>>): number | null {
  const [base, quote] = instrument.split('_');
  if (quote === 'USD') return quoteAmount;
  if (base === 'USD') return quoteAmount / price;
  const rate = quote !== undefined && Object.hasOwn(usdPerQuote, quote) ? usdPerQuote[quote]! : undefined;
  return rate === undefined ? null : quoteAmount * rate;
}

/**
 * k_eff, bps of slippage above the half-spread per $1k notional: the
 * exponentially weighted least-squares slope through the origin,
 * argmin_k Σ w_i (y_i − k·x_i)² = Σ w x y / Σ w x² (docs/calibration.md),
 * floored at 0 (price improvement is not a negative cost of size). Null until
 * COST_CALIB_MIN_SAMPLES impact samples.
 */
export function kEff(s: InstrumentCalibration, cfg: CalibrationConfig): number | null {
  const xy = s.impactXY.mean;
  const xx = s.impactXX.mean;
  if (s.counts.impact_samples < cfg.minSamples || xy === null || xx === null || !(xx > 0)) return null;
  return Math.max(0, xy / xx);
}

/**
 * cap_eff_bps = min(MAX_SLIPPAGE_BPS_CAP, max(0, μ + COST_CAP_STD_MULT·σ)), μ
 * the slippage EWMA and σ² = E_w[s²] − μ² its EW variance under the same
 * weights (floored at 0 against rounding). Null until COST_CALIB_MIN_SAMPLES
 * slippage samples.
 */
export function capEffBps(s: InstrumentCalibration, cfg: CalibrationConfig): number | null {
  const mean = s.slippage.mean;
  const sq = s.slippageSq.mean;
  if (s.counts.slippage_samples < cfg.minSamples || mean === null || sq === null) return null;
  const std = Math.sqrt(Math.max(0, sq - mean * mean));
  return Math.min(cfg.maxSlippageBpsCap, Math.max(0, mean + cfg.capStdMult * std));
}

/** The `calib.cost.v1` record of an instrument; null before its first applied event. */
export function costCalibration(instrument: string, s: InstrumentCalibration, cfg: CalibrationConfig): CostCalibration | null {
  if (s.lastTs === null) return null;
  return {
    instrument,
    ts: s.lastTs,
    spread_bps_ewma: s.spread.mean,
    volume_usd_ewma: s.volume.mean,
    slippage_bps_ewma: s.slippage.mean,
    fill_rate_ewma: s.fillRate.mean,
    turnover_usd_ewma: s.turnover.mean,
    k_eff: kEff(s, cfg),
    cap_eff_bps: capEffBps(s, cfg),
    samples: s.counts.slippage_samples,
  };
}

// ---- steps

export interface Step<O> {
  state: InstrumentCalibration;
  outcome: O;
}

/**
 * One fill. `quote` is the instrument's last tick at or before the fill (null
 * when there is none yet); the caller keeps it. Rejects (InputError
 * invalid_value) a non-positive or non-finite price or quantity, and (late) a
 * fill before the turnover EWMA's last fill. A fill id (cid) seen among the
 * last COST_DEDUP_CAPACITY is a duplicate and changes nothing but its counter.
 * Every other fill adds its USD notional to the turnover EWMA and, measured
 * against a fresh quote, one slippage sample (and one k_eff sample when the
 * notional is known in USD).
 */
export function applyFill(s: InstrumentCalibration, fill: Fill, quote: Quote | null, cfg: CalibrationConfig): Step<FillOutcome> {
  positive(fill.price, 'price', 'fill');
  positive(fill.qty, 'qty', 'fill');
  // The quote comes from the caller's validated ticks (records.ts): a bad one is a caller bug, not a bad record.
  if (quote !== null && (quote.ts > fill.ts || !(quote.bid > 0 && quote.ask >= quote.bid))) {
    throw new Error(`calibration: quote ${JSON.stringify(quote)} for the fill at ${fill.ts} must be a valid tick at or before the fill`);
  }
  if (s.seenFills.includes(fill.cid)) return { state: bump(s, 'duplicate_fills'), outcome: 'duplicate' };
  notBefore(s.turnover.lastTs, fill.ts, `fill ${fill.cid} for ${fill.instrument}`);

  const counts = { ...s.counts, fills: s.counts.fills + 1 };
  const next: InstrumentCalibration = { ...s, counts, lastTs: later(s.lastTs, fill.ts), seenFills: remember(s.seenFills, fill.cid, cfg.dedupCapacity) };

  const notionalUsd = quoteToUsd(fill.instrument, fill.price * fill.qty, fill.price, cfg.usdPerQuote);
  if (notionalUsd === null) counts.no_usd_rate += 1;
  else next.turnover = ewmaHalfLifeStep(s.turnover, notionalUsd, fill.ts, cfg.turnoverHalfLifeMs).state;

  const skip: Extract<FillOutcome, keyof CalibrationCounts> | null =
    cfg.slippageLiquidity === 'taker' && fill.liquidity !== 'taker' ? 'liquidity_excluded'
      : quote === null ? 'no_tick'
        : fill.ts - quote.ts > cfg.maxQuoteAgeMs ? 'stale_quote'
          : null;
  if (skip !== null || quote === null) {
    counts[skip ?? 'no_tick'] += 1;
    return { state: next, outcome: skip ?? 'no_tick' };
  }

  const mid = (quote.bid + quote.ask) / 2;
  const slip = slippageBps(fill.side, fill.price, mid);
  counts.slippage_samples += 1;
  next.slippage = ewmaAlphaStep(s.slippage, slip, cfg.alpha).state;
  next.slippageSq = ewmaAlphaStep(s.slippageSq, slip * slip, cfg.alpha).state;
  if (notionalUsd !== null) {
    const x = notionalUsd / 1000;
    const y = noNegZero(slip - spreadBps(quote) / 2);
    counts.impact_samples += 1;
    next.impactXY = ewmaAlphaStep(s.impactXY, noNegZero(x * y), cfg.alpha).state;
    next.impactXX = ewmaAlphaStep(s.impactXX, x * x, cfg.alpha).state;
  }
  return { state: next, outcome: 'sampled' };
}

/**
 * One order event. A terminal outcome — filled (1) or cancelled/rejected (0) —
 * is one sample of the fill rate, a half-life EWMA over event time; `placed`
 * is not an outcome. An order id with a terminal outcome among the last
 * COST_DEDUP_CAPACITY is a duplicate. Rejects (late) an outcome before the
 * fill rate's last one.
 */
export function applyOrderEvent(s: InstrumentCalibration, order: OrderEvent, cfg: CalibrationConfig): Step<OrderOutcome> {
  if (order.kind === 'placed') return { state: s, outcome: 'not_terminal' };
  if (s.seenOrders.includes(order.cid)) return { state: bump(s, 'duplicate_outcomes'), outcome: 'duplicate' };
  notBefore(s.fillRate.lastTs, order.ts, `order ${order.cid} (${order.kind}) for ${order.instrument}`);
  return {
    outcome: 'sampled',
    state: {
      ...s,
      lastTs: later(s.lastTs, order.ts),
      fillRate: ewmaHalfLifeStep(s.fillRate, order.kind === 'filled' ? 1 : 0, order.ts, cfg.fillRateHalfLifeMs).state,
      counts: { ...s.counts, order_outcomes: s.counts.order_outcomes + 1 },
      seenOrders: remember(s.seenOrders, order.cid, cfg.dedupCapacity),
    },
  };
}

/** One tick: a spread sample when COST_SPREAD_SOURCE=ticks; otherwise the state comes back as it is (same object). */
export function applyTick(s: InstrumentCalibration, tick: Quote, cfg: CalibrationConfig): InstrumentCalibration {
  if (cfg.spreadSource !== 'ticks') return s;
  return addSpread({ ...s, lastTs: later(s.lastTs, tick.ts) }, spreadBps(tick), cfg);
}

/**
 * One feature bar: a volume sample (its quote notional in USD; none for a
 * cross without a rate) and, when COST_SPREAD_SOURCE=features, a spread
 * sample. A bar without ticks (spread_bps null) is a missing row of the spread
 * EWMA, as pandas' `ignore_na=False` treats NaN: the mean stays and the next
 * sample weighs more. Rejects (invalid_value) a negative or non-finite spread
 * or volume, or a non-positive close.
 */
export function applyBar(s: InstrumentCalibration, bar: MarketBar, cfg: CalibrationConfig): InstrumentCalibration {
  positive(bar.close, 'close', 'feature');
  if (!(bar.volume_usd >= 0) || !Number.isFinite(bar.volume_usd)) throw new InputError('invalid_value', 'volume_usd', `must be a finite number ≥ 0, got ${bar.volume_usd}`);
  let next: InstrumentCalibration = { ...s, lastTs: later(s.lastTs, bar.ts) };
  if (cfg.spreadSource === 'features') next = addSpread(next, bar.spread_bps, cfg);
  const usd = quoteToUsd(bar.instrument, bar.volume_usd, bar.close, cfg.usdPerQuote);
  if (usd === null) return bump(next, 'no_usd_rate');
  return bump({ ...next, volume: ewmaAlphaStep(next.volume, usd, cfg.alpha).state }, 'volume_samples');
}

/** One spread sample, or (null) one missing row. */
function addSpread(s: InstrumentCalibration, bps: number | null, cfg: CalibrationConfig): InstrumentCalibration {
  if (bps === null) return { ...s, spread: ewmaAlphaStep(s.spread, null, cfg.alpha).state };
  if (!(bps >= 0) || !Number.isFinite(bps)) throw new InputError('invalid_value', 'spread_bps', `must be a finite number ≥ 0, got ${bps}`);
  return bump({ ...s, spread: ewmaAlphaStep(s.spread, bps, cfg.alpha).state }, 'spread_samples');
}

// ---- helpers

function positive(x: number, field: string, what: string): void {
  if (!(x > 0) || !Number.isFinite(x)) throw new InputError('invalid_value', field, `a ${what}'s ${field} must be a finite number > 0, got ${x}`);
}

/** The half-life EWMAs need times that do not decrease (ewma.ts); say which record and by how much. */
function notBefore(lastTs: number | null, ts: number, what: string): void {
  if (lastTs !== null && ts < lastTs) {
    throw new InputError('late', 'ts', `${what} at ${new Date(ts).toISOString()} is ${lastTs - ts} ms before the previous one at ${new Date(lastTs).toISOString()}; the time-decayed EWMAs take events in time order`);
  }
}

function bump(s: InstrumentCalibration, name: keyof CalibrationCounts): InstrumentCalibration {
  return { ...s, counts: { ...s.counts, [name]: s.counts[name] + 1 } };
}

const later = (a: number | null, b: number) => (a === null || b > a ? b : a);

/** FIFO of ids, newest last, at most `capacity` long (a lowered capacity trims on the next insert). */
function remember(ids: readonly string[], id: string, capacity: number): string[] {
  const out = [...ids, id];
  return out.length > capacity ? out.slice(out.length - capacity) : out;
}

// ---- shape check (snapshots, restored stores)

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function alphaProblem(x: unknown): string | null {
  if (!isObj(x)) return 'is not an object';
  if (!(x.mean === null || isNum(x.mean))) return 'mean must be a finite number or null';
  if (!isNum(x.oldWeight) || x.oldWeight < 0 || x.oldWeight > 1) return 'oldWeight must be a number in [0, 1]';
  return null;
}

function halfLifeProblem(x: unknown): string | null {
  const p = alphaProblem(x);
  if (p !== null) return p;
  const lastTs = (x as Record<string, unknown>).lastTs;
  return lastTs === null || Number.isInteger(lastTs) ? null : 'lastTs must be an integer or null';
}

const ALPHA_FIELDS = ['spread', 'volume', 'slippage', 'slippageSq', 'impactXY', 'impactXX'] as const;
const FIELDS = new Set(['lastTs', ...ALPHA_FIELDS, 'fillRate', 'turnover', 'counts', 'seenFills', 'seenOrders']);

/** Why `x` is not an InstrumentCalibration (first problem found, naming the field), or null when it is one. */
export function instrumentCalibrationProblem(x: unknown): string | null {
  if (!isObj(x)) return 'is not an object';
  for (const k of Object.keys(x)) if (!FIELDS.has(k)) return `has an unknown field "${k}"`;
  for (const k of FIELDS) if (!(k in x)) return `misses the field "${k}"`;
  if (!(x.lastTs === null || Number.isInteger(x.lastTs))) return 'lastTs must be an integer or null';
  for (const k of ALPHA_FIELDS) {
    const p = alphaProblem(x[k]);
    if (p !== null) return `${k}: ${p}`;
  }
  for (const k of ['fillRate', 'turnover'] as const) {
    const p = halfLifeProblem(x[k]);
    if (p !== null) return `${k}: ${p}`;
  }
  const counts = x.counts;
  if (!isObj(counts)) return 'counts is not an object';
  for (const n of COUNT_NAMES) if (!Number.isSafeInteger(counts[n]) || (counts[n] as number) < 0) return `counts.${n} must be a whole number ≥ 0`;
  if (Object.keys(counts).length !== COUNT_NAMES.length) return `counts must have exactly ${COUNT_NAMES.join(', ')}`;
  for (const k of ['seenFills', 'seenOrders'] as const) {
    const ids = x[k];
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) return `${k} must be an array of strings`;
  }
  return null;
}
