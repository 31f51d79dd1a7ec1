/**
 * `sep canary --from T1 --to T2 --blue A.json --green B.json`: the range
 * replayed twice — blue (baseline) and green (candidate) knob overrides, one
 * `sep replay` each (src/cli/replay.ts) — then their outputs compared
 * (connectors/replay/canary-report.ts, docs/canary.md): a deterministic JSON
 * and Markdown report and a PASS/FAIL verdict. Exit 0 PASS, 2 FAIL, 1 error
 * (a usage error too: 2 means FAIL here).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SepError, UsageError } from '../../streams/runtime/errors.ts';
import { connectAdmin, createKafka, readTopicToEnd } from '../../streams/runtime/kafka.ts';
import { AvroSerde } from '../../streams/runtime/serde.ts';
import { OUTPUT_PREFIX, TOPICS } from '../../streams/runtime/topics.ts';
import { resolveMarkoutConfig } from '../../streams/markout/config.ts';
import { planRange, replayNamespace, ReplayRefusedError, runIdUses } from '../../connectors/replay/replay.ts';
import { parseConfigOverrides } from '../pipeline/knob-overrides.ts';
import { canaryReport, canaryReportJson, canaryReportMarkdown, canaryThresholdsOf, parseCanaryThresholds, type CanaryOutputs, type CanaryThresholds } from '../../connectors/replay/canary-report.ts';
import { SinkDatabase, waitForDatabase } from '../../connectors/sink/database.ts';
import { recordedServiceUrls } from '../../ops/stack/index.ts';
import { connectDatabase } from '../pipeline/services.ts';
import { resolvePipelineConfig } from '../pipeline/run.ts';
import { defaultReplayRunId } from './replay.ts';
import { datetimeFlag, runIdFlag, runSelf, type Command, type Values } from './command.ts';

const log = (line: string) => console.log(line);
const COLORS = ['blue', 'green'] as const;
type Color = (typeof COLORS)[number];
/** What the report compares, by the topic's name without a namespace. */
const COMPARED = { gates: TOPICS.gates, allocations: TOPICS.allocations, markouts: TOPICS.markouts } as const;

export const canaryCmd: Command = {
  usage: `usage: sep canary --from T1 --to T2 --blue A.json --green B.json [--thresholds T.json] [--canary-id ID] [--out DIR]
  Replays [T1, T2) twice as isolated runs (\`sep replay\`): <ID>-blue with the knob
  overrides of A.json, <ID>-green with those of B.json (each a JSON object of knobs,
  e.g. {"HYSTERESIS_BUF": 0.1}; {} for the environment's), then compares their
  gates.v1, alloc.weights.v1 and markout.v1 (docs/canary.md): allocation drift, gate
  flips and rejection rate, markout deltas with min-sample guards, and a PASS/FAIL
  verdict with reasons in the seeds' order.
  --from T1, --to T2   ISO-8601 times with their zone (required)
  --blue, --green      knob override files (required)
  --thresholds FILE    canary thresholds as JSON, the seed's shape: {"canary_gate": {"drift_cap_pct": 5,
                       "max_reject_delta": 0.02, "min_sample_gates": 200, "markout_min_sample": 50,
                       "markout_cap_bps_200": 0.5}, "canary_gate_per_symbol": {...}} (every key optional)
  --canary-id ID       names the pair (default canary-<now>-<hex>); neither run id may be in use
  --out DIR            where canary.json and canary.md go (default canary/<ID>)
  Exit codes: 0 PASS, 2 FAIL, 1 error (bad flags or files too).`,
  options: {
    from: { type: 'string' }, to: { type: 'string' }, blue: { type: 'string' }, green: { type: 'string' },
    thresholds: { type: 'string' }, 'canary-id': { type: 'string' }, out: { type: 'string' },
  },
  async run(v) {
    try {
      return await canary(v);
    } catch (err) {
      // Exit 2 means FAIL: a usage problem is an error (1) here.
      if (err instanceof UsageError) throw new SepError('USAGE', err.message, { cause: err });
      throw err;
    }
  },
};

