/**
 * The input record types (DESIGN §4) and their validation. Validation is the
 * same whether a record comes from a file being imported or from a topic: it
 * names the field that is wrong, and the reject reason is the dead-letter reason.
 * Timestamps are UTC epoch milliseconds.
 */
import { InputError } from '../runtime/errors.ts';
import type { InstrumentCatalog } from './instruments.ts';

export type Side = 'buy' | 'sell';
export type Color = 'blue' | 'green';

export interface Candle {
  instrument: string;
  granularity: string;
  /** Close time of the bar, epoch ms. */
  ts: number;
  open: number;
  high: number;
  low: number;
  close: number;
  /** Traded base units in the bar. */
  volume: number;
  complete: boolean;
}

export interface Tick {
  instrument: string;
  ts: number;
  bid: number;
  ask: number;
  bid_size: number | null;
  ask_size: number | null;
}

export interface OrderEvent {
  cid: string;
  instrument: string;
  ts: number;
  kind: 'placed' | 'filled' | 'cancelled' | 'rejected';
  side: Side;
  price: number;
  qty: number;
  color: Color;
}

export interface Fill {
  cid: string;
  instrument: string;
  ts: number;
  side: Side;
  price: number;
  qty: number;
  fee_bps: number;
  liquidity: 'maker' | 'taker';
  color: Color;
}

export type RecordKind = 'candles' | 'ticks' | 'orders' | 'fills';

/** Timestamps must fall in [2000-01-01, 2100-01-01): catches seconds-vs-ms and garbage. */
const TS_MIN = Date.UTC(2000, 0, 1);
const TS_MAX = Date.UTC(2100, 0, 1);

type Raw = Record<string, unknown>;
type FieldKind = 'string' | 'price' | 'nonneg' | 'number' | 'ts' | 'bool' | `enum:${string}`;
interface FieldSpec { kind: FieldKind; optional?: boolean; default?: unknown }

export const FIELDS: Record<RecordKind, Record<string, FieldSpec>> = {
  candles: {
    instrument: { kind: 'string' }, granularity: { kind: 'string', optional: true, default: 'M1' }, ts: { kind: 'ts' },
    open: { kind: 'price' }, high: { kind: 'price' }, low: { kind: 'price' }, close: { kind: 'price' },
    volume: { kind: 'nonneg' }, complete: { kind: 'bool', optional: true, default: true },
  },
  ticks: {
    instrument: { kind: 'string' }, ts: { kind: 'ts' }, bid: { kind: 'price' }, ask: { kind: 'price' },
    bid_size: { kind: 'nonneg', optional: true, default: null }, ask_size: { kind: 'nonneg', optional: true, default: null },
  },
  orders: {
    cid: { kind: 'string' }, instrument: { kind: 'string' }, ts: { kind: 'ts' },
    kind: { kind: 'enum:placed|filled|cancelled|rejected' }, side: { kind: 'enum:buy|sell' },
    price: { kind: 'price' }, qty: { kind: 'nonneg' }, color: { kind: 'enum:blue|green', optional: true, default: 'blue' },
  },
  fills: {
    cid: { kind: 'string' }, instrument: { kind: 'string' }, ts: { kind: 'ts' }, side: { kind: 'enum:buy|sell' },
    price: { kind: 'price' }, qty: { kind: 'nonneg' }, fee_bps: { kind: 'number', optional: true, default: 0 },
    liquidity: { kind: 'enum:maker|taker' }, color: { kind: 'enum:blue|green', optional: true, default: 'blue' },
  },
};

/**
 * Validates and normalises one raw record (strings from CSV are coerced).
 * Throws InputError naming the field and the fix.
 */
