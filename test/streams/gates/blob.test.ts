import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { buildGatesBlob } from '../../../streams/gates/blob.ts';
import type { GateDecision } from '../../../streams/gates/evaluate.ts';

const T = Date.parse('2024-01-08T12:00:00Z');
const decision = (instrument: string, over: Partial<GateDecision> = {}): GateDecision => ({
  instrument, ts: T, eligible: true, raw_pass: true, trades: 12, calmar: 0.4, buf: 0.1, repetition: 4, hazard: 0.2,
  span_ok: true, session_open: true, cooldown_until: null, consecutive_misses: 0, reasons: [], ...over,
});

test('the blob has the gates-blob.avsc fields, valid Avro, maps in sorted instrument order', () => {
  const blob = buildGatesBlob(T, [
    decision('USD_JPY', { eligible: false, reasons: ['calmar', 'cooldown'], cooldown_until: T + 7_200_000, calmar: 0.01, buf: 0.15 }),
    decision('EUR_USD'),
    decision('AUD_USD', { eligible: false, reasons: ['span_integrity', 'echo_hazard'], hazard: 0.9, span_ok: false }),
  ]);
  const schema = JSON.parse(readFileSync(new URL('../../../schemas/avro/gates-blob.avsc', import.meta.url), 'utf8'));
  assert.deepEqual(Object.keys(blob), schema.fields.map((f: { name: string }) => f.name));
  assert.ok(avro.Type.forSchema(schema).isValid(blob));
  assert.equal(JSON.stringify(blob), JSON.stringify({
    ts: T,
    gates: { AUD_USD: false, EUR_USD: true, USD_JPY: false },
    cooldowns: { USD_JPY: T + 7_200_000 },
    bufs: { AUD_USD: 0.1, EUR_USD: 0.1, USD_JPY: 0.15 },
    repetition: { AUD_USD: 4, EUR_USD: 4, USD_JPY: 4 },
    hazard: { AUD_USD: 0.9, EUR_USD: 0.2, USD_JPY: 0.2 },
    calmar: { AUD_USD: 0.4, EUR_USD: 0.4, USD_JPY: 0.01 },
    span_ok: { AUD_USD: false, EUR_USD: true, USD_JPY: true },
  }));
});

test('the same decisions in any order give the same bytes', () => {
  const ds = ['GBP_USD', 'EUR_GBP', 'AUD_USD', 'EUR_USD'].map((i) => decision(i));
  assert.equal(JSON.stringify(buildGatesBlob(T, ds)), JSON.stringify(buildGatesBlob(T, [...ds].reverse())));
});

test('only running cooldowns are listed', () => {
  const blob = buildGatesBlob(T, [decision('EUR_USD', { cooldown_until: T }), decision('USD_JPY', { cooldown_until: T + 1 })]);
  assert.deepEqual(blob.cooldowns, { USD_JPY: T + 1 });
});

test('an instrument given twice keeps its later decision', () => {
  const blob = buildGatesBlob(T, [decision('EUR_USD', { ts: T, eligible: false }), decision('EUR_USD', { ts: T - 60_000, eligible: true })]);
  assert.deepEqual(blob.gates, { EUR_USD: false });
});

test('gates-blob.avsc stays BACKWARD compatible: a blob written before calmar and span_ok reads with empty maps', () => {
  const schema = JSON.parse(readFileSync(new URL('../../../schemas/avro/gates-blob.avsc', import.meta.url), 'utf8'));
  const older = avro.Type.forSchema({ ...schema, fields: schema.fields.filter((f: { name: string }) => f.name !== 'calmar' && f.name !== 'span_ok') });
  const reader = avro.Type.forSchema(schema);
  const bytes = older.toBuffer({ ts: T, gates: { EUR_USD: true }, cooldowns: {}, bufs: { EUR_USD: 0.1 }, repetition: { EUR_USD: 4 }, hazard: { EUR_USD: 0.2 } });
  const read = reader.fromBuffer(bytes, reader.createResolver(older)) as Record<string, unknown>;
  assert.deepEqual({ calmar: read.calmar, span_ok: read.span_ok, gates: read.gates }, { calmar: {}, span_ok: {}, gates: { EUR_USD: true } });
});
