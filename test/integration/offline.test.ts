/**
 * Offline mode against the Kafka path (DESIGN §8: "its outputs must equal the
 * Kafka path's"): the bundled day through `sep offline` (in-process, files)
 * and through `sep import` + `sep run --until-caught-up` (the real stack),
 * with the gates test's knobs so gates flip and the allocator sizes
 * something. Every output topic must hold the records the offline files
 * hold, in the files' order (partition, then offset): features.v1, gates.v1,
 * gates.blob.v1, markout.v1 read back after the run; alloc.weights.v1 and
 * calib.cost.v1 (compacted: a later reader may find older records gone)
 * collected by a consumer subscribed before the run starts. summary.json's
 * config hash must be the one `sep run` records in `runs`.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assertSameRecords, createNamespace, decoder, readTopic, ROOT, sep, urls, ONE_DAY_KNOBS, type Collected } from './helpers.ts';
import { createKafka } from '../../streams/runtime/kafka.ts';
import { TOPICS } from '../../streams/runtime/topics.ts';
import type { OfflineSummary } from '../../connectors/replay/offline.ts';

const DAY = path.join(ROOT, 'data/recorded/2026-11-13');
const KNOBS = ONE_DAY_KNOBS;
const ns = createNamespace('offline');
const env = { ...ns.env, ...KNOBS };
const kafka = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: 'it-offline' });
const consumer = kafka.consumer({ groupId: `${ns.prefix}it-offline-collector`, readUncommitted: false });
after(() => consumer.disconnect().catch(() => {}));

const READ_BACK = [TOPICS.features, TOPICS.gates, TOPICS.gatesBlob, TOPICS.markouts];
const COMPACTED = [TOPICS.allocations, TOPICS.costCalibration];

test('sep offline writes what sep import + sep run --until-caught-up write to the topics, record for record', { timeout: 300_000 }, async () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'sep-offline-it-'));
  const [offline, imported] = await Promise.all([sep(['offline', DAY, '--out', out, '--run-id', ns.runId], env), sep(['import', DAY], env)]);
  assert.equal(offline.code, 0, `${offline.stdout}\n${offline.stderr}`);
  assert.equal(imported.code, 0, `${imported.stdout}\n${imported.stderr}`);
  const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as OfflineSummary;
  assert.equal(summary.input_records, 239_711);
  assert.ok(summary.outputs['alloc.weights.v1']!.records > 10);
  assert.ok(readFileSync(path.join(out, 'alloc.weights.v1.ndjson'), 'utf8').includes('"weight":0.'), 'the knobs make the allocator size something');

  // The compacted topics are collected as the run writes them (the topics exist: sep import created them).
  const collected = new Map<string, Collected[]>(COMPACTED.map((s) => [`${ns.prefix}${s.name}`, []]));
  await consumer.connect();
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  for (const topic of collected.keys()) await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ topic, partition, message }) => { collected.get(topic)!.push({ partition, offset: message.offset, value: message.value! }); } });
  await joined;

  // The embedded TimescaleDB takes one connection: none is held while the run is live.
  const run = await sep(['run', '--run-id', ns.runId, '--until-caught-up'], env, 240_000);
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);

  for (const spec of READ_BACK) {
    const records = (await readTopic(`${ns.prefix}${spec.name}`)).map((m) => ({ partition: m.partition, offset: m.offset, value: m.value! }));
    assertSameRecords(spec.name, records, path.join(out, `${spec.name}.ndjson`), decoder(spec));
  }
  const deadline = Date.now() + 60_000;
  for (const spec of COMPACTED) {
    const want = summary.outputs[spec.name]!.records;
    while (collected.get(`${ns.prefix}${spec.name}`)!.length < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assertSameRecords(spec.name, collected.get(`${ns.prefix}${spec.name}`)!, path.join(out, `${spec.name}.ndjson`), decoder(spec));
  }
  await consumer.disconnect();

  // `sep run` logs the hash it records in runs.config_hash ("run ID (live), config <first 12 hex>"); read
  // from its output, so no database connection is needed here (the embedded TimescaleDB takes one).
  assert.match(run.stdout, new RegExp(`run ${ns.runId} \\(live\\), config ${summary.config_hash.slice(0, 12)}`), 'summary.json config_hash = the Kafka run\'s');
});