export function validateRecord<K extends RecordKind>(kind: K, raw: Raw, catalog: InstrumentCatalog): RecordOf<K> {
  const spec = FIELDS[kind];
  for (const key of Object.keys(raw)) {
    if (!(key in spec)) throw new InputError('unknown_field', key, `unknown field for ${kind}; expected ${Object.keys(spec).join(', ')}`);
  }
  const out: Raw = {};
  for (const [key, f] of Object.entries(spec)) {
    const v = raw[key];
    if (v === undefined || v === null || v === '') {
      if (!f.optional) throw new InputError('missing_field', key, `required for ${kind}`);
      out[key] = f.default;
      continue;
    }
    out[key] = coerce(key, f.kind, v);
  }
  if (!catalog.has(out.instrument as string)) {
    throw new InputError('unknown_instrument', 'instrument', `${JSON.stringify(out.instrument)} is not in the instrument catalog; add it to SEP_INSTRUMENTS or fix the record`);
  }
  if (kind === 'candles') checkCandle(out as unknown as Candle);
  if (kind === 'ticks') checkTick(out as unknown as Tick);
  return out as unknown as RecordOf<K>;
}

export type RecordOf<K extends RecordKind> = K extends 'candles' ? Candle : K extends 'ticks' ? Tick : K extends 'orders' ? OrderEvent : Fill;

function coerce(key: string, kind: FieldKind, v: unknown): unknown {
  if (kind === 'string') {
    if (typeof v !== 'string' || v.trim() === '') throw new InputError('invalid_value', key, 'must be a non-empty string');
    return v.trim();
  }
  if (kind === 'bool') {
    if (typeof v === 'boolean') return v;
    const s = String(v).toLowerCase();
    if (s === 'true' || s === '1') return true;
    if (s === 'false' || s === '0') return false;
    throw new InputError('invalid_value', key, `must be true or false, got ${JSON.stringify(v)}`);
  }
  if (kind.startsWith('enum:')) {
    const allowed = kind.slice(5).split('|');
    if (typeof v !== 'string' || !allowed.includes(v)) throw new InputError('invalid_value', key, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
    return v;
  }
  if (kind === 'ts') return parseTimestamp(key, v);
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v.trim()) : NaN;
  if (!Number.isFinite(n)) throw new InputError('invalid_value', key, `must be a finite number, got ${JSON.stringify(v)}`);
  if (kind === 'price' && n <= 0) throw new InputError('invalid_value', key, `must be > 0, got ${n}`);
  if (kind === 'nonneg' && n < 0) throw new InputError('invalid_value', key, `must be ≥ 0, got ${n}`);
  return n;
}

/** Epoch milliseconds (number or digit string) or an ISO-8601 string with a zone. */
export function parseTimestamp(key: string, v: unknown): number {
  let ms: number;
  if (typeof v === 'number') ms = v;
  else if (typeof v === 'string' && /^\d+$/.test(v.trim())) ms = Number(v.trim());
  else if (typeof v === 'string' && /(Z|[+-]\d\d:?\d\d)$/.test(v.trim())) ms = Date.parse(v.trim());
  else throw new InputError('invalid_value', key, `must be epoch milliseconds or ISO-8601 with a zone (e.g. 2026-11-13T00:01:00Z), got ${JSON.stringify(v)}`);
  if (!Number.isInteger(ms) || ms < TS_MIN || ms >= TS_MAX) {
    throw new InputError('invalid_value', key, `out of range (${JSON.stringify(v)}); expected epoch milliseconds between 2000 and 2100 — seconds instead of milliseconds?`);
  }
  return ms;
}

function checkCandle(c: Candle): void {
  if (c.high < c.low) throw new InputError('invalid_value', 'high', `high ${c.high} < low ${c.low}`);
  if (c.open > c.high || c.open < c.low) throw new InputError('invalid_value', 'open', `open ${c.open} outside [low ${c.low}, high ${c.high}]`);
  if (c.close > c.high || c.close < c.low) throw new InputError('invalid_value', 'close', `close ${c.close} outside [low ${c.low}, high ${c.high}]`);
}

function checkTick(t: Tick): void {
  if (t.ask < t.bid) throw new InputError('invalid_value', 'ask', `ask ${t.ask} < bid ${t.bid} (crossed quote)`);
}
