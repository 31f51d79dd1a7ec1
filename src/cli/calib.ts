/**
 * `sep calib`: the cost-calibration state outside the stream, as the mm-bot
 * README's snapshot with an integrity header (docs/calibration.md):
 *
 *   sep calib snapshot --run-id ID --out FILE   the state of run ID's pipeline, from its changelog
 *   sep calib verify FILE                       header, version and checksum check
 *   sep calib load FILE --run-id ID             seed a NEW run's state (refused if it has any)
 *
 * A snapshot's created_at is the newest event time in the state, not the wall
 * clock, so the same state always gives the same bytes (snapshot → load →
 * snapshot round-trips byte for byte).
 */
import { existsSync, statSync } from 'node:fs';
import { UsageError } from '../../streams/runtime/errors.ts';
import { createProducer, ensureTopics, readTopicToEnd, partitionForKey } from '../../streams/runtime/kafka.ts';
import { TOPIC_PREFIX, TOPICS } from '../../streams/runtime/topics.ts';
import { changelogTopic } from '../../streams/runtime/streams-app.ts';
import { CALIBRATION_STORE, type CalibrationEntry } from '../../streams/execution/processors.ts';
import { readSnapshotFile, writeSnapshotFile, type LoadedSnapshot } from '../../streams/calibration/snapshot.ts';
import { resolveCalibrationConfig } from '../../streams/calibration/config.ts';
import type { CalibrationState } from '../../streams/calibration/calibration.ts';
import { connectServices, type Services } from '../pipeline/services.ts';

type Values = Record<string, string | boolean | undefined>;

/** A snapshot path given on the command line must name an existing file. */
function existingFile(file: string | undefined, usage: string): string {
  if (!file) throw new UsageError(`${usage}: give the snapshot file`);
  if (!existsSync(file) || !statSync(file).isFile()) throw new UsageError(`${usage}: ${file} is not a file; give the path of a snapshot written by \`sep calib snapshot\``);
  return file;
}
const log = (line: string) => console.log(line);

/** The changelog topic of run ID's calibration store (the signal app's application id is `<prefix>sep-features-<run id>`). */
export function calibrationChangelog(runId: string): string {
  return changelogTopic(`${TOPIC_PREFIX}sep-features-${runId}`, CALIBRATION_STORE);
}

export async function runCalib(v: Values, positionals: string[], runIdFlag: (v: string | boolean | undefined) => string): Promise<number> {
  const [action, file] = positionals;
  const maxBytes = resolveCalibrationConfig().snapshotMaxBytes;
  if (action === 'verify') {
    const path = existingFile(file, 'sep calib verify FILE');
    const s = await readSnapshotFile(path, { maxBytes });
    log(`${path}: version ${s.version}, ${s.instrumentCount} instruments, created_at ${new Date(s.createdAt).toISOString()}, checksum ok`);
    return 0;
  }
  if (action !== 'snapshot' && action !== 'load') throw new UsageError(`sep calib ${action ?? ''}: use snapshot, verify or load`);
  if (v['run-id'] === undefined) throw new UsageError(`sep calib ${action}: --run-id is required (the pipeline run whose state to ${action === 'snapshot' ? 'read' : 'seed'})`);
  const runId = runIdFlag(v['run-id']);
  const topic = calibrationChangelog(runId);
  const services = await connectServices({ clientId: 'sep-calib', log });
  try {
    if (action === 'snapshot') {
      const out = v.out === undefined ? undefined : String(v.out);
      if (!out) throw new UsageError('sep calib snapshot: --out FILE is required');
      const exists = (await services.admin.listTopics()).includes(topic);
      if (!exists) throw new UsageError(`run ${runId} has no calibration state (no topic ${topic}); run \`sep run --run-id ${runId}\` first`);
      const state: CalibrationState = {};
      for (const r of await readTopicToEnd(services.kafka, topic)) {
        if (!r.key) continue;
        if (r.value === null) delete state[r.key];
        else state[r.key] = (JSON.parse(r.value.toString()) as CalibrationEntry).calib;
      }
      const createdAt = Math.max(0, ...Object.values(state).map((s) => s.lastTs ?? 0));
      await writeSnapshotFile(out, state, createdAt, { maxBytes });
      log(`${out}: ${Object.keys(state).length} instruments from ${topic}, created_at ${new Date(createdAt).toISOString()}`);
      return 0;
    }
    const snapshot = await readSnapshotFile(existingFile(file, 'sep calib load FILE --run-id ID'), { maxBytes });
    await loadCalibrationSnapshot(services, runId, snapshot);
    log(`${file}: ${snapshot.instrumentCount} instruments loaded into ${topic}; \`sep run --run-id ${runId}\` starts from them`);
    return 0;
  } finally {
    await services.close();
  }
}

/**
 * Seeds run ID's calibration store from a snapshot (as readSnapshotFile
 * verified it): refused when the run already has calibration state.
 */
export async function loadCalibrationSnapshot(services: Services, runId: string, snapshot: Pick<LoadedSnapshot, 'state'>): Promise<void> {
  const topic = calibrationChangelog(runId);
  // Only a run that has not started: loading under live state would mix two histories.
  const existing = (await services.admin.listTopics()).includes(topic) ? (await services.admin.fetchTopicOffsets(topic)).some((o) => o.high !== o.low || o.high !== '0') : false;
  if (existing) throw new UsageError(`run ${runId} already has calibration state (${topic} is not empty); load into a new run id`);
  const partitions = (await services.admin.fetchTopicMetadata({ topics: [TOPICS.candles.name] })).topics[0]!.partitions.length;
  await ensureTopics(services.admin, [{ name: topic, partitions, compacted: true }], partitions);
  const producer = await createProducer(services.kafka);
  try {
    // Into the partition of the instrument's task, without an input stamp: restore applies it as it is.
    const messages = Object.entries(snapshot.state).map(([instrument, calib]) => ({
      key: instrument, partition: partitionForKey(instrument, partitions),
      value: JSON.stringify({ calib, quote: null, emittedAt: null } satisfies CalibrationEntry),
    }));
    await producer.send({ topic, messages, acks: -1 });
  } finally {
    await producer.disconnect();
  }
}
