/**
 * The stream runtime's guarantees on the real broker: exactly-once through
 * SIGKILLs and a rebalance, dead letters for poison records, determinism.
 * The reference output is the same topology run in-process by the test driver.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createNamespace } from './helpers.ts';
import { readTopic } from './helpers.ts';
import { expectedFeatures, killAllWorkers, prepareTopics, produceCandles, readFeatures, startWorker, syntheticCandles, topicsOf } from './runtime-support.ts';
import { Rng } from '../../src/generate/random.ts';
import avro from 'avsc';
import { loadSchema, TOPICS } from '../../streams/runtime/topics.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A failed assertion must not leave worker processes behind (they would keep the run alive).
after(() => killAllWorkers());

function assertSameFeatures(got: Map<string, unknown[]>, expected: Map<string, unknown[]>) {
  assert.deepEqual([...got.keys()].sort(), [...expected.keys()].sort());
  for (const [key, list] of expected) {
    const g = got.get(key)!;
    assert.equal(g.length, list.length, `${key}: ${g.length} features, expected ${list.length} (duplicates or gaps)`);
    assert.deepEqual(g, list, `${key}: values differ`);
  }
}

test('crash test: 200k candles over 3 partitions, SIGKILL at 5 random moments, output equals an uninterrupted run exactly', { timeout: 600_000 }, async () => {
  const ns = createNamespace('crash');
  const t = topicsOf(ns);
  const serde = await prepareTopics(ns);
  const candles = syntheticCandles(4000, 11); // 50 instruments × 4000 = 200,000
  await produceCandles(serde, t.candles, candles);
  const expected = expectedFeatures(candles, t.candles, t.features);
  const rng = new Rng(20261122);
  const appId = `${ns.prefix}features`;
  for (let i = 0; i < 5; i++) {
    const w = startWorker(ns, appId);
    // Let it get into the stream (start-up is ~2–4 s), then kill it somewhere mid-flight.
    const at = 3000 + rng.int(4000);
    const started = Date.now();
    while (!w.output().includes('started') && Date.now() - started < 30_000) await sleep(50);
    await sleep(at - (Date.now() - started) > 0 ? at - (Date.now() - started) : 500 + rng.int(1500));
    w.child.kill('SIGKILL');
    await w.exited;
  }
  const last = startWorker(ns, appId, ['--until-caught-up']);
  assert.equal(await last.exited, 0, last.output());
  const got = await readFeatures(t.features);
  assert.equal(got.count, candles.length, 'every candle gives exactly one feature');
  assertSameFeatures(got.byKey, expected);
});

test('rebalance test: two processes share the group, one stops mid-stream, the other takes over its partitions and state', { timeout: 300_000 }, async () => {
  const ns = createNamespace('rebalance');
  const t = topicsOf(ns);
  const serde = await prepareTopics(ns);
  const candles = syntheticCandles(2000, 12);
  const half = candles.length / 2; // bars 0–999 of every instrument, then bars 1000–1999
  const appId = `${ns.prefix}features`;
  // Phase 1: A alone processes the first half, so every partition has state in its changelog.
  await produceCandles(serde, t.candles, candles.slice(0, half));
  const a = startWorker(ns, appId);
  const started = Date.now();
  while ((await readTopic(t.features)).length < half && Date.now() - started < 90_000) await sleep(500);
  // B joins and takes partitions from A; the second half arrives, so B restores their state
  // from A's changelog before processing it; A stops mid-stream.
  const b = startWorker(ns, appId);
  while (!b.output().includes('started') && Date.now() - started < 120_000) await sleep(100);
  await sleep(3000); // the rebalance
  await produceCandles(serde, t.candles, candles.slice(half));
  await sleep(1000);
  a.child.kill('SIGTERM');
  assert.equal(await a.exited, 0, a.output());
  // C runs to the end of the input: it takes the partitions B leaves it when it joins.
  const c = startWorker(ns, appId, ['--until-caught-up']);
  assert.equal(await c.exited, 0, c.output());
  b.child.kill('SIGTERM');
  assert.equal(await b.exited, 0, b.output());
  const got = await readFeatures(t.features);
  assert.equal(got.count, candles.length, 'exactly one feature per candle');
  assertSameFeatures(got.byKey, expectedFeatures(candles, t.candles, t.features));
  assert.match(b.output(), /restored features-state partition \d: [1-9]\d* changelog records/, 'state moved with the partitions');
});

test('poison test: malformed bytes, unknown schema ids and invalid values land in the DLQ with their reasons; the rest is processed', { timeout: 120_000 }, async () => {
  const ns = createNamespace('poison');
  const t = topicsOf(ns);
  const serde = await prepareTopics(ns);
  const candles = syntheticCandles(40, 13);
  const c0 = candles[0]!;
  const framed = (v: object) => serde.encode(t.candles, v);
  const unknownId = Buffer.from(framed(c0));
  unknownId.writeUInt32BE(987_654_321, 1);
  const poison = [
    { key: c0.instrument, value: Buffer.from('not avro at all'), timestamp: c0.ts + 40 * 60_000, reason: 'undecodable' },
    { key: c0.instrument, value: Buffer.from([0, 0, 0]), timestamp: c0.ts + 40 * 60_000, reason: 'undecodable' },
    { key: c0.instrument, value: unknownId, timestamp: c0.ts + 40 * 60_000, reason: 'unknown_schema' },
    { key: c0.instrument, value: framed({ ...c0, ts: c0.ts + 50 * 60_000, close: -1 }), timestamp: c0.ts + 50 * 60_000, reason: 'invalid_value' },
    { key: c0.instrument, value: framed({ ...c0, ts: c0.ts + 51 * 60_000, high: c0.low / 2 }), timestamp: c0.ts + 51 * 60_000, reason: 'invalid_value' },
    { key: c0.instrument, value: framed({ ...c0, ts: c0.ts + 52 * 60_000, open: Number.NaN }), timestamp: c0.ts + 52 * 60_000, reason: 'invalid_value' },
    { key: 'XAU_EUR', value: framed({ ...c0, instrument: 'XAU_EUR', ts: c0.ts + 53 * 60_000 }), timestamp: c0.ts + 53 * 60_000, reason: 'unknown_instrument' },
    { key: c0.instrument, value: framed({ ...c0, ts: c0.ts + 54 * 60_000 }), timestamp: c0.ts, reason: 'late' }, // 53 min behind stream time, grace 5 min
  ];
  await produceCandles(serde, t.candles, candles, poison);
  const w = startWorker(ns, `${ns.prefix}features`, ['--until-caught-up']);
  assert.equal(await w.exited, 0, w.output());
  const got = await readFeatures(t.features);
  assert.equal(got.count, candles.length, 'every valid candle is processed');
  const dlqType = avro.Type.forSchema(JSON.parse(loadSchema(TOPICS.deadLetters)));
  const letters = (await readTopic(t.dlq)).map((m) => dlqType.fromBuffer(m.value!.subarray(5)) as { reason: string; value: Buffer; source_topic: string });
  const count = (xs: string[]) => Object.fromEntries([...new Set(xs)].sort().map((r) => [r, xs.filter((x) => x === r).length]));
  assert.deepEqual(count(letters.map((l) => l.reason)), count(poison.map((p) => p.reason)));
  assert.ok(letters.some((l) => l.value.toString() === 'not avro at all'), 'original bytes kept');
  for (const l of letters) assert.equal(l.source_topic, t.candles);
});

test('determinism: the same input through a fresh consumer group gives byte-identical output values', { timeout: 180_000 }, async () => {
  const ns = createNamespace('determinism');
  const t = topicsOf(ns);
  const serde = await prepareTopics(ns);
  await produceCandles(serde, t.candles, syntheticCandles(600, 14));
  for (const group of ['a', 'b']) {
    const w = startWorker(ns, `${ns.prefix}features-${group}`, ['--until-caught-up']);
    assert.equal(await w.exited, 0, w.output());
  }
  // Both runs wrote to the same topic, one after the other: per key, the second half of
  // the values (run b) must repeat the first half (run a) byte for byte.
  const got = await readFeatures(t.features);
  assert.equal(got.count, 2 * 600 * 50);
  for (const [key, bodies] of got.bodies) {
    const half = bodies.length / 2;
    assert.deepEqual(bodies.slice(half), bodies.slice(0, half), `${key}: the second run's bytes differ`);
  }
});
