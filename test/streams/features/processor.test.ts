import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TopologyTestDriver } from '../../../streams/runtime/test-driver.ts';
import { featuresTopology } from '../../../streams/features/processor.ts';
import { initialFeatureState, nextFeature, type Feature } from '../../../streams/features/features.ts';
import { InstrumentCatalog } from '../../../streams/model/instruments.ts';
import { generateRecordedDay } from '../../../src/generate/recorded-day.ts';
import { TOPICS } from '../../../streams/runtime/topics.ts';

const day = generateRecordedDay({ seed: 5, from: Date.UTC(2026, 10, 13, 6), to: Date.UTC(2026, 10, 13, 9) });
const catalog = InstrumentCatalog.fromEnv({});

test('the features topology gives, per instrument, exactly the pure recursion', () => {
  const d = new TopologyTestDriver(featuresTopology(catalog), { partitions: 3 });
  for (const c of day.candles) d.pipeInput(TOPICS.candles.name, c.instrument, { ...c }, c.ts);
  const out = d.readOutput(TOPICS.features.name);
  assert.equal(out.length, day.candles.length);
  const states = new Map<string, ReturnType<typeof initialFeatureState>>();
  const expected = day.candles.map((c) => {
    const step = nextFeature(states.get(c.instrument) ?? initialFeatureState(), c);
    states.set(c.instrument, step.state);
    return step.feature;
  });
  const byKey = (xs: Feature[]) => xs.map((f) => `${f.instrument}/${f.ts}`).sort();
  assert.deepEqual(byKey(out.map((o) => o.value as Feature)), byKey(expected));
  const got = new Map(out.map((o) => [`${o.key}/${o.timestamp}`, o.value as Feature]));
  for (const e of expected) assert.deepEqual(got.get(`${e.instrument}/${e.ts}`), e);
});

test('a repeated or older candle for an instrument is rejected as late and changes nothing', () => {
  const d = new TopologyTestDriver(featuresTopology(catalog));
  const [a, b] = day.candles.filter((c) => c.instrument === 'EUR_USD');
  d.pipeInput(TOPICS.candles.name, a!.instrument, { ...a }, a!.ts);
  d.pipeInput(TOPICS.candles.name, b!.instrument, { ...b }, b!.ts);
  d.pipeInput(TOPICS.candles.name, a!.instrument, { ...a }, a!.ts);
  assert.deepEqual(d.rejections.map((r) => [r.error.reason, 'field' in r.error ? r.error.field : undefined]), [['late', 'ts']]);
  assert.equal(d.readOutput(TOPICS.features.name).length, 2);
});

test('invalid candles are rejected with their reason and field; the stream goes on', () => {
  const d = new TopologyTestDriver(featuresTopology(catalog));
  const c = day.candles[0]!;
  d.pipeInput(TOPICS.candles.name, c.instrument, { ...c, high: c.low - 0.001 }, c.ts);
  d.pipeInput(TOPICS.candles.name, 'XAU_EUR', { ...c, instrument: 'XAU_EUR' }, c.ts);
  d.pipeInput(TOPICS.candles.name, c.instrument, { ...c }, c.ts);
  assert.deepEqual(d.rejections.map((r) => r.error.reason), ['invalid_value', 'unknown_instrument']);
  assert.equal(d.readOutput(TOPICS.features.name).length, 1);
});

test('spread_bps is the mean tick spread of the bar (ticks in (close − 60 s, close]), merged by timestamp whatever the piping order', () => {
  const d = new TopologyTestDriver(featuresTopology(catalog), { partitions: 3 });
  // Candles piped before the ticks: the driver merges the two sources by timestamp, as the Kafka path does.
  for (const c of day.candles) d.pipeInput(TOPICS.candles.name, c.instrument, { ...c }, c.ts);
  for (const t of day.ticks) d.pipeInput(TOPICS.ticks.name, t.instrument, { ...t }, t.ts);
  const out = d.readOutput(TOPICS.features.name).map((o) => o.value as Feature);
  assert.equal(out.length, day.candles.length);
  assert.equal(d.rejections.length, 0);
  let checked = 0;
  for (const f of out) {
    const ticks = day.ticks.filter((t) => t.instrument === f.instrument && t.ts > f.ts - 60_000 && t.ts <= f.ts);
    if (ticks.length === 0) { assert.equal(f.spread_bps, null); continue; }
    const mean = ticks.reduce((s, t) => s + ((t.ask - t.bid) / ((t.ask + t.bid) / 2)) * 1e4, 0) / ticks.length;
    assert.ok(Math.abs(f.spread_bps! - mean) < 1e-9, `${f.instrument} ${f.ts}: ${f.spread_bps} ≠ ${mean}`);
    checked++;
  }
  assert.ok(checked > out.length / 2, `most bars have ticks (${checked} of ${out.length})`);
});

test('a tick at or before the instrument\'s last bar is late: its bar\'s spread is already out', () => {
  const d = new TopologyTestDriver(featuresTopology(catalog));
  const c = day.candles[0]!;
  const t = day.ticks.find((x) => x.instrument === c.instrument)!;
  d.pipeInput(TOPICS.candles.name, c.instrument, { ...c }, c.ts);
  d.readOutput(TOPICS.features.name);
  d.pipeInput(TOPICS.ticks.name, c.instrument, { ...t, ts: c.ts - 1000 }, c.ts - 1000);
  assert.deepEqual(d.rejections.map((r) => r.error.reason), ['late']);
});