async function canary(v: Values): Promise<number> {
  const from = datetimeFlag(v.from, 'from', 'sep canary');
  const to = datetimeFlag(v.to, 'to', 'sep canary');
  if (!(from < to)) throw new UsageError(`--from ${String(v.from)} is not before --to ${String(v.to)}: the range is [from, to)`);
  const overrides = {} as Record<Color, Record<string, string>>;
  for (const color of COLORS) {
    if (v[color] === undefined || v[color] === true) throw new UsageError(`sep canary: --${color} FILE is required: a JSON object of knob overrides ({} for the environment's knobs)`);
    overrides[color] = parseConfigOverrides(String(v[color]), `--${color}`);
    resolvePipelineConfig({ ...process.env, ...overrides[color] }); // a bad knob stops here, named
  }
  const thresholds = readThresholds(v.thresholds === undefined ? undefined : String(v.thresholds));
  const canaryId = runIdFlag(v['canary-id'], defaultReplayRunId().replace(/^replay-/, 'canary-'));
  const runIds = { blue: `${canaryId}-blue`, green: `${canaryId}-green` };
  for (const id of Object.values(runIds)) runIdFlag(id, '');
  const outDir = String(v.out ?? path.join('canary', canaryId));

  // Both runs would be refused alike (a range without data, an id in use): ask before the first starts.
  await preflight(from, to, Object.values(runIds));
  const iso = (ms: number) => new Date(ms).toISOString();
  for (const color of COLORS) {
    log(`canary ${canaryId}: ${color} replay ${runIds[color]}${Object.keys(overrides[color]).length ? ` with ${Object.entries(overrides[color]).map(([k, x]) => `${k}=${x}`).join(' ')}` : ' with the environment\'s knobs'}`);
    const code = await runSelf(['replay', '--from', iso(from), '--to', iso(to), '--run-id', runIds[color]], {
      ...overrides[color], SEP_OUTPUT_PREFIX: replayNamespace(runIds[color]), SEP_CANARY_ID: canaryId, SEP_CANARY_COLOR: color,
    }, { prefix: `[${color}] ` });
    if (code !== 0) throw new SepError('USAGE', `canary ${canaryId}: the ${color} replay ${runIds[color]} failed (exit ${code}; its output is above); remove what it left with \`sep replay --delete ${runIds[color]}\``);
  }

  const outputs = {} as Record<Color, CanaryOutputs>;
  const hashes = await configHashes(Object.values(runIds));
  for (const color of COLORS) outputs[color] = await readOutputs(runIds[color]);
  const meta = {
    from, to,
    blue: { runId: runIds.blue, configHash: hashes.get(runIds.blue) ?? '', config: overrides.blue },
    green: { runId: runIds.green, configHash: hashes.get(runIds.green) ?? '', config: overrides.green },
  };
  const report = canaryReport(meta, outputs.blue, outputs.green, thresholds);
  mkdirSync(outDir, { recursive: true });
  const markdown = canaryReportMarkdown(report);
  writeAtomically(path.join(outDir, 'canary.json'), canaryReportJson(report));
  writeAtomically(path.join(outDir, 'canary.md'), markdown);
  log('');
  log(markdown.split('\n').slice(0, 12).join('\n'));
  log(`\ncanary ${canaryId}: ${report.decision}${report.reasons.length ? ` (${report.reasons.join(', ')})` : ''}; report in ${path.join(outDir, 'canary.json')} and ${path.join(outDir, 'canary.md')}`);
  return report.decision === 'PASS' ? 0 : 2;
}

function readThresholds(file: string | undefined): CanaryThresholds {
  const base = canaryThresholdsOf(resolveMarkoutConfig());
  if (file === undefined) return base;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--thresholds ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not JSON (${(err as Error).message})`}; give the seed's shape as JSON, e.g. {"canary_gate": {"drift_cap_pct": 5}}`);
  }
  return parseCanaryThresholds(json, file, base);
}

async function preflight(from: number, to: number, runIds: string[]): Promise<void> {
  const urls = recordedServiceUrls();
  const admin = await connectAdmin(createKafka({ brokers: urls.KAFKA_BROKERS, clientId: 'sep-canary' }), urls.KAFKA_BROKERS);
  const database = new SinkDatabase(() => connectDatabase(urls.DATABASE_URL));
  try {
    await planRange(admin, from, to);
    const db = await waitForDatabase(database, log);
    for (const id of runIds) {
      const uses = await runIdUses(admin, db, id);
      if (uses.length) throw new ReplayRefusedError(`run id ${id} is in use: ${uses.join('; ')}. Choose another --canary-id, or remove it first with \`sep replay --delete ${id}\``);
    }
  } finally {
    await database.close();
    await admin.disconnect();
  }
}

async function configHashes(runIds: string[]): Promise<Map<string, string>> {
  const db = await connectDatabase(recordedServiceUrls().DATABASE_URL);
  try {
    const { rows } = await db.query<{ run_id: string; config_hash: string }>('SELECT run_id, config_hash FROM runs WHERE run_id = ANY($1)', [runIds]);
    return new Map(rows.map((r) => [r.run_id, r.config_hash]));
  } finally {
    await db.end();
  }
}

/** A replay's gates, allocations and markouts from its own topics (not compacted: every record is there). */
async function readOutputs(runId: string): Promise<CanaryOutputs> {
  const urls = recordedServiceUrls();
  const kafka = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: 'sep-canary' });
  const serde = new AvroSerde(urls.SCHEMA_REGISTRY_URL);
  const read = async <T>(spec: (typeof COMPARED)[keyof typeof COMPARED]): Promise<T[]> => {
    // The replay's topic: the spec's name in the run's namespace instead of ours.
    const topic = `${replayNamespace(runId)}${spec.name.slice(OUTPUT_PREFIX.length)}`;
    serde.readAs(topic, spec);
    const out: T[] = [];
    for (const r of await readTopicToEnd(kafka, topic)) out.push(await serde.decode<T>(topic, r.value));
    return out;
  };
  return { gates: await read(COMPARED.gates), allocations: await read(COMPARED.allocations), markouts: await read(COMPARED.markouts) };
}

function writeAtomically(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}
