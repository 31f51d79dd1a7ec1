import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateRecord, parseTimestamp } from '../../../streams/model/records.ts';
import { InstrumentCatalog } from '../../../streams/model/instruments.ts';
import { InputError } from '../../../streams/runtime/errors.ts';

const catalog = new InstrumentCatalog(['EUR_USD']);
const candle = { instrument: 'EUR_USD', ts: '2026-11-13T00:01:00Z', open: 1.1, high: 1.2, low: 1.0, close: 1.15, volume: 10 };

function rejects(raw: Record<string, unknown>, reason: string, field: string | undefined, kind: 'candles' | 'ticks' | 'fills' = 'candles') {
  assert.throws(() => validateRecord(kind, raw, catalog), (err: unknown) => {
    assert.ok(err instanceof InputError, String(err));
    assert.equal(err.reason, reason);
    assert.equal(err.field, field);
    return true;
  });
}

test('a valid candle is normalised: ISO time to ms, defaults filled', () => {
  const c = validateRecord('candles', candle, catalog);
  assert.equal(c.ts, Date.UTC(2026, 10, 13, 0, 1));
  assert.equal(c.granularity, 'M1');
  assert.equal(c.complete, true);
});

test('CSV strings are coerced to numbers and booleans', () => {
  const c = validateRecord('candles', { ...candle, open: '1.1', volume: '10', complete: 'false' }, catalog);
  assert.equal(c.open, 1.1);
  assert.equal(c.complete, false);
});

test('bad candles are rejected naming the field', () => {
  rejects({ ...candle, close: -1 }, 'invalid_value', 'close');
  rejects({ ...candle, open: 'NaN' }, 'invalid_value', 'open');
  rejects({ ...candle, open: 0 }, 'invalid_value', 'open');
  rejects({ ...candle, high: 0.9 }, 'invalid_value', 'high');
  rejects({ ...candle, close: 1.3 }, 'invalid_value', 'close');
  rejects({ ...candle, venue: 'x' }, 'unknown_field', 'venue');
  rejects({ ...candle, instrument: 'XAU_EUR' }, 'unknown_instrument', 'instrument');
  const { close: _c, ...noClose } = candle;
  rejects(noClose, 'missing_field', 'close');
});

test('timestamps: ms and ISO with a zone pass; seconds, zoneless and garbage fail', () => {
  assert.equal(parseTimestamp('ts', 1794528060000), 1794528060000);
  assert.equal(parseTimestamp('ts', '1794528060000'), 1794528060000);
  assert.equal(parseTimestamp('ts', '2026-11-13T00:01:00+01:00'), Date.UTC(2026, 10, 12, 23, 1));
  assert.throws(() => parseTimestamp('ts', 1794528060), /seconds instead of milliseconds/);
  assert.throws(() => parseTimestamp('ts', '2026-11-13T00:01:00'), /with a zone/);
  assert.throws(() => parseTimestamp('ts', 'yesterday'), /ISO-8601/);
});

test('a crossed quote is rejected; a fill needs a known side and liquidity', () => {
  rejects({ instrument: 'EUR_USD', ts: 1794528060000, bid: 1.2, ask: 1.1 }, 'invalid_value', 'ask', 'ticks');
  const fill = { cid: 'a', instrument: 'EUR_USD', ts: 1794528060000, side: 'buy', price: 1.1, qty: 1, liquidity: 'maker' };
  assert.equal(validateRecord('fills', fill, catalog).color, 'blue');
  rejects({ ...fill, side: 'long' }, 'invalid_value', 'side', 'fills');
  rejects({ ...fill, liquidity: undefined }, 'missing_field', 'liquidity', 'fills');
});

test('SEP_INSTRUMENTS overrides the catalog and is validated', () => {
  assert.deepEqual(InstrumentCatalog.fromEnv({ SEP_INSTRUMENTS: 'USD_JPY, EUR_USD' }).list(), ['EUR_USD', 'USD_JPY']);
  assert.throws(() => InstrumentCatalog.fromEnv({ SEP_INSTRUMENTS: 'eurusd' }), /SEP_INSTRUMENTS.*bad names eurusd/);
});
