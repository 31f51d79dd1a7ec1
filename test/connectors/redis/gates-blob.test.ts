import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatesBlobGauges, gatesBlobJson } from '../../../connectors/redis/gates-blob.ts';
import { registry } from '../../../streams/runtime/metrics.ts';
import { DEFAULT_GATES_CONFIG } from '../../../streams/gates/config.ts';
import type { GatesBlob } from '../../../streams/gates/blob.ts';

const T = Date.parse('2024-01-10T12:00:00Z'); // a Wednesday in winter: the market closes at 22:00 UTC (New York 17:00 EST)

const blob = (ts: number, over: Partial<GatesBlob> = {}): GatesBlob => ({
  ts, gates: { EUR_USD: true, USD_JPY: false }, cooldowns: {}, bufs: { EUR_USD: 0.1, USD_JPY: 0.1 },
  repetition: { EUR_USD: 4, USD_JPY: 4 }, hazard: { EUR_USD: 0.2, USD_JPY: 0.2 }, calmar: { EUR_USD: 0.4, USD_JPY: 0.1 },
  span_ok: { EUR_USD: true, USD_JPY: true }, ...over,
});

async function samples(name: string): Promise<string[]> {
  const text = await registry.metrics();
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)).map((l) => l.slice(name.length).trim()).sort();
}

function gauges(clock: { t: number }, gates = DEFAULT_GATES_CONFIG): GatesBlobGauges {
  const g = new GatesBlobGauges(gates, () => clock.t);
  g.attach();
  return g;
}

test('the Redis JSON has the schema fields in order, ts and cooldown ends in epoch ms', () => {
  const json = gatesBlobJson(blob(T, { cooldowns: { USD_JPY: T + 7_200_000 } }));
  const parsed = JSON.parse(json);
  assert.deepEqual(Object.keys(parsed), ['ts', 'gates', 'cooldowns', 'bufs', 'repetition', 'hazard', 'calmar', 'span_ok']);
  assert.equal(parsed.ts, T);
  assert.equal(parsed.cooldowns.USD_JPY, T + 7_200_000);
});

test('blob age is the injected wall clock minus the newest ts, at each scrape; no sample before the first blob', async (t) => {
  const clock = { t: T };
  const g = gauges(clock);
  t.after(() => g.withdraw());
  assert.deepEqual(await samples('sep_gates_blob_age_seconds'), []);
  assert.equal(g.apply(blob(T - 60_000)), true);
  clock.t = T + 2_500;
  assert.deepEqual(await samples('sep_gates_blob_age_seconds'), ['62.5']);
  clock.t = T + 200_000;
  assert.deepEqual(await samples('sep_gates_blob_age_seconds'), ['260'], 'computed at scrape, not at apply');
  assert.equal(g.apply(blob(T - 120_000)), false, 'an older blob is not applied');
  assert.deepEqual(await samples('sep_gates_blob_age_seconds'), ['260']);
  assert.equal(g.apply(blob(T + 180_000)), true);
  assert.deepEqual(await samples('sep_gates_blob_age_seconds'), ['20']);
});

test('session open follows the gates calendar and the exit window (inclusive, as evaluate.ts)', async (t) => {
  const clock = { t: T };
  const g = gauges(clock);
  t.after(() => g.withdraw());
  const at = (iso: string) => g.sessionOpen(Date.parse(iso));
  assert.equal(at('2024-01-10T12:00:00Z'), true);
  assert.equal(at('2024-01-10T21:54:00Z'), true, '6 minutes before the close');
  assert.equal(at('2024-01-10T21:55:00Z'), false, 'exactly SESSION_EXIT_MINUTES before the close');
  assert.equal(at('2024-01-10T23:00:00Z'), false, 'nightly close');
  assert.equal(at('2024-01-13T12:00:00Z'), false, 'Saturday');
  assert.deepEqual(await samples('sep_rolling_session_open'), ['1']);
  clock.t = Date.parse('2024-01-13T12:00:00Z');
  assert.deepEqual(await samples('sep_rolling_session_open'), ['0']);
  assert.deepEqual(await samples('sep_gates_blob_max_age_seconds'), [String(DEFAULT_GATES_CONFIG.blobMaxAgeSec)]);
});

test('each instrument keeps one sep_rolling_gate series; instruments that leave the blob lose theirs', async (t) => {
  const g = gauges({ t: T });
  t.after(() => g.withdraw());
  g.apply(blob(T));
  g.apply(blob(T + 60_000, {
    gates: { EUR_USD: false, GBP_USD: true }, bufs: { EUR_USD: 0.15, GBP_USD: 0.1 },
    cooldowns: { EUR_USD: T + 7_260_000 }, span_ok: { EUR_USD: false, GBP_USD: true },
  }));
  assert.deepEqual(await samples('sep_rolling_gate'), [
    '{instrument="EUR_USD",eligible="0",buf="0.15"} 1',
    '{instrument="GBP_USD",eligible="1",buf="0.1"} 1',
  ]);
  assert.deepEqual(await samples('sep_rolling_cooldown'), ['{instrument="EUR_USD"} 1', '{instrument="GBP_USD"} 0']);
  assert.deepEqual(await samples('sep_span_integrity_ok'), ['{instrument="EUR_USD"} 0', '{instrument="GBP_USD"} 1']);
  assert.deepEqual(await samples('sep_rolling_eligible_count'), ['1']);
});

test('a cooldown that ended by the blob\'s ts does not count', async (t) => {
  const g = gauges({ t: T });
  t.after(() => g.withdraw());
  g.apply(blob(T, { cooldowns: { EUR_USD: T, USD_JPY: T + 1 } }));
  assert.deepEqual(await samples('sep_rolling_cooldown'), ['{instrument="EUR_USD"} 0', '{instrument="USD_JPY"} 1']);
});

test('withdraw removes every series, the samplers and the max age', async () => {
  const g = gauges({ t: T });
  g.apply(blob(T, { cooldowns: { USD_JPY: T + 1 } }));
  g.withdraw();
  for (const name of ['sep_rolling_gate', 'sep_rolling_eligible_count', 'sep_rolling_cooldown', 'sep_span_integrity_ok', 'sep_gates_blob_age_seconds', 'sep_rolling_session_open', 'sep_gates_blob_max_age_seconds']) {
    assert.deepEqual(await samples(name), [], name);
  }
  assert.equal(g.newestTs, undefined);
});
