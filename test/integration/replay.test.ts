/**
 * Replay and canary replay on the real stack (DESIGN §8, issue 8). The bundled
 * day is imported once into a fresh namespace and run live (`sep run
 * --until-caught-up`, the gates test's knobs) while a consumer of the live
 * alloc.weights.v1 — the executor's view — collects every decision. Then:
 *
 * - two `sep replay`s of the whole day run at once; each one's outputs are
 *   byte-identical to the live run's and equal to `sep offline`'s files, and
 *   the executor's consumer has seen nothing but the live decisions;
 * - bad input: a range without data, a run id in use, an unknown run id, an
 *   unknown knob, a corrupt line in a recorded file — each a clear error and
 *   nothing left behind;
 * - `sep canary` with identical configurations passes with zero drift; with a
 *   wider hysteresis buffer it reports the gate flips, and fails (exit 2) on a
 *   tight drift cap.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assertSameBytes, assertSameRecords, createNamespace, decoder, readTopic, ROOT, sep, urls, ONE_DAY_KNOBS, type Collected } from './helpers.ts';
import { connectAdmin, createKafka } from '../../streams/runtime/kafka.ts';
import { TOPICS, type TopicSpec } from '../../streams/runtime/topics.ts';
import { connectDatabase } from '../../src/pipeline/services.ts';

const DAY = path.join(ROOT, 'data/recorded/2026-11-13');
/** The bundled day's range, with its last records (timestamps up to 2026-11-16T00:00) inside. */
const RANGE = ['--from', '2026-11-13T00:00:00Z', '--to', '2026-11-17T00:00:00Z'];
const ns = createNamespace('replay');
const env = { ...ns.env, ...ONE_DAY_KNOBS };
const kafka = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: 'it-replay' });
/** The executor's view: a consumer of the live alloc.weights.v1 (and calib.cost.v1, compacted too), subscribed before anything runs. */
const executor = kafka.consumer({ groupId: `${ns.prefix}it-executor`, readUncommitted: false });
after(() => executor.disconnect().catch(() => {}));

const OUTPUTS: TopicSpec[] = [TOPICS.features, TOPICS.gates, TOPICS.gatesBlob, TOPICS.markouts, TOPICS.allocations, TOPICS.costCalibration];
const COMPACTED = new Set([TOPICS.allocations.name, TOPICS.costCalibration.name]);
const live = (spec: TopicSpec) => `${ns.prefix}${spec.name}`;
const replayed = (runId: string, spec: TopicSpec) => `${ns.prefix}replay.${runId}.${spec.name}`;
const records = async (topic: string): Promise<Collected[]> => (await readTopic(topic)).map((m) => ({ partition: m.partition, offset: m.offset, value: m.value! }));
const ok = (r: { code: number | null; stdout: string; stderr: string }, code = 0) => assert.equal(r.code, code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);

async function query<T extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
  // The embedded TimescaleDB takes one connection: only while no `sep` child runs.
  const db = await connectDatabase(urls.DATABASE_URL);
  try {
    return (await db.query<T>(sql, params)).rows;
  } finally {
    await db.end();
  }
}

