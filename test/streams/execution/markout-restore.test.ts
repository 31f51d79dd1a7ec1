/**
 * The markout processor keeps its state in memory and logs it in pieces (a
 * store entry per tick segment and per fill); a task restored from that
 * changelog must go on exactly as the uninterrupted one. Checked at several
 * crash points of a random stream with out-of-order ticks and fills and
 * duplicate fill ids, for two instruments in one task.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Task, type OutputRecord } from '../../../streams/runtime/task.ts';
import { Topology } from '../../../streams/runtime/topology.ts';
import { KeyValueStore, type ChangelogWrite } from '../../../streams/runtime/stores.ts';
import { MARKOUT_AGG_STORE, MARKOUT_FILLS_STORE, MARKOUT_TICKS_STORE, MarkoutProcessor } from '../../../streams/execution/processors.ts';
import type { MarkoutConfig } from '../../../streams/markout/config.ts';
import { DEFAULT_MARKOUT_CONFIG } from '../../../streams/markout/config.ts';
import { rng } from '../../support/random.ts';

const TOPICS = { ticks: 'ticks', fills: 'fills', orders: 'orders' };
const CONFIG: MarkoutConfig = { ...DEFAULT_MARKOUT_CONFIG, horizonsMs: [200, 500, 1000, 5000], graceMs: 1500, dedupeWindowMs: 3000 };

function topology(): Topology {
  return new Topology()
    .addSource('ticks', TOPICS.ticks, (v) => v, { graceMs: CONFIG.graceMs })
    .addSource('fills', TOPICS.fills, (v) => v, { graceMs: CONFIG.graceMs })
    .addProcessor('markout', () => new MarkoutProcessor(CONFIG, TOPICS), 'ticks', 'fills')
    .addStateStore(MARKOUT_TICKS_STORE, () => new KeyValueStore(MARKOUT_TICKS_STORE), 'markout')
    .addStateStore(MARKOUT_FILLS_STORE, () => new KeyValueStore(MARKOUT_FILLS_STORE), 'markout')
    .addStateStore(MARKOUT_AGG_STORE, () => new KeyValueStore(MARKOUT_AGG_STORE), 'markout')
    .addSink('out', 'markouts', 'markout');
}

interface In { topic: string; key: string; value: Record<string, unknown>; ts: number }


function stream(n: number): In[] {
  const rand = rng(7);
  const out: In[] = [];
  const mids: Record<string, number> = { EUR_USD: 1.1, USD_JPY: 150 };
  let clock = Date.UTC(2026, 10, 13, 12);
  let top = clock;
  for (let i = 0; i < n; i++) {
    clock += Math.floor(rand() * 8);
    // A fifth arrive up to a second late (within the 1.5 s grace of the newest record).
    const ts = rand() < 0.2 ? Math.max(clock - Math.floor(rand() * 1000), top - 1000) : clock;
    top = Math.max(top, ts);
    const instrument = rand() < 0.5 ? 'EUR_USD' : 'USD_JPY';
    const mid = (mids[instrument]! *= 1 + (rand() - 0.5) * 2e-4);
    if (rand() < 0.9) {
      out.push({ topic: TOPICS.ticks, key: instrument, value: { instrument, ts, bid: mid * (1 - 1e-5), ask: mid * (1 + 1e-5) }, ts });
    } else {
      // One in ten fills re-uses a recent cid: a duplicate the state must remember across the restart.
      const cid = rand() < 0.1 && i > 100 ? `f${i - 1 - Math.floor(rand() * 50)}` : `f${i}`;
      out.push({ topic: TOPICS.fills, key: instrument, value: { instrument, cid, ts, side: rand() < 0.5 ? 'buy' : 'sell', price: mid * (1 + (rand() - 0.5) * 1e-4), color: rand() < 0.5 ? 'blue' : 'green' }, ts });
    }
  }
  return out;
}

function feed(task: Task, records: In[], from: number, to: number, outputs: OutputRecord[]): void {
  for (let i = from; i < to; i++) {
    const r = records[i]!;
    const res = task.process(r.topic, i, r.key, r.value, r.ts);
    outputs.push(...res.outputs);
  }
}

/** The state writes so far, per store, in order (what the changelog topics would hold). */
function drainInto(task: Task, log: Map<string, ChangelogWrite[]>): void {
  for (const { store, writes } of task.drainChangelog()) {
    const list = log.get(store) ?? [];
    list.push(...writes);
    log.set(store, list);
  }
}

test('a markout task restored from its changelog at any point goes on exactly as the uninterrupted one', () => {
  const records = stream(40_000);
  const whole: OutputRecord[] = [];
  const uninterrupted = new Task(topology(), 0);
  feed(uninterrupted, records, 0, records.length, whole);
  assert.ok(whole.length > 10_000, `${whole.length} markouts`);

  const log = new Map<string, ChangelogWrite[]>();
  const outputs: OutputRecord[] = [];
  let task = new Task(topology(), 0);
  const crashes = [1_234, 9_999, 20_000, 31_111];
  let at = 0;
  for (const crash of [...crashes, records.length]) {
    // Drain every 500 records, as sends do, then crash: a new task restores every store from the log.
    for (; at < crash; at = Math.min(at + 500, crash)) {
      feed(task, records, at, Math.min(at + 500, crash), outputs);
      drainInto(task, log);
    }
    task.close();
    task = new Task(topology(), 0);
    for (const [store, writes] of log) for (const w of writes) task.store(store).restore(w.key, w.value);
  }
  assert.equal(outputs.length, whole.length);
  assert.deepEqual(outputs, whole);
  // And the log is bounded: per store, its live keys are what the state holds, not the history.
  const live = (store: string) => (task.store(store) as KeyValueStore<unknown>).size();
  assert.equal(live(MARKOUT_AGG_STORE), 2);
  assert.ok(live(MARKOUT_TICKS_STORE) < 2 * (CONFIG.graceMs / 100 + 3), `${live(MARKOUT_TICKS_STORE)} tick segments`);
});
