/**
 * The topic catalog (DESIGN §4): one Avro schema per topic, registered under
 * `<topic>-value` with BACKWARD compatibility; keys are plain UTF-8 strings.
 * Partition counts come from SEP_PARTITIONS (default 3) except where ordering
 * across all keys matters (the blob and the allocation contract: 1 partition).
 *
 * SEP_TOPIC_PREFIX (default empty) namespaces every topic, e.g. `it-42.` for
 * an integration test, so runs sharing a broker never see each other's data.
 *
 * SEP_OUTPUT_PREFIX (default: SEP_TOPIC_PREFIX) namespaces only the topics the
 * pipeline produces — features, gates, the blob, allocations, markouts,
 * calibration, dead letters: `sep replay` sets it to
 * `<SEP_TOPIC_PREFIX>replay.<run id>.`, so a replay reads the live inputs and
 * nothing that consumes the live outputs (the executor on alloc.weights.v1)
 * ever sees what it writes. Under a separate output namespace nothing is
 * compacted: a replay's outputs are a record of the run, read after it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from './errors.ts';

export interface TopicSpec {
  name: string;
  schemaFile: string;
  /** What the message key holds. */
  key: string;
  /** null: use the configured default. */
  partitions: number | null;
  compacted: boolean;
}

export const SCHEMA_DIR = path.resolve(import.meta.dirname, '..', '..', 'schemas', 'avro');

const PREFIX = topicPrefix(process.env.SEP_TOPIC_PREFIX ?? '');
/** The namespace of this process's topics, consumer groups and Redis keys. */
export const TOPIC_PREFIX = PREFIX;
/** The namespace of the topics the pipeline produces (`sep replay`: its run's own). */
export const OUTPUT_PREFIX = topicPrefix(process.env.SEP_OUTPUT_PREFIX ?? PREFIX, 'SEP_OUTPUT_PREFIX');
const OUT = OUTPUT_PREFIX;
/** Compaction for an output topic: only in the live namespace (see above). */
const compactOut = OUT === PREFIX;

function topicPrefix(p: string, key = 'SEP_TOPIC_PREFIX'): string {
  if (!/^[A-Za-z0-9._-]*$/.test(p) || p.length > 100) {
    throw new ConfigError([{ key, message: `=${JSON.stringify(p)}: use letters, digits, '.', '_' or '-' (at most 100), e.g. "test-1."` }]);
  }
  return p;
}

export const TOPICS = {
  candles: { name: `${PREFIX}md.candles.v1`, schemaFile: 'candle.avsc', key: 'instrument', partitions: null, compacted: false },
  ticks: { name: `${PREFIX}md.ticks.v1`, schemaFile: 'tick.avsc', key: 'instrument', partitions: null, compacted: false },
  orders: { name: `${PREFIX}exec.orders.v1`, schemaFile: 'order-event.avsc', key: 'instrument', partitions: null, compacted: false },
  fills: { name: `${PREFIX}exec.fills.v1`, schemaFile: 'fill.avsc', key: 'instrument', partitions: null, compacted: false },
  features: { name: `${OUT}features.v1`, schemaFile: 'feature.avsc', key: 'instrument', partitions: null, compacted: false },
  gates: { name: `${OUT}gates.v1`, schemaFile: 'gate.avsc', key: 'instrument', partitions: null, compacted: false },
  gatesPartial: { name: `${OUT}gates.partial.v1`, schemaFile: 'gates-partial.avsc', key: 'source partition', partitions: 1, compacted: false },
  gatesBlob: { name: `${OUT}gates.blob.v1`, schemaFile: 'gates-blob.avsc', key: 'blob', partitions: 1, compacted: false },
  allocations: { name: `${OUT}alloc.weights.v1`, schemaFile: 'allocation.avsc', key: 'portfolio', partitions: 1, compacted: compactOut },
  allocationOverlay: { name: `${PREFIX}alloc.overlay.v1`, schemaFile: 'allocation-overlay.avsc', key: 'overlay', partitions: 1, compacted: false },
  markouts: { name: `${OUT}markout.v1`, schemaFile: 'markout.avsc', key: 'instrument', partitions: null, compacted: false },
  costCalibration: { name: `${OUT}calib.cost.v1`, schemaFile: 'cost-calibration.avsc', key: 'instrument', partitions: null, compacted: compactOut },
  deadLetters: { name: `${OUT}dlq.v1`, schemaFile: 'dead-letter.avsc', key: 'source topic', partitions: 1, compacted: false },
} satisfies Record<string, TopicSpec>;

export type TopicId = keyof typeof TOPICS;

export function subjectOf(topic: string): string {
  return `${topic}-value`;
}

export function loadSchema(spec: TopicSpec): string {
  return readFileSync(path.join(SCHEMA_DIR, spec.schemaFile), 'utf8');
}