async function topicsOf(prefix: string): Promise<string[]> {
  const admin = await connectAdmin(kafka, urls.KAFKA_BROKERS);
  try {
    return (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  } finally {
    await admin.disconnect();
  }
}

const out = mkdtempSync(path.join(os.tmpdir(), 'sep-replay-it-'));
// Run ids are global in TimescaleDB (runs, rows): namespaced like the topics, so the test can run again on one stack.
const RA = `${ns.runId}-a`;
const RB = `${ns.runId}-b`;
const SEEDED = `${ns.runId}-seeded`;
const CLEAN = `${ns.runId}-clean`;
const SAME = `${ns.runId}-c-same`;
const WIDE = `${ns.runId}-c-wide`;
const seen = new Map<string, Collected[]>([[live(TOPICS.allocations), []], [live(TOPICS.costCalibration), []]]);

test('two replays at once equal the live run byte for byte and the offline run record for record; the executor sees only the live decisions', { timeout: 600_000 }, async () => {
  const [offline, imported] = await Promise.all([sep(['offline', DAY, '--out', out], env), sep(['import', DAY], env)]);
  ok(offline);
  ok(imported);

  await executor.connect();
  const joined = new Promise<void>((resolve) => executor.on(executor.events.GROUP_JOIN, () => resolve()));
  for (const topic of seen.keys()) await executor.subscribe({ topic, fromBeginning: true });
  await executor.run({ eachMessage: async ({ topic, partition, message }) => { seen.get(topic)!.push({ partition, offset: message.offset, value: message.value! }); } });
  await joined;

  ok(await sep(['run', '--run-id', ns.runId, '--until-caught-up'], env));
  const offlineOutputs = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')).outputs as Record<string, { records: number }>;
  const decisions = offlineOutputs['alloc.weights.v1']!.records;
  for (let t = Date.now(); seen.get(live(TOPICS.allocations))!.length < decisions && Date.now() - t < 60_000;) await new Promise((r) => setTimeout(r, 200));

  const [a, b] = await Promise.all([sep(['replay', ...RANGE, '--run-id', RA], env), sep(['replay', ...RANGE, '--run-id', RB], env)]);
  ok(a);
  ok(b);
  assert.match(a.stdout, new RegExp(`replay ${RA} done: 239,711 input records in [\\d.]+ s`));

  for (const spec of OUTPUTS) {
    const ra = await records(replayed(RA, spec));
    assertSameRecords(`replay ra ${spec.name}`, ra, path.join(out, `${spec.name}.ndjson`), decoder(spec));
    assertSameBytes(`${spec.name}: replay ra vs replay rb`, ra, await records(replayed(RB, spec)));
    // The live topics that are compacted: what the executor's consumer collected as the live run wrote them.
    assertSameBytes(`${spec.name}: replay ra vs live`, ra, COMPACTED.has(spec.name) ? seen.get(live(spec))! : await records(live(spec)));
  }
  // Nothing more reached the executor while the replays ran: still exactly the live run's decisions.
  await new Promise((r) => setTimeout(r, 2000));
  assertSameRecords('live alloc.weights.v1 as the executor saw it', seen.get(live(TOPICS.allocations))!, path.join(out, 'alloc.weights.v1.ndjson'), decoder(TOPICS.allocations));

  const runs = await query<{ run_id: string; kind: string; status: string; range_from: Date; range_to: Date; end_offsets: Record<string, Record<string, string>>; summary: { rows_by_table: Record<string, number> } }>(
    'SELECT run_id, kind, status, range_from, range_to, end_offsets, summary FROM runs WHERE run_id = ANY($1) ORDER BY run_id', [[RA, RB]]);
  assert.deepEqual(runs.map((r) => [r.run_id, r.kind, r.status, r.range_from.toISOString(), r.range_to.toISOString()]),
    [[RA, 'replay', 'completed', '2026-11-13T00:00:00.000Z', '2026-11-17T00:00:00.000Z'], [RB, 'replay', 'completed', '2026-11-13T00:00:00.000Z', '2026-11-17T00:00:00.000Z']]);
  assert.equal(Object.values(runs[0]!.end_offsets[live(TOPICS.ticks)]!).reduce((n, o) => n + Number(o), 0), 210_972, 'the ticks end offsets: every tick');
  const counts = await query<{ run_id: string; n: string }>(`SELECT run_id, count(*) AS n FROM gate_decisions WHERE run_id = ANY($1) GROUP BY run_id ORDER BY run_id`, [[ns.runId, RA, RB]]);
  assert.equal(new Set(counts.map((c) => c.n)).size, 1, `gate decisions per run: ${JSON.stringify(counts)}`);
  assert.equal(counts.length, 3);
  for (const [table, topic] of [['features', 'features.v1'], ['gate_decisions', 'gates.v1'], ['markouts', 'markout.v1'], ['gates_blobs', 'gates.blob.v1']] as const) {
    assert.equal(runs[0]!.summary.rows_by_table[table], offlineOutputs[topic]!.records, `runs.summary of ${RA}: ${table} rows = ${topic} records`);
  }
});

test('a replay seeded from a calibration snapshot starts from it; a clean one from nothing', { timeout: 300_000 }, async () => {
  const snap = path.join(out, 'calib.snapshot.json');
  ok(await sep(['calib', 'snapshot', '--run-id', ns.runId, '--out', snap], env));
  // Friday morning (2026-11-15 is a Sunday: the FX market is closed, the day holds nothing).
  const part = ['--from', '2026-11-13T06:00:00Z', '--to', '2026-11-13T12:00:00Z'];
  const [seeded, clean] = await Promise.all([sep(['replay', ...part, '--run-id', SEEDED, '--snapshot', snap], env), sep(['replay', ...part, '--run-id', CLEAN], env)]);
  ok(seeded);
  ok(clean);
  assert.match(seeded.stdout, /calibration state seeded from .*calib\.snapshot\.json \(\d+ instruments\)/);
  // The first publication per instrument: the seeded run's counts go on from the live run's whole day.
  const firstSamples = async (runId: string) => {
    const first = new Map<string, number>();
    for (const r of await records(replayed(runId, TOPICS.costCalibration))) {
      const c = decoder(TOPICS.costCalibration)(r.value) as { instrument: string; samples: number };
      if (!first.has(c.instrument)) first.set(c.instrument, c.samples);
    }
    return first;
  };
  const [s, c] = [await firstSamples(SEEDED), await firstSamples(CLEAN)];
  assert.ok(c.size > 0);
  for (const [instrument, n] of c) assert.ok((s.get(instrument) ?? 0) > n, `${instrument}: seeded ${s.get(instrument)} samples, clean ${n}`);
  const runs = await query<{ run_id: string; snapshot: string | null }>('SELECT run_id, snapshot FROM runs WHERE run_id = ANY($1) ORDER BY run_id', [[SEEDED, CLEAN]]);
  assert.deepEqual(runs, [{ run_id: CLEAN, snapshot: null }, { run_id: SEEDED, snapshot: snap }]);
});

test('bad input: a clear error and nothing left behind', { timeout: 300_000 }, async () => {
  const empty = await sep(['replay', '--from', '2026-11-20T00:00:00Z', '--to', '2026-11-21T00:00:00Z', '--run-id', 'x-empty'], env);
  ok(empty, 1);
  assert.match(empty.stderr, /no records with timestamps in \[2026-11-20T00:00:00\.000Z, 2026-11-21T00:00:00\.000Z\) on .*md\.candles\.v1/);

  const before = await query<{ n: string }>('SELECT count(*) AS n FROM features WHERE run_id = $1', [RA]);
  const reused = await sep(['replay', ...RANGE, '--run-id', RA], env);
  ok(reused, 1);
  assert.match(reused.stderr, new RegExp(`run id ${RA} is in use: a replay run in TimescaleDB .*sep replay --delete ${RA}`));

  const unknown = await sep(['replay', '--delete', 'x-nope'], env);
  ok(unknown, 1);
  assert.match(unknown.stderr, new RegExp(`unknown run id "x-nope": .*recent replays: .*${RA}`));

  const knobs = path.join(out, 'bad-knobs.json');
  writeFileSync(knobs, '{"GATES_SPAN_DAY": 0.25}');
  const badKnob = await sep(['replay', ...RANGE, '--run-id', 'x-knob', '--config', knobs], env);
  ok(badKnob, 2);
  assert.match(badKnob.stderr, /"GATES_SPAN_DAY" is not a pipeline knob \(knobs starting GATES_: .*GATES_SPAN_DAYS/);

  const tampered = path.join(out, 'tampered.snapshot.json');
  writeFileSync(tampered, readFileSync(path.join(out, 'calib.snapshot.json'), 'utf8').replace(/"slippage_samples":\d+/, '"slippage_samples":987654'));
  const badSnapshot = await sep(['replay', ...RANGE, '--run-id', 'x-snap', '--snapshot', tampered], env);
  ok(badSnapshot, 1);
  assert.match(badSnapshot.stderr, /cost calibration snapshot refused \(bad_checksum\)/);

  const rewind = await sep(['rewind', '--run-id', RA, '--to-datetime', '2026-11-14T00:00:00Z'], env);
  ok(rewind, 1);
  assert.match(rewind.stderr, new RegExp(`run ${RA} is a replay \\(its outputs are on .*replay\\.${RA}\\.\\*\\): replay the range again under a new run id`));

  // Nothing of the refused runs exists, and the run in use is untouched.
  assert.deepEqual([...await topicsOf(`${ns.prefix}replay.x-`), ...await topicsOf(`${ns.prefix}sep-features-x-`)], []);
  assert.deepEqual(await query(`SELECT run_id FROM runs WHERE run_id LIKE 'x-%'`), []);
  assert.deepEqual(await query<{ n: string }>('SELECT count(*) AS n FROM features WHERE run_id = $1', [RA]), before);

  // A corrupt line in a recorded file: named with file:line, dead-lettered, the other lines imported.
  const other = createNamespace('replay-bad');
  const file = path.join(out, 'candles-corrupt.ndjson');
  const lines = readFileSync(path.join(DAY, 'candles.ndjson'), 'utf8').split('\n').slice(0, 3);
  writeFileSync(file, [lines[0], '{"instrument": "EUR_USD", "ts": ', lines[2]].join('\n') + '\n');
  const corrupt = await sep(['import', file], other.env);
  ok(corrupt, 3);
  assert.match(corrupt.stdout, /candles-corrupt\.ndjson:2: malformed/);
  assert.equal((await readTopic(`${other.prefix}${TOPICS.candles.name}`)).length, 2);
  assert.equal((await readTopic(`${other.prefix}${TOPICS.deadLetters.name}`)).length, 1);

  // --delete removes a replay completely.
  ok(await sep(['replay', '--delete', RB], env));
  assert.deepEqual(await topicsOf(`${ns.prefix}replay.${RB}.`), []);
  assert.deepEqual(await query('SELECT run_id FROM gate_decisions WHERE run_id = $1 LIMIT 1', [RB]), []);
});

test('sep canary: identical configurations pass with zero drift; a wider hysteresis buffer flips gates and fails a tight drift cap', { timeout: 600_000 }, async () => {
  // A Calmar floor near the day's values, so the hysteresis buffer decides some evaluations.
  const base = path.join(out, 'base.json');
  const wide = path.join(out, 'wide.json');
  const tight = path.join(out, 'tight.json');
  writeFileSync(base, JSON.stringify({ GATES_CALMAR_FLOOR: 100 }));
  writeFileSync(wide, JSON.stringify({ GATES_CALMAR_FLOOR: 100, HYSTERESIS_BUF: 0.3 }));
  writeFileSync(tight, JSON.stringify({ canary_gate: { drift_cap_pct: 0.01 } }));

  const same = await sep(['canary', ...RANGE, '--blue', base, '--green', base, '--canary-id', SAME, '--out', path.join(out, 'c-same')], env, 400_000);
  ok(same, 0);
  const pass = JSON.parse(readFileSync(path.join(out, 'c-same', 'canary.json'), 'utf8'));
  assert.equal(pass.decision, 'PASS');
  assert.deepEqual(pass.reasons, []);
  assert.equal(pass.drift.mean_pct, 0);
  assert.equal(pass.drift.max_pct, 0);
  assert.equal(pass.gates.flips, 0);
  assert.ok(pass.gates.aligned > 1000 && pass.drift.decisions.blue > 100, 'something was compared');

  const changed = await sep(['canary', ...RANGE, '--blue', base, '--green', wide, '--thresholds', tight, '--canary-id', WIDE, '--out', path.join(out, 'c-wide')], env, 400_000);
  ok(changed, 2);
  const fail = JSON.parse(readFileSync(path.join(out, 'c-wide', 'canary.json'), 'utf8'));
  assert.equal(fail.decision, 'FAIL');
  assert.deepEqual(fail.reasons, ['rollout_drift']);
  assert.ok(fail.gates.flips > 0, 'the wider buffer flips some gates');
  assert.deepEqual(fail.config_diff, [{ knob: 'HYSTERESIS_BUF', blue: null, green: '0.3' }]);
  assert.match(readFileSync(path.join(out, 'c-wide', 'canary.md'), 'utf8'), /FAIL/);
  assert.match(changed.stdout, new RegExp(`canary ${WIDE}: FAIL \\(rollout_drift\\)`));

  const runs = await query<{ run_id: string; kind: string; canary_id: string; color: string }>('SELECT run_id, kind, canary_id, color FROM runs WHERE canary_id = $1 ORDER BY color', [WIDE]);
  assert.deepEqual(runs, [{ run_id: `${WIDE}-blue`, kind: 'replay', canary_id: WIDE, color: 'blue' }, { run_id: `${WIDE}-green`, kind: 'replay', canary_id: WIDE, color: 'green' }]);

  const missing = await sep(['canary', ...RANGE, '--blue', path.join(out, 'nope.json'), '--green', base], env);
  ok(missing, 1);
  assert.match(missing.stderr, /--blue .*nope\.json: cannot read it \(ENOENT\)/);
});
