import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PartitionInput } from '../../../streams/runtime/partition-input.ts';
import { Task, STREAM_TIME_STORE } from '../../../streams/runtime/task.ts';
import { Topology } from '../../../streams/runtime/topology.ts';
import { TopologyTestDriver } from '../../../streams/runtime/test-driver.ts';
import type { Processor, ProcessorContext, StreamRecord } from '../../../streams/runtime/processor.ts';

const rec = (offset: number, timestamp: number) => ({ offset: String(offset), timestamp: String(timestamp) });
const drain = (input: PartitionInput<{ offset: string; timestamp: string }>, end = false) => {
  const out: string[] = [];
  for (let n = input.next(end); n; n = input.next(end)) out.push(`${n.topic}@${n.record.offset}`);
  return out;
};

test('records come out in timestamp order across sources; ties go to the first source in topology order', () => {
  const input = new PartitionInput(0, ['ticks', 'candles'], new Map(), new Map());
  input.append('candles', [rec(0, 60_000), rec(1, 120_000)], 1n, 2n);
  input.append('ticks', [rec(0, 10_000), rec(1, 60_000), rec(2, 70_000), rec(3, 130_000)], 3n, 4n);
  assert.deepEqual(drain(input), ['ticks@0', 'ticks@1', 'candles@0', 'ticks@2', 'candles@1', 'ticks@3']);
});

test('a source with nothing buffered blocks the others until it is read to its end', () => {
  const input = new PartitionInput(0, ['ticks', 'candles'], new Map([['ticks', 0n], ['candles', 0n]]), new Map([['ticks', 2n], ['candles', 1n]]));
  input.append('candles', [rec(0, 60_000)], 0n, 1n);
  assert.deepEqual(drain(input), [], 'ticks may still hold earlier records');
  input.append('ticks', [rec(0, 10_000)], 0n, 2n);
  assert.deepEqual(drain(input), ['ticks@0'], 'tick 1 is not fetched yet: the candle waits');
  // The last fetch of ticks held only a transaction marker: ticks is at its end now.
  input.observe('ticks', 1n, 2n);
  assert.deepEqual(drain(input), ['candles@0']);
  assert.deepEqual(input.committable(), new Map([['ticks', 2n], ['candles', 1n]]), 'past the marker');
});

test('commit positions stop at the first unprocessed record; a refetched batch is not taken twice', () => {
  const input = new PartitionInput(0, ['a', 'b'], new Map([['a', 5n], ['b', 0n]]), new Map([['a', 8n], ['b', 0n]]));
  input.append('a', [rec(4, 1), rec(5, 2), rec(6, 3), rec(7, 4)], 7n, 8n);
  assert.equal(input.buffered('a'), 3, 'offset 4 is below the position');
  assert.equal(input.next()?.record.offset, '5');
  assert.equal(input.committable().get('a'), 6n);
  input.append('a', [rec(5, 2), rec(6, 3)], 6n, 8n);
  assert.equal(input.buffered(), 2, 'a retried fetch adds nothing');
  const partial = new PartitionInput(0, ['a', 'b'], new Map(), new Map());
  partial.append('a', [rec(0, 1), rec(1, 2)], 1n, 2n);
  partial.next(true);
  assert.equal(partial.committable().get('a'), 1n);
});

test('a bounded source takes nothing at or beyond its stop offset, and is at its end once fetched up to it', () => {
  // ticks stop at 2 although the topic holds 4; candles are unbounded.
  const input = new PartitionInput(0, ['ticks', 'candles'], new Map(), new Map([['ticks', 4n], ['candles', 2n]]), new Map([['ticks', 2n]]));
  input.append('candles', [rec(0, 60_000), rec(1, 500_000)], 1n, 2n);
  input.append('ticks', [rec(0, 10_000)], 0n, 4n);
  assert.equal(input.atStop('ticks'), false);
  assert.deepEqual(drain(input), ['ticks@0'], 'tick 1 is below the stop: the candle waits for it');
  input.append('ticks', [rec(1, 70_000), rec(2, 80_000), rec(3, 90_000)], 3n, 4n);
  assert.equal(input.atStop('ticks'), true);
  assert.equal(input.buffered('ticks'), 1, 'ticks 2 and 3 are beyond the stop');
  assert.deepEqual(drain(input), ['candles@0', 'ticks@1', 'candles@1'], 'ticks is at its end at the stop: candle 1 does not wait for ticks 2, 3');
  assert.deepEqual(input.committable(), new Map([['ticks', 2n], ['candles', 2n]]), 'the commit position is the stop, not what was fetched');
});

