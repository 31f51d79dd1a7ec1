/**
 * The bundled day through candles → features → gates → blob → allocator-lite
 * on the real stack (`sep import` → `sep run --until-caught-up`), read the way
 * an executor reads it: subscribeAllocations (read_committed). Every decision
 * must arrive exactly once, in seq order 1…N, equal to the offline run of the
 * same topologies; Redis `risk:allocation_weights` must hold the last one; a
 * restarted executor that gives its last applied seq gets only what follows.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createNamespace, readTopic, ROOT, sep, urls, readNdjson, ONE_DAY_KNOBS } from './helpers.ts';
import { TopologyTestDriver } from '../../streams/runtime/test-driver.ts';
import { TOPICS } from '../../streams/runtime/topics.ts';
import { createKafka, partitionForKey } from '../../streams/runtime/kafka.ts';
import { AvroSerde } from '../../streams/runtime/serde.ts';
import { gatesBlobTopology } from '../../streams/gates/blob-processor.ts';
import type { GatesPartial } from '../../streams/gates/processor.ts';
import { pipelineTopology } from '../../streams/execution/topology.ts';
import { resolvePipelineConfig } from '../../src/pipeline/run.ts';
import { subscribeAllocations, type Allocation } from '../../connectors/executor/allocations.ts';
import { allocationWeightsJson } from '../../connectors/redis/allocation-weights.ts';

const DAY = path.join(ROOT, 'data/recorded/2026-11-13');
const KNOBS = ONE_DAY_KNOBS;
const ns = createNamespace('alloc');
const env = { ...ns.env, ...KNOBS };
const redis = new Redis(urls.REDIS_URL);
const kafka = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: 'it-executor' });
const serde = new AvroSerde(urls.SCHEMA_REGISTRY_URL);
after(() => redis.disconnect());

/** The offline computation: the live path's topologies (pipelineTopology, then the blob stage with the allocator) in the test driver over the same files. */
async function offline(): Promise<{ allocations: Allocation[]; partials: GatesPartial[] }> {
  const config = resolvePipelineConfig(KNOBS);
  const d = new TopologyTestDriver(pipelineTopology(config.catalog, config), { partitions: 3 });
  for (const [topic, file] of [[TOPICS.candles.name, 'candles.ndjson'], [TOPICS.ticks.name, 'ticks.ndjson.gz']] as const) {
    for (const r of await readNdjson(path.join(DAY, file))) d.pipeInput(topic, r.instrument as string, r, Date.parse(r.ts as string));
  }
  const expectedPartitions = [...new Set(config.catalog.list().map((i) => partitionForKey(i, 3)))];
  const b = new TopologyTestDriver(gatesBlobTopology({ expectedPartitions, allocator: { config: config.allocator } }));
  for (const o of d.readOutput(TOPICS.gatesPartial.name)) b.pipeInput(TOPICS.gatesPartial.name, o.key, o.value, o.timestamp);
  return { allocations: b.readOutput(TOPICS.allocations.name).map((o) => o.value as Allocation), partials: d.readOutput(TOPICS.gatesPartial.name).map((o) => o.value as GatesPartial) };
}

/** Avro gives logical timestamps as Dates; compare in the allocator's own shape. */
const plain = (x: unknown) => JSON.parse(JSON.stringify(x, (_k, v) => (v instanceof Date ? v.getTime() : v))) as unknown;

