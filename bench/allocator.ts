/**
 * Allocator latency (issue 5): from a new gates blob to the published
 * allocation, on the real broker. The blob stage's application (blob +
 * allocator-lite, exactly-once) runs in this process; the bench produces the
 * gates partials of one evaluation (one per source partition, the last one
 * completes the blob) and an executor subscribed with `subscribeAllocations`
 * (read_committed) records when the decision arrives:
 *
 *   latency = executor receive time − send time of the evaluation's last partial
 *
 * so it covers the fetch of the partial, the blob, the decision, the Kafka
 * transaction's commit and the executor's fetch. Evaluations are sent one at
 * a time, each after the previous decision arrived (no queueing); the first
 * --warmup are not counted. Also the in-process cost of one decision
 * (`allocate`, 50 instruments, 10 eligible) for scale.
 *
 *   npm run bench:allocator -- [--evaluations 200] [--instruments 50] [--warmup 20]
 *
 * Table on stdout (Markdown), progress on stderr; topics under a unique prefix, deleted at the end.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { argInt } from './args.ts';
import { median } from './stats.ts';

const EVALUATIONS = argInt('evaluations', 200);
const N = argInt('instruments', 50);
const WARMUP = argInt('warmup', 20);
const PARTITIONS = 3;
const ID = randomBytes(4).toString('hex');
process.env.SEP_TOPIC_PREFIX = `bench.${ID}.`;

const { connectServices } = await import('../src/pipeline/services.ts');
const { createProducer } = await import('../streams/runtime/kafka.ts');
const { TOPICS, TOPIC_PREFIX } = await import('../streams/runtime/topics.ts');
const { StreamsApp } = await import('../streams/runtime/streams-app.ts');
const { gatesBlobTopology } = await import('../streams/gates/blob-processor.ts');
const { resolveAllocatorConfig } = await import('../streams/allocation/config.ts');
const { allocate, initialAllocatorState } = await import('../streams/allocation/allocator.ts');
const { subscribeAllocations } = await import('../connectors/executor/allocations.ts');
type GatesPartial = import('../streams/gates/processor.ts').GatesPartial;

const log = (line: string) => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${line}\n`);
const instruments = Array.from({ length: N }, (_, i) => `BN${String(i).padStart(2, '0')}_USD`);
const config = resolveAllocatorConfig({ ALLOC_TOP_K: 10, ALLOC_INTERVAL_SEC: 60 }, {});
const T0 = Date.UTC(2026, 10, 13, 8);

/** One evaluation's partials: instrument i on partition i mod 3; a rotating tenth of them eligible. */
function partialsAt(k: number): GatesPartial[] {
  const ts = T0 + k * 60_000;
  return Array.from({ length: PARTITIONS }, (_, p) => ({
    ts, partition: p,
    decisions: instruments.filter((_, i) => i % PARTITIONS === p).map((instrument) => {
      const i = instruments.indexOf(instrument);
      return { instrument, eligible: (i + k) % 5 === 0, buf: 0.1, repetition: 3, hazard: 0.2, calmar: 1 + ((i * 7 + k) % 13), span_ok: true, cooldown_until: null, vol: 0.001 * (1 + (i % 4)), calibration: null };
    }),
  }));
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

// In-process cost of one decision.
{
  let state = initialAllocatorState();
  const times: number[] = [];
  for (let k = 0; k < 2000; k++) {
    const ps = partialsAt(k);
    const d = ps.flatMap((p) => p.decisions);
    const blob = { ts: ps[0]!.ts, gates: Object.fromEntries(d.map((x) => [x.instrument, x.eligible])), cooldowns: {}, calmar: Object.fromEntries(d.map((x) => [x.instrument, x.calmar])), hazard: Object.fromEntries(d.map((x) => [x.instrument, x.hazard])) };
    const t = performance.now();
    state = allocate(state, { now: blob.ts, blob }, config).state;
    times.push(performance.now() - t);
  }
  var allocateUs = median(times.slice(200)) * 1000;
}

const services = await connectServices({ clientId: 'bench-allocator', log });
const producer = await createProducer(services.kafka);
const app = new StreamsApp({
  applicationId: `${TOPIC_PREFIX}bench-alloc`,
  topology: gatesBlobTopology({ expectedPartitions: [0, 1, 2], allocator: { config } }),
  kafka: services.kafka, admin: services.admin, serde: services.serde, guarantee: 'exactly_once', log,
});
const arrivals = new Map<number, number>();
let waiting: ((seq: number) => void) | undefined;
const sub = await subscribeAllocations({
  kafka: services.kafka, serde: services.serde, groupId: `${TOPIC_PREFIX}bench-executor`,
  onAllocation: (a) => { arrivals.set(a.seq, performance.now()); waiting?.(a.seq); },
});
await app.start();
const latencies: number[] = [];
try {
  for (let k = 0; k < EVALUATIONS + WARMUP; k++) {
    const ps = partialsAt(k);
    // The first partitions' partials go first; the last one completes the blob.
    for (const p of ps.slice(0, -1)) await producer.send({ topic: TOPICS.gatesPartial.name, acks: -1, messages: [{ key: String(p.partition), value: services.serde.encode(TOPICS.gatesPartial.name, p), timestamp: String(p.ts) }] });
    const arrived = new Promise<number>((resolve) => { waiting = resolve; });
    const last = ps.at(-1)!;
    const sent = performance.now();
    await producer.send({ topic: TOPICS.gatesPartial.name, acks: -1, messages: [{ key: String(last.partition), value: services.serde.encode(TOPICS.gatesPartial.name, last), timestamp: String(last.ts) }] });
    const seq = await Promise.race([arrived, new Promise<number>((_, reject) => setTimeout(() => reject(new Error(`no decision for evaluation ${k} within 30 s`)), 30_000))]);
    if (k >= WARMUP) latencies.push(arrivals.get(seq)! - sent);
    if (k % 50 === 0) log(`evaluation ${k}: ${(arrivals.get(seq)! - sent).toFixed(1)} ms`);
  }
} finally {
  await sub.stop();
  await app.stop();
  await producer.disconnect();
  const topics = (await services.admin.listTopics()).filter((t) => t.startsWith(TOPIC_PREFIX));
  await services.admin.deleteTopics({ topics }).catch(() => {});
  await services.close();
}

console.log(`\nAllocator latency, blob → published allocation → executor (${os.cpus().length} cores, Node ${process.version}); ${N} instruments over ${PARTITIONS} partials, Top-K ${config.topK}; ${EVALUATIONS} evaluations after ${WARMUP} warm-up, one at a time; exactly-once blob stage, read_committed executor\n`);
console.log('```sh\nnpm run bench:allocator -- --evaluations ' + EVALUATIONS + ' --instruments ' + N + ' --warmup ' + WARMUP + '\n```\n');
console.log('| measure | median | p90 | p99 | max |');
console.log('|---|---:|---:|---:|---:|');
console.log(`| last partial sent → decision received by the executor | ${median(latencies).toFixed(1)} ms | ${pct(latencies, 0.9).toFixed(1)} ms | ${pct(latencies, 0.99).toFixed(1)} ms | ${Math.max(...latencies).toFixed(1)} ms |`);
console.log(`| one \`allocate\` call in-process (median of 1 800) | ${allocateUs.toFixed(1)} µs | | | |`);
