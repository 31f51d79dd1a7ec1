import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TopologyTestDriver } from '../../../streams/runtime/test-driver.ts';
import { TOPICS } from '../../../streams/runtime/topics.ts';
import { InstrumentCatalog } from '../../../streams/model/instruments.ts';
import { generateRecordedDay } from '../../../src/generate/recorded-day.ts';
import { DEFAULT_FEATURE_PARAMS } from '../../../streams/features/features.ts';
import { resolveRegimeParams } from '../../../streams/features/regime.ts';
import { resolveGatesConfig } from '../../../streams/gates/config.ts';
import { signalTopology } from '../../../streams/gates/topology.ts';
import { gatesBlobTopology } from '../../../streams/gates/blob-processor.ts';
import { buildGatesBlob, type GatesBlob } from '../../../streams/gates/blob.ts';
import type { GateDecision } from '../../../streams/gates/evaluate.ts';
import type { GatesPartial } from '../../../streams/gates/processor.ts';
import { partitionForKey } from '../../../streams/runtime/kafka.ts';

// London morning of the bundled day's Friday; short spans so six hours give decisions that flip.
const day = generateRecordedDay({ seed: 7, from: Date.UTC(2026, 10, 13, 6), to: Date.UTC(2026, 10, 13, 12) });
const catalog = InstrumentCatalog.fromEnv({});
const params = { ...DEFAULT_FEATURE_PARAMS, regime: resolveRegimeParams({ GUARD_MIN_COHERENCE: 0.05 }, {}) };
const { config: gates } = resolveGatesConfig({ EVAL_INTERVAL_SEC: 300, GATES_BLOB_MAX_AGE_SEC: 900, GATES_SPAN_DAYS: 0.05, SPAN_MIN_BARS: 30, SPAN_MAX_MISSING_BARS: 30, GATES_MIN_TRADES: 2, ECHO_MIN_REPETITIONS: 1, ECHO_HAZARD_MAX: 1 }, {});

function runSignal(order: 'time' | 'candles-first') {
  const d = new TopologyTestDriver(signalTopology(catalog, { params, gates }), { partitions: 3 });
  const candles = () => { for (const c of day.candles) d.pipeInput(TOPICS.candles.name, c.instrument, { ...c }, c.ts); };
  const ticks = () => { for (const t of day.ticks) d.pipeInput(TOPICS.ticks.name, t.instrument, { ...t }, t.ts); };
  if (order === 'candles-first') { candles(); ticks(); } else { ticks(); candles(); }
  return { decisions: d.readOutput(TOPICS.gates.name).map((o) => o.value as GateDecision), partials: d.readOutput(TOPICS.gatesPartial.name).map((o) => o.value as GatesPartial) };
}

test('the evaluator decides every instrument at every interval boundary of stream time, the same whatever the piping order', () => {
  const a = runSignal('time');
  const b = runSignal('candles-first');
  assert.deepEqual(b.decisions, a.decisions);
  const times = [...new Set(a.decisions.map((d) => d.ts))];
  for (const t of times) assert.equal(t % 300_000, 0, 'stamped with the boundary');
  assert.ok(times.length >= 60, `${times.length} evaluations in six hours`);
  const last = a.decisions.filter((d) => d.ts === times[times.length - 1]);
  assert.deepEqual(last.map((d) => d.instrument).sort(), catalog.list());
  const eligible = a.decisions.filter((d) => d.eligible);
  assert.ok(eligible.length > 0 && eligible.length < a.decisions.length, `some but not all decisions eligible (${eligible.length} of ${a.decisions.length})`);
  for (const d of a.decisions) {
    assert.equal(d.eligible, d.reasons.length === 0, `${d.instrument}@${d.ts}: eligible exactly when no reason`);
    assert.ok(Number.isFinite(d.calmar) && Number.isFinite(d.hazard));
  }
});

test('each partition reports one partial per evaluation with exactly its instruments', () => {
  const { decisions, partials } = runSignal('time');
  for (const p of partials) {
    const own = decisions.filter((d) => d.ts === p.ts && partitionForKey(d.instrument, 3) === p.partition);
    assert.deepEqual(p.decisions.map((d) => d.instrument), own.map((d) => d.instrument));
  }
  const perPartition = [0, 1, 2].map((p) => partials.filter((x) => x.partition === p).map((x) => x.ts));
  for (const ts of perPartition) assert.deepEqual(ts, [...ts].sort((x, y) => x - y), 'in time order');
});

test('the blob stage publishes one blob per evaluation once every partition reported, whatever the arrival order', () => {
  const { decisions, partials } = runSignal('time');
  const expectedPartitions = [...new Set(catalog.list().map((i) => partitionForKey(i, 3)))];
  const blobs = (arrival: GatesPartial[]) => {
    const d = new TopologyTestDriver(gatesBlobTopology({ expectedPartitions }));
    for (const p of arrival) d.pipeInput(TOPICS.gatesPartial.name, String(p.partition), p, p.ts);
    return d.readOutput(TOPICS.gatesBlob.name).map((o) => o.value as GatesBlob);
  };
  // Arrival orders: partition by partition (2, then 1, then 0), and interleaved by time.
  const byPartition = [2, 1, 0].flatMap((p) => partials.filter((x) => x.partition === p));
  const a = blobs(byPartition);
  const b = blobs(partials);
  assert.deepEqual(a, b);
  // Evaluation times as the partials give them (the first ones may hold no instrument yet).
  const times = [...new Set(partials.map((p) => p.ts))];
  // Reported by every partition: each evaluation except possibly the last ones a partition never reached.
  assert.ok(a.length >= times.length - 1 && a.length <= times.length, `${a.length} blobs for ${times.length} evaluations`);
  for (const blob of a) {
    const at = decisions.filter((d) => d.ts === blob.ts);
    assert.deepEqual(blob, buildGatesBlob(blob.ts, at));
  }
  assert.deepEqual(a.map((x) => x.ts), [...a.map((x) => x.ts)].sort((x, y) => x - y), 'blobs in time order');
});
