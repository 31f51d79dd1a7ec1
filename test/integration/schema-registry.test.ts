/**
 * Avro with Confluent framing against the real schema registry: BACKWARD
 * compatibility is enforced per subject, old writers are read through a
 * resolver, and bad bytes or unknown ids are told apart for the dead-letter topic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AvroSerde } from '../../streams/runtime/serde.ts';
import { loadSchema, TOPICS, type TopicSpec } from '../../streams/runtime/topics.ts';
import { DecodeError, SepError } from '../../streams/runtime/errors.ts';
import { createNamespace, urls } from './helpers.ts';

const ns = createNamespace('registry');
const spec: TopicSpec = { ...TOPICS.candles, name: `${ns.prefix}md.candles.v1` };
const v1 = loadSchema(spec);
const candle = { instrument: 'EUR_USD', granularity: 'M1', ts: Date.UTC(2026, 10, 13, 0, 1), open: 1.1, high: 1.2, low: 1.0, close: 1.15, volume: 10, complete: true };

function withField(field: Record<string, unknown>): string {
  const s = JSON.parse(v1);
  s.fields.push(field);
  return JSON.stringify(s);
}

test('registering sets BACKWARD on the subject and the round trip keeps every value', async () => {
  const serde = new AvroSerde(urls.SCHEMA_REGISTRY_URL);
  const id = await serde.register(spec);
  const again = await serde.register(spec);
  assert.equal(again, id, 'an identical schema keeps its id');
  const res = await fetch(`${urls.SCHEMA_REGISTRY_URL}/config/${spec.name}-value`);
  assert.equal(((await res.json()) as { compatibilityLevel: string }).compatibilityLevel, 'BACKWARD');
  const bytes = serde.encode(spec.name, candle);
  assert.equal(bytes[0], 0);
  assert.equal(bytes.readUInt32BE(1), id);
  // avsc decodes into an instance of its generated record class: compare the fields, not the prototype.
  assert.deepEqual({ ...await new AvroSerde(urls.SCHEMA_REGISTRY_URL).register(spec).then(() => serde.decode<object>(spec.name, bytes)) }, candle);
});

test('an incompatible change is refused with the fix; a field with a default is accepted and old data still reads', async () => {
  const old = new AvroSerde(urls.SCHEMA_REGISTRY_URL);
  await old.register(spec);
  const oldBytes = old.encode(spec.name, candle);

  const next = new AvroSerde(urls.SCHEMA_REGISTRY_URL);
  await assert.rejects(next.register(spec, withField({ name: 'venue', type: 'string' })), (err: unknown) =>
    err instanceof SepError && err.code === 'SCHEMA_INCOMPATIBLE' && /add new fields with defaults/.test(err.message));
  const v2 = await next.register(spec, withField({ name: 'venue', type: 'string', default: 'unknown' }));
  assert.notEqual(v2, oldBytes.readUInt32BE(1));
  assert.deepEqual({ ...await next.decode<object>(spec.name, oldBytes) }, { ...candle, venue: 'unknown' });
});

test('garbage bytes are undecodable; an id the registry never issued is unknown_schema', async () => {
  const serde = new AvroSerde(urls.SCHEMA_REGISTRY_URL);
  await serde.register(spec);
  await assert.rejects(serde.decode(spec.name, Buffer.from('{"instrument":"EUR_USD"}')), (err: unknown) => err instanceof DecodeError && err.reason === 'undecodable');
  const good = serde.encode(spec.name, candle);
  await assert.rejects(serde.decode(spec.name, good.subarray(0, 9)), (err: unknown) => err instanceof DecodeError && err.reason === 'undecodable');
  const unknown = Buffer.from(good);
  unknown.writeUInt32BE(987_654_321, 1);
  await assert.rejects(serde.decode(spec.name, unknown), (err: unknown) => err instanceof DecodeError && err.reason === 'unknown_schema');
});