/** An executor's subscription that collects every decision handed over. */
async function executor(groupId: string, afterSeq?: number) {
  const got: Allocation[] = [];
  const sub = await subscribeAllocations({ kafka, serde, groupId, topic: `${ns.prefix}${TOPICS.allocations.name}`, afterSeq, onAllocation: (a) => { got.push(a); } });
  return {
    got, sub,
    async until(seq: number): Promise<void> {
      const deadline = Date.now() + 60_000;
      while ((got.at(-1)?.seq ?? 0) < seq) {
        if (Date.now() > deadline) throw new Error(`executor saw ${got.length} decisions (last seq ${got.at(-1)?.seq}), waited for ${seq}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      await sub.stop();
    },
  };
}

test('the executor sees every allocation decision of the bundled day exactly once, in seq order, equal to the offline run; Redis holds the last', { timeout: 600_000 }, async () => {
  const { allocations: expected, partials } = await offline();
  assert.ok(expected.length > 10, `${expected.length} decisions`);
  assert.ok(expected.some((a) => a.weights.some((w) => w.weight > 0)), 'the knobs make the allocator size something');
  assert.ok(expected.some((a) => a.weights.some((w) => w.reasons.includes('ramp'))), 'ramp limits an increase somewhere');
  // The allocator's other inputs travel with the gates partials: each instrument's ewma_vol and its latest calibration.
  assert.ok(partials.at(-1)!.decisions.every((x) => typeof x.vol === 'number' && x.calibration && x.calibration.spread_bps_ewma !== null), 'vols and calibrations reach the blob stage');

  const imported = await sep(['import', path.join(DAY, 'candles.ndjson'), path.join(DAY, 'ticks.ndjson.gz')], env);
  assert.equal(imported.code, 0, imported.stdout + imported.stderr);
  // The executor is subscribed before the allocator starts, as a live executor is. (A consumer that
  // starts later reads the compacted topic: older decisions may be gone, only the latest is kept.)
  const live = await executor(`${ns.prefix}executor`);
  const run = await sep(['run', '--run-id', ns.runId, '--until-caught-up'], env, 400_000);
  assert.equal(run.code, 0, run.stdout + run.stderr);

  const last = expected.at(-1)!;
  await live.until(last.seq);
  assert.deepEqual(live.got.map((a) => a.seq), expected.map((_, i) => i + 1), 'seq 1…N, each once, in order');
  assert.equal(live.sub.skipped, 0);
  assert.equal(live.sub.duplicates, 0);
  assert.deepEqual(plain(live.got), plain(expected));

  assert.equal(await redis.get(`${ns.prefix}risk:allocation_weights`), allocationWeightsJson(last));

  // A restarted executor (a new group, reading what the compacted topic kept) that applied up to seq k
  // gets only decisions after k, in order, through the last; the ones it had are skipped, not repeated.
  const k = Math.floor(expected.length / 2);
  const again = await executor(`${ns.prefix}executor-restarted`, k);
  await again.until(last.seq);
  const seqs = again.got.map((a) => a.seq);
  assert.ok(seqs.every((q, i) => q > k && (i === 0 || q > seqs[i - 1]!)), `after ${k}, increasing: ${seqs.join(',')}`);
  assert.equal(seqs.at(-1), last.seq);
  assert.deepEqual(plain(again.got.at(-1)), plain(last));
});

test('sep overlays computes the HRP budget and CVaR caps from the run\'s hourly candles and publishes them on alloc.overlay.v1 and in Redis', { timeout: 180_000 }, async () => {
  // One recorded day has ~24 hourly bars per instrument: knobs small enough for it.
  const knobs = { HRP_LOOKBACK_D: '3', HRP_MIN_OBS: '20', CVAR_MIN_SAMPLES: '20', CLUSTER_MAP: JSON.stringify({ usd: ['EUR_USD', 'GBP_USD', 'AUD_USD', 'NZD_USD'], jpy: ['USD_JPY', 'EUR_JPY', 'GBP_JPY'] }) };
  const r = await sep(['overlays', '--as-of', '2026-11-16T00:00:00Z', '--run-id', ns.runId], { ...env, ...knobs });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const budget = await redis.hgetall(`${ns.prefix}hrp:budget:20261116`);
  assert.deepEqual(Object.keys(budget).sort(), ['jpy', 'other', 'usd']);
  const total = Object.values(budget).reduce((s, v) => s + (JSON.parse(v) as { max_equity_risk: number }).max_equity_risk, 0);
  assert.ok(Math.abs(total - 0.1) < 1e-9, `cluster budgets sum to TARGET_RISK_BUDGET: ${total}`);
  const cvar = JSON.parse((await redis.get(`${ns.prefix}cvar:EUR_USD:1h`))!) as { cvar_r: number; scope: string; last_update: string };
  assert.ok(cvar.cvar_r < 0 && cvar.scope === 'symbol' && cvar.last_update === '2026-11-16T00:00:00Z', JSON.stringify(cvar));
  const records = await readTopic(`${ns.prefix}${TOPICS.allocationOverlay.name}`);
  assert.equal(records.length, 1);
  assert.equal(Number(records[0]!.timestamp), Date.UTC(2026, 10, 16));
  // Bad input: a range with no candles is refused, naming it; nothing more is published.
  const empty = await sep(['overlays', '--as-of', '2025-01-01T00:00:00Z', '--run-id', ns.runId], { ...env, ...knobs });
  assert.equal(empty.code, 2, empty.stdout + empty.stderr);
  assert.match(empty.stderr, /no hourly candles for run/);
  assert.equal((await readTopic(`${ns.prefix}${TOPICS.allocationOverlay.name}`)).length, 1);
});
