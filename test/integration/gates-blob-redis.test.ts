/**
 * The gates blob mirror on the real stack: gates.blob.v1 (Kafka, Avro through
 * the schema registry) → Redis `opt:rolling:gates_blob` + cooldown keys, and
 * the rolling-gate gauges. Keys live under the test's prefix, so a running
 * pipeline is never touched.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createNamespace, urls } from './helpers.ts';
import { createKafka, createProducer, ensureTopics, type Admin, type Producer } from '../../streams/runtime/kafka.ts';
import { AvroSerde } from '../../streams/runtime/serde.ts';
import { loadSchema, TOPICS } from '../../streams/runtime/topics.ts';
import { registry } from '../../streams/runtime/metrics.ts';
import { buildGatesBlob, type GatesBlob } from '../../streams/gates/blob.ts';
import { DEFAULT_GATES_CONFIG } from '../../streams/gates/config.ts';
import type { GateDecision } from '../../streams/gates/evaluate.ts';
import { GatesBlobMirror, gatesBlobJson } from '../../connectors/redis/gates-blob.ts';

const ns = createNamespace('gates-blob');
const topic = `${ns.prefix}gates.blob.v1`;
const laggingTopic = `${ns.prefix}lagging.gates.blob.v1`;
const kafka = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: 'it-gates-blob' });
const redis = new Redis(urls.REDIS_URL!);
const serde = new AvroSerde(urls.SCHEMA_REGISTRY_URL);
let admin: Admin;
let producer: Producer;
const mirrors: GatesBlobMirror[] = [];

const blobKey = `${ns.prefix}opt:rolling:gates_blob`;
const cooldownKey = (instrument: string) => `${ns.prefix}opt:rolling:cooldown:${instrument}`;

const MIN = 60_000;
// Blob times near the wall clock: cooldown keys expire by Redis's own clock (PEXPIREAT).
const NOW = Math.floor(Date.now() / MIN) * MIN;
const A_TS = NOW - MIN;

const decision = (instrument: string, ts: number, over: Partial<GateDecision> = {}): GateDecision => ({
  instrument, ts, eligible: true, raw_pass: true, trades: 12, calmar: 0.4, buf: 0.1, repetition: 4, hazard: 0.2,
  span_ok: true, session_open: true, cooldown_until: null, consecutive_misses: 0, reasons: [], ...over,
});

// The newest blob: 3 eligible; USD_JPY cools down for 2 h; GBP_USD's cooldown runs at A_TS but is over by the wall clock.
const blobA = buildGatesBlob(A_TS, [
  decision('EUR_USD', A_TS),
  decision('AUD_USD', A_TS, { buf: 0.12 }),
  decision('NZD_USD', A_TS),
  decision('USD_JPY', A_TS, { eligible: false, buf: 0.15, cooldown_until: NOW + 2 * 60 * MIN, reasons: ['cooldown'] }),
  decision('GBP_USD', A_TS, { eligible: false, span_ok: false, cooldown_until: A_TS + MIN / 2, reasons: ['span_integrity', 'cooldown'] }),
]);
// An older blob (a replay, a lagging instance): everything eligible, USD_CHF cooling down.
const blobB = buildGatesBlob(A_TS - MIN, [
  decision('EUR_USD', A_TS - MIN),
  decision('USD_JPY', A_TS - MIN),
  decision('USD_CHF', A_TS - MIN, { eligible: false, cooldown_until: NOW + 60 * MIN, reasons: ['cooldown'] }),
]);
// The same evaluation time as A: EUR_USD drops out with a new buffer, USD_JPY's cooldown is gone.
const blobC = buildGatesBlob(A_TS, [
  decision('EUR_USD', A_TS, { eligible: false, buf: 0.2, reasons: ['calmar'] }),
  decision('AUD_USD', A_TS, { buf: 0.12 }),
  decision('NZD_USD', A_TS),
  decision('USD_JPY', A_TS, { eligible: false, reasons: ['min_trades'] }),
]);

before(async () => {
  admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [topic, laggingTopic].map((name) => ({ name, partitions: 1, compacted: false })), 1);
  await serde.register({ ...TOPICS.gatesBlob, name: topic });
  producer = await createProducer(kafka);
});

after(async () => {
  for (const m of mirrors) if (m.state === 'running') await m.stop();
  await producer?.disconnect();
  await admin?.disconnect();
  const keys = await redis.keys(`${ns.prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

function startMirror(t: string, groupSuffix: string, serdeFor = serde): Promise<GatesBlobMirror> {
  const mirror = new GatesBlobMirror({ kafka, serde: serdeFor, redis, topic: t, groupId: `${ns.prefix}${groupSuffix}`, keyPrefix: ns.prefix, gates: DEFAULT_GATES_CONFIG });
  mirrors.push(mirror);
  return mirror.start().then(() => mirror);
}

async function produce(t: string, values: Buffer[]): Promise<void> {
  await producer.send({ topic: t, messages: values.map((value) => ({ key: 'blob', value })) });
}

/** Waits until the mirror has read its topic to the current end. */
async function caughtUp(mirror: GatesBlobMirror): Promise<void> {
  const high = (await admin.fetchTopicOffsets(mirror.topic)).find((o) => o.partition === 0)!.high;
  const deadline = Date.now() + 60_000;
  while ((mirror.positions.get(0) ?? 0n) < BigInt(high)) {
    if (Date.now() > deadline) throw new Error(`mirror of ${mirror.topic} stuck at ${mirror.positions.get(0)} < ${high}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Samples of one metric as `{labels} value` strings (labels as printed), from the process's registry. */
async function samples(name: string): Promise<string[]> {
  const text = await registry.metrics();
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)).map((l) => l.slice(name.length).trim()).sort();
}

async function storedBlob(): Promise<GatesBlob> {
  const raw = await redis.get(blobKey);
  assert.ok(raw, `${blobKey} is set`);
  return JSON.parse(raw) as GatesBlob;
}

let mirror: GatesBlobMirror;

test('before the first blob the gauges have no sample (absent, not a false 0 or a fresh age)', async () => {
  mirror = await startMirror(topic, 'mirror');
  assert.deepEqual(await samples('sep_gates_blob_age_seconds'), []);
  assert.deepEqual(await samples('sep_rolling_eligible_count'), []);
  assert.deepEqual(await samples('sep_rolling_gate'), []);
  assert.deepEqual(await samples('sep_gates_blob_max_age_seconds'), ['180']);
  assert.match((await samples('sep_rolling_session_open')).join(), /^[01]$/);
});

test('a blob lands in Redis as JSON with ts in epoch ms, with its cooldown keys, and in the gauges', async () => {
  // A leftover cooldown key from an earlier blob: GBP_USD's cooldown is over by the wall clock, so it must go.
  await redis.set(cooldownKey('GBP_USD'), String(NOW + MIN), 'PXAT', NOW + 10 * MIN);
  await produce(topic, [serde.encode(topic, blobA)]);
  await caughtUp(mirror);

  assert.equal(await redis.get(blobKey), gatesBlobJson(blobA));
  const stored = await storedBlob();
  assert.equal(stored.ts, A_TS, 'ts is epoch ms (jq .ts)');
  assert.deepEqual(Object.keys(stored), ['ts', 'gates', 'cooldowns', 'bufs', 'repetition', 'hazard', 'calmar', 'span_ok']);
  assert.deepEqual(stored.span_ok, { AUD_USD: true, EUR_USD: true, GBP_USD: false, NZD_USD: true, USD_JPY: true });

  const jpyEnd = NOW + 2 * 60 * MIN;
  assert.equal(await redis.get(cooldownKey('USD_JPY')), String(jpyEnd));
  assert.equal(await redis.pexpiretime(cooldownKey('USD_JPY')), jpyEnd, 'expires at the cooldown end');
  assert.equal(await redis.exists(cooldownKey('GBP_USD')), 0, 'a cooldown over by the wall clock is deleted');
  assert.equal(await redis.exists(cooldownKey('EUR_USD')), 0);

  assert.deepEqual(await samples('sep_rolling_gate'), [
    '{instrument="AUD_USD",eligible="1",buf="0.12"} 1',
    '{instrument="EUR_USD",eligible="1",buf="0.1"} 1',
    '{instrument="GBP_USD",eligible="0",buf="0.1"} 1',
    '{instrument="NZD_USD",eligible="1",buf="0.1"} 1',
    '{instrument="USD_JPY",eligible="0",buf="0.15"} 1',
  ]);
  assert.deepEqual(await samples('sep_rolling_eligible_count'), ['3']);
  assert.deepEqual(await samples('sep_span_integrity_ok'), [
    '{instrument="AUD_USD"} 1', '{instrument="EUR_USD"} 1', '{instrument="GBP_USD"} 0', '{instrument="NZD_USD"} 1', '{instrument="USD_JPY"} 1',
  ]);
  assert.deepEqual(await samples('sep_rolling_cooldown'), [
    '{instrument="AUD_USD"} 0', '{instrument="EUR_USD"} 0', '{instrument="GBP_USD"} 1', '{instrument="NZD_USD"} 0', '{instrument="USD_JPY"} 1',
  ]);
  const t0 = Date.now();
  const [age] = await samples('sep_gates_blob_age_seconds');
  const t1 = Date.now();
  assert.ok(Number(age) >= (t0 - A_TS) / 1000 && Number(age) <= (t1 - A_TS) / 1000, `age ${age} s is the wall clock minus ts`);
});

test('an older blob never overwrites the newer one nor touches cooldown keys; garbage records are counted and skipped', async () => {
  const unknownSchema = Buffer.concat([Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0]), Buffer.from('body')]);
  await produce(topic, [serde.encode(topic, blobB), Buffer.from('not avro at all'), unknownSchema]);
  await caughtUp(mirror);

  assert.equal(await redis.get(blobKey), gatesBlobJson(blobA), 'the newer blob stays');
  assert.equal(await redis.get(cooldownKey('USD_JPY')), String(NOW + 2 * 60 * MIN), 'the stale blob did not clear USD_JPY');
  assert.equal(await redis.exists(cooldownKey('USD_CHF')), 0, 'the stale blob did not add USD_CHF');
  assert.deepEqual(await samples('sep_rolling_eligible_count'), ['3'], 'the gauges keep the newer blob');
  assert.ok((await samples('sep_rolling_gate')).every((s) => !s.includes('USD_CHF')));
  const dead = await samples('sep_dead_letters_total');
  assert.ok(dead.includes(`{reason="undecodable",topic="${topic}"} 1`), dead.join('\n'));
  assert.ok(dead.includes(`{reason="unknown_schema",topic="${topic}"} 1`), dead.join('\n'));
  assert.equal(mirror.state, 'running', 'the mirror goes on');
  assert.equal(mirror.newestTs, A_TS);
});

test('a blob with the same ts overwrites: gauges move to the new label combination, cooldown keys follow', async () => {
  await produce(topic, [serde.encode(topic, blobC)]);
  await caughtUp(mirror);

  assert.equal(await redis.get(blobKey), gatesBlobJson(blobC));
  assert.equal(await redis.exists(cooldownKey('USD_JPY')), 0, 'the cooldown left the blob, so its key is deleted');
  const gates = await samples('sep_rolling_gate');
  assert.deepEqual(gates.filter((s) => s.includes('EUR_USD')), ['{instrument="EUR_USD",eligible="0",buf="0.2"} 1'], 'the previous combination is removed');
  assert.ok(gates.every((s) => !s.includes('GBP_USD')), 'an instrument gone from the blob loses its series');
  assert.deepEqual(await samples('sep_rolling_eligible_count'), ['2']);
  assert.deepEqual((await samples('sep_rolling_cooldown')).filter((s) => s.endsWith(' 1')), []);
});

test('stop withdraws the gauges; Redis keeps the last blob', async () => {
  await mirror.stop();
  assert.deepEqual(await samples('sep_rolling_gate'), []);
  assert.deepEqual(await samples('sep_gates_blob_age_seconds'), []);
  assert.deepEqual(await samples('sep_rolling_eligible_count'), []);
  assert.equal(await redis.get(blobKey), gatesBlobJson(blobC));
});

test('a lagging instance cannot put back an older blob; a newer blob written with the schema before calmar and span_ok reads with empty maps', async () => {
  // The lagging instance's topic was written by an older producer, whose schema lacked calmar and span_ok.
  const schema = JSON.parse(loadSchema(TOPICS.gatesBlob)) as { fields: { name: string }[] };
  const oldSchema = JSON.stringify({ ...schema, fields: schema.fields.filter((f) => f.name !== 'calmar' && f.name !== 'span_ok') });
  const oldWriter = new AvroSerde(urls.SCHEMA_REGISTRY_URL);
  await oldWriter.register({ ...TOPICS.gatesBlob, name: laggingTopic }, oldSchema);
  const reader = new AvroSerde(urls.SCHEMA_REGISTRY_URL);
  await reader.register({ ...TOPICS.gatesBlob, name: laggingTopic }); // BACKWARD check on the real registry
  const { calmar: _c, span_ok: _s, ...oldB } = blobB;
  await produce(laggingTopic, [oldWriter.encode(laggingTopic, oldB)]);
  const lagging = await startMirror(laggingTopic, 'lagging', reader);
  await caughtUp(lagging);
  assert.equal(await redis.get(blobKey), gatesBlobJson(blobC), 'the newer blob in Redis stays');
  assert.equal(await redis.exists(cooldownKey('USD_CHF')), 0);

  const D_TS = A_TS + MIN;
  const blobD = buildGatesBlob(D_TS, [decision('EUR_USD', D_TS), decision('USD_CHF', D_TS, { eligible: false, cooldown_until: NOW + 60 * MIN, reasons: ['cooldown'] })]);
  const { calmar: _c2, span_ok: _s2, ...oldD } = blobD;
  await produce(laggingTopic, [oldWriter.encode(laggingTopic, oldD)]);
  await caughtUp(lagging);
  const stored = await storedBlob();
  assert.equal(stored.ts, D_TS);
  assert.deepEqual({ calmar: stored.calmar, span_ok: stored.span_ok }, { calmar: {}, span_ok: {} });
  assert.equal(await redis.get(cooldownKey('USD_CHF')), String(NOW + 60 * MIN));
  assert.deepEqual(await samples('sep_span_integrity_ok'), [], 'no span series without span_ok');
  assert.deepEqual(await samples('sep_rolling_eligible_count'), ['1']);
});