/** Stamps each candle with the ticks of its minute: the join depends on the merge order. */
class CountTicks implements Processor<{ kind: string }> {
  private ctx!: ProcessorContext;
  private ticks = 0;
  init(ctx: ProcessorContext) { this.ctx = ctx; }
  process(r: StreamRecord<{ kind: string }>) {
    if (r.value.kind === 'tick') { this.ticks++; return; }
    this.ctx.forward({ key: r.key, value: { ticks: this.ticks }, timestamp: r.timestamp });
    this.ticks = 0;
  }
}

test('the test driver merges several sources by timestamp, whatever order they were piped in', () => {
  const topology = () => new Topology()
    .addSource('ticks', 'ticks.v1').addSource('candles', 'candles.v1')
    .addProcessor('join', () => new CountTicks(), 'ticks', 'candles')
    .addSink('out', 'out.v1', 'join');
  const piped = (order: 'candles-first' | 'ticks-first') => {
    const d = new TopologyTestDriver(topology());
    const candles = () => { for (let m = 1; m <= 3; m++) d.pipeInput('candles.v1', 'k', { kind: 'candle' }, m * 60_000); };
    const ticks = () => { for (let t = 0; t < 180_000; t += 15_000) d.pipeInput('ticks.v1', 'k', { kind: 'tick' }, t); };
    if (order === 'candles-first') { candles(); ticks(); } else { ticks(); candles(); }
    return d.readOutput('out.v1').map((o) => (o.value as { ticks: number }).ticks);
  };
  // Ticks at 0, 15 s, … 165 s; the tick at 60 s ties with the first candle and goes first (source order).
  assert.deepEqual(piped('candles-first'), [5, 4, 3]);
  assert.deepEqual(piped('ticks-first'), [5, 4, 3]);
});

test('a task restored from its stream-time checkpoint neither repeats a punctuation nor accepts a record the first run rejected as late', () => {
  class Ticker implements Processor<unknown> {
    init(ctx: ProcessorContext) { ctx.schedule(60_000, 'stream-time', (ts) => ctx.forward({ key: 'p', value: ts, timestamp: ts })); }
    process() {}
  }
  const topology = new Topology().addSource('in', 'in.v1').addProcessor('tick', () => new Ticker(), 'in').addSink('out', 'out.v1', 'tick');
  const first = new Task(topology, 0, { graceMs: 10_000 });
  const punctuations = first.process('in.v1', 0, 'k', {}, 125_000).outputs.map((o) => o.value);
  assert.deepEqual(punctuations, [120_000]);
  const checkpoint = first.drainChangelog().find((c) => c.store === STREAM_TIME_STORE)!.writes;
  assert.deepEqual(checkpoint, [{ key: 't', value: '125000', stamp: { topic: 'in.v1', offset: 0 } }], 'stamped with the last input');
  const restored = new Task(topology, 0, { graceMs: 10_000 });
  for (const w of checkpoint) restored.store(STREAM_TIME_STORE).restore(w.key, w.value);
  assert.deepEqual(restored.process('in.v1', 1, 'k', {}, 130_000).outputs, [], '120 000 was punctuated before the restart');
  assert.equal(restored.process('in.v1', 2, 'k', {}, 100_000).rejections[0]?.error.reason, 'late');
  assert.deepEqual(restored.process('in.v1', 3, 'k', {}, 180_000).outputs.map((o) => o.value), [180_000]);
});

test('the stream-time store name is the runtime\'s own', () => {
  assert.throws(() => new Topology().addSource('in', 'in.v1').addProcessor('p', () => ({ process() {} }), 'in').addStateStore('stream-time', () => { throw new Error('unused'); }, 'p'), /reserved for the runtime/);
});
