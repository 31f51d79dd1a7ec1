/**
 * The bundled recorded day through features and the rolling gates on the real
 * stack: `sep import` → `sep run` (signal app + blob stage + Redis mirror +
 * /metrics). The decisions on gates.v1 and the blobs on gates.blob.v1 must
 * equal the offline computation (the same topology in the test driver over the
 * same files), the newest blob must be in Redis, and /metrics must show the
 * gates. A second run in a fresh consumer group must decide identically.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import avro from 'avsc';
import { Redis } from 'ioredis';
import { createNamespace, readTopic, ROOT, sep, urls, readNdjson, ONE_DAY_KNOBS } from './helpers.ts';
import { TopologyTestDriver } from '../../streams/runtime/test-driver.ts';
import { loadSchema, TOPICS } from '../../streams/runtime/topics.ts';
import { partitionForKey } from '../../streams/runtime/kafka.ts';
import { InstrumentCatalog } from '../../streams/model/instruments.ts';
import { DEFAULT_FEATURE_PARAMS } from '../../streams/features/features.ts';
import { resolveRegimeParams } from '../../streams/features/regime.ts';
import { resolveGatesConfig } from '../../streams/gates/config.ts';
import { signalTopology } from '../../streams/gates/topology.ts';
import { gatesBlobTopology } from '../../streams/gates/blob-processor.ts';
import type { GateDecision } from '../../streams/gates/evaluate.ts';
import type { GatesBlob } from '../../streams/gates/blob.ts';

const DAY = path.join(ROOT, 'data/recorded/2026-11-13');
const KNOBS = ONE_DAY_KNOBS;
const ns = createNamespace('gates');
const env = { ...ns.env, ...KNOBS };
const redis = new Redis(urls.REDIS_URL);
after(() => redis.disconnect());

/** The offline computation: the same topologies in the test driver over the same files. */
async function offline(): Promise<{ decisions: GateDecision[]; blobs: GatesBlob[] }> {
  const catalog = InstrumentCatalog.fromEnv({});
  const params = { ...DEFAULT_FEATURE_PARAMS, regime: resolveRegimeParams(KNOBS, {}) };
  const { config: gates } = resolveGatesConfig(KNOBS, {});
  const d = new TopologyTestDriver(signalTopology(catalog, { params, gates }), { partitions: 3 });
  for (const [topic, file] of [[TOPICS.candles.name, 'candles.ndjson'], [TOPICS.ticks.name, 'ticks.ndjson.gz']] as const) {
    for (const r of await readNdjson(path.join(DAY, file))) d.pipeInput(topic, r.instrument as string, r, Date.parse(r.ts as string));
  }
  const decisions = d.readOutput(TOPICS.gates.name).map((o) => o.value as GateDecision);
  const expectedPartitions = [...new Set(catalog.list().map((i) => partitionForKey(i, 3)))];
  const b = new TopologyTestDriver(gatesBlobTopology({ expectedPartitions }));
  for (const o of d.readOutput(TOPICS.gatesPartial.name)) b.pipeInput(TOPICS.gatesPartial.name, o.key, o.value, o.timestamp);
  return { decisions, blobs: b.readOutput(TOPICS.gatesBlob.name).map((o) => o.value as GatesBlob) };
}

const decode = (file: string) => {
  const type = avro.Type.forSchema(JSON.parse(loadSchema({ ...TOPICS.gates, schemaFile: file })));
  return (v: Buffer) => type.fromBuffer(v.subarray(5)) as Record<string, unknown>;
};
const gateOf = decode(TOPICS.gates.schemaFile);
const blobOf = decode(TOPICS.gatesBlob.schemaFile);
/** Avro gives maps as objects and logical timestamps as Dates; compare in the processors' own shape. */
const plain = (x: Record<string, unknown>) => JSON.parse(JSON.stringify(x, (_k, v) => (v instanceof Date ? v.getTime() : v))) as unknown;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const expected = offline();

test('sep import loads the bundled day\'s candles and ticks', { timeout: 240_000 }, async () => {
  const r = await sep(['import', path.join(DAY, 'candles.ndjson'), path.join(DAY, 'ticks.ndjson.gz')], env);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
});

test('sep run decides the gates exactly as the offline run; the newest blob is in Redis and the gates on /metrics', { timeout: 300_000 }, async () => {
  const { decisions, blobs } = await expected;
  assert.ok(decisions.some((d) => d.eligible) && decisions.some((d) => !d.eligible), 'the knobs make gates flip');
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/sep.mjs'), 'run', '--run-id', ns.runId], { cwd: ROOT, env: { ...process.env, CI: '1', ...env, SEP_HTTP_PORT: String(port) } });
  let out = '';
  child.stdout.on('data', (x) => (out += x));
  child.stderr.on('data', (x) => (out += x));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    const last = blobs[blobs.length - 1]!;
    const key = `${ns.prefix}opt:rolling:gates_blob`;
    const started = Date.now();
    let stored: GatesBlob | undefined;
    while (Date.now() - started < 240_000) {
      const raw = await redis.get(key);
      stored = raw ? (JSON.parse(raw) as GatesBlob) : undefined;
      if (stored?.ts === last.ts) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.deepEqual(stored, plain(last as unknown as Record<string, unknown>), `newest blob in Redis\n${out}`);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const eligible = Object.values(last.gates).filter(Boolean).length;
    assert.match(metrics, new RegExp(`^sep_rolling_eligible_count ${eligible}$`, 'm'));
    for (const [instrument, ok] of Object.entries(last.gates)) {
      assert.match(metrics, new RegExp(`^sep_rolling_gate\\{instrument="${instrument}",eligible="${ok ? 1 : 0}",buf="${last.bufs[instrument]}"\\} 1$`, 'm'), instrument);
      assert.match(metrics, new RegExp(`^sep_span_integrity_ok\\{instrument="${instrument}"\\} ${last.span_ok[instrument] ? 1 : 0}$`, 'm'));
    }
    assert.match(metrics, /^sep_gates_blob_age_seconds \d+/m);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, out);

  const got = (await readTopic(`${ns.prefix}gates.v1`)).map((m) => plain(gateOf(m.value!)) as GateDecision);
  const order = (xs: GateDecision[]) => [...xs].sort((a, b) => a.ts - b.ts || (a.instrument < b.instrument ? -1 : 1));
  assert.equal(got.length, decisions.length, 'one decision per instrument and evaluation');
  assert.deepEqual(order(got), order(decisions));
  const gotBlobs = (await readTopic(`${ns.prefix}gates.blob.v1`)).map((m) => plain(blobOf(m.value!)));
  assert.deepEqual(gotBlobs, blobs.map((b) => plain(b as unknown as Record<string, unknown>)), 'blobs in time order, equal to the offline ones');
});

test('replaying the day in a fresh consumer group gives byte-identical gate decisions', { timeout: 300_000 }, async () => {
  const before = await readTopic(`${ns.prefix}gates.v1`);
  const r = await sep(['run', '--run-id', `${ns.runId}-replay`, '--until-caught-up'], env);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const all = await readTopic(`${ns.prefix}gates.v1`);
  assert.equal(all.length, 2 * before.length);
  const bodies = (xs: typeof all) => {
    const m = new Map<string, string[]>();
    for (const x of xs.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))) m.set(x.key!, [...(m.get(x.key!) ?? []), x.value!.subarray(5).toString('base64')]);
    return m;
  };
  for (const [key, list] of bodies(all)) {
    const half = list.length / 2;
    assert.deepEqual(list.slice(half), list.slice(0, half), `${key}: the replay's decisions differ`);
  }
});
