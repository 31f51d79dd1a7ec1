import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Topology } from '../../../streams/runtime/topology.ts';
import { TopologyTestDriver } from '../../../streams/runtime/test-driver.ts';
import { KeyValueStore, WindowStore } from '../../../streams/runtime/stores.ts';
import { InputError } from '../../../streams/runtime/errors.ts';
import type { Processor, ProcessorContext, StreamRecord } from '../../../streams/runtime/processor.ts';

/** Counts records per key, emits the count, and emits a tick on every 60 s of stream time. */
class Counter implements Processor<{ n: number }> {
  private ctx!: ProcessorContext;
  private store!: KeyValueStore<number>;
  init(ctx: ProcessorContext) {
    this.ctx = ctx;
    this.store = ctx.getStateStore('counts');
    ctx.schedule(60_000, 'stream-time', (ts) => ctx.forward({ key: 'tick', value: { n: -1 }, timestamp: ts }));
  }
  process(r: StreamRecord<{ n: number }>) {
    if (r.value.n < 0) throw new InputError('invalid_value', 'n', 'must be ≥ 0');
    const c = (this.store.get(r.key) ?? 0) + 1;
    this.store.put(r.key, c);
    this.ctx.forward({ key: r.key, value: { n: c }, timestamp: r.timestamp });
  }
}

function topology() {
  return new Topology()
    .addSource('in', 'in.v1')
    .addProcessor('count', () => new Counter(), 'in')
    .addStateStore('counts', () => new KeyValueStore<number>('counts'), 'count')
    .addSink('out', 'out.v1', 'count');
}

test('records flow source → processor → sink with per-key state', () => {
  const d = new TopologyTestDriver(topology());
  d.pipeInput('in.v1', 'a', { n: 1 }, 1_000);
  d.pipeInput('in.v1', 'a', { n: 1 }, 2_000);
  d.pipeInput('in.v1', 'b', { n: 1 }, 3_000);
  const out = d.readOutput('out.v1').filter((o) => o.key !== 'tick');
  assert.deepEqual(out.map((o) => [o.key, (o.value as { n: number }).n]), [['a', 1], ['a', 2], ['b', 1]]);
  assert.equal(d.store<KeyValueStore<number>>('counts').get('a'), 2);
});

test('stream-time punctuation fires once per record that crosses an interval boundary, at the boundary', () => {
  const d = new TopologyTestDriver(topology());
  for (const ts of [10_000, 50_000, 61_000, 62_000, 250_000]) d.pipeInput('in.v1', 'a', { n: 1 }, ts);
  const ticks = d.readOutput('out.v1').filter((o) => o.key === 'tick').map((o) => o.timestamp);
  assert.deepEqual(ticks, [0, 60_000, 240_000]);
});

test('a record failing validation in a processor is rejected and leaves no output; late records are rejected as late', () => {
  const d = new TopologyTestDriver(topology(), { graceMs: 5_000 });
  d.pipeInput('in.v1', 'a', { n: 1 }, 100_000);
  d.pipeInput('in.v1', 'a', { n: -1 }, 100_001);
  d.pipeInput('in.v1', 'a', { n: 1 }, 90_000);
  d.pipeInput('in.v1', 'a', { n: 1 }, 96_000);
  assert.deepEqual(d.rejections.map((r) => r.error.reason), ['invalid_value', 'late']);
  assert.deepEqual(d.readOutput('out.v1').filter((o) => o.key === 'a').map((o) => (o.value as { n: number }).n), [1, 2]);
});

test('the test driver partitions keys like Kafka (murmur2), so each partition keeps its own stream time', () => {
  const d = new TopologyTestDriver(topology(), { partitions: 3 });
  // Known murmur2 placements for 3 partitions (same as the Java client and kafkajs' DefaultPartitioner).
  const parts = ['EUR_USD', 'USD_JPY', 'GBP_USD'].map((k) => d.partitionOf('in.v1', k));
  for (const p of parts) assert.ok(p >= 0 && p < 3);
  assert.equal(new TopologyTestDriver(topology(), { partitions: 3 }).partitionOf('in.v1', 'EUR_USD'), parts[0]);
});

test('a key-value store logs each written key once per drain, with its last value and the stamp of its last write; restoring the log rebuilds it', () => {
  const s = new KeyValueStore<{ x: number }>('s');
  let stamp = { topic: 'in.v1', offset: 1 };
  s.bindStamp(() => stamp);
  s.put('a', { x: 1 });
  s.put('b', { x: 2 });
  stamp = { topic: 'in.v1', offset: 2 };
  s.put('b', { x: 3 });
  s.delete('a');
  s.delete('zz');
  const log = s.drainChangelog();
  assert.deepEqual(log, [
    { key: 'a', value: null, stamp: { topic: 'in.v1', offset: 2 } },
    { key: 'b', value: '{"x":3}', stamp: { topic: 'in.v1', offset: 2 } },
  ]);
  assert.deepEqual(s.drainChangelog(), [], 'drained');
  const r = new KeyValueStore<{ x: number }>('s');
  for (const w of log) r.restore(w.key, w.value);
  assert.deepEqual(r.all(), [['b', { x: 3 }]]);
});

test('a window store fetches by time range and evicts behind its retention, with tombstones', () => {
  const w = new WindowStore<number>('w', 120_000);
  for (const start of [0, 60_000, 120_000, 180_000]) w.put('k', start, start / 1000);
  assert.deepEqual(w.fetch('k', 60_000, 120_000), [[60_000, 60], [120_000, 120]]);
  w.evict(180_000);
  assert.deepEqual(w.fetch('k', 0, 999_999).map(([s]) => s), [60_000, 120_000, 180_000]);
  const log = w.drainChangelog();
  const r = new WindowStore<number>('w', 120_000);
  for (const x of log) r.restore(x.key, x.value);
  assert.deepEqual(r.fetch('k', 0, 999_999), w.fetch('k', 0, 999_999));
});

test('topology wiring errors name the node', () => {
  assert.throws(() => new Topology().addProcessor('p', () => new Counter(), 'missing'), /parent missing is not defined/);
  assert.throws(() => new Topology().addSource('in', 't').addStateStore('s', () => new KeyValueStore('s'), 'in'), /in is not a processor/);
});
