/**
 * The one module that touches the Kafka client library (kafkajs 2.2.x). Keep
 * it small so the client can be swapped (@platformatic/kafka is the maintained
 * pure-JS alternative once we are on Node 22).
 */
import kafkajs, { Kafka, logLevel, CompressionTypes, Partitioners, type Admin, type Consumer, type Producer, type ITopicConfig, type Message, type KafkaConfig } from 'kafkajs';
import { UnavailableError } from './errors.ts';
import type { TopicSpec } from './topics.ts';

export type { Admin, Consumer, Producer, Message, EachBatchPayload, KafkaMessage } from 'kafkajs';
export { CompressionTypes };

export interface KafkaOptions {
  brokers: string;
  clientId: string;
  /** kafkajs log level (default SEP_KAFKA_LOG_LEVEL, else nothing: the runtime logs what matters). */
  logLevel?: 'nothing' | 'error' | 'warn' | 'info';
  /** Per-request timeout, ms (default 30 000). */
  requestTimeout?: number;
}

const LEVELS = { nothing: logLevel.NOTHING, error: logLevel.ERROR, warn: logLevel.WARN, info: logLevel.INFO } as const;

export function createKafka(opts: KafkaOptions): Kafka {
  const config: KafkaConfig = {
    clientId: opts.clientId,
    brokers: opts.brokers.split(',').map((b) => b.trim()).filter(Boolean),
    logLevel: LEVELS[opts.logLevel ?? (process.env.SEP_KAFKA_LOG_LEVEL as keyof typeof LEVELS | undefined) ?? 'nothing'],
    connectionTimeout: 5000,
    requestTimeout: opts.requestTimeout ?? 30_000,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
  };
  return new Kafka(config);
}

/**
 * Topic configs for every topic the pipeline creates. No time-based retention:
 * records carry event time (a recorded day replayed today is days old), and
 * Kafka deletes a segment once its newest timestamp is older than retention.ms
 * — a 7-day default removed a freshly imported day within 5 minutes. Bound
 * size with retention.bytes on a real cluster if needed.
 */
export function topicConfigEntries(compacted: boolean | undefined): { name: string; value: string }[] {
  return [{ name: 'cleanup.policy', value: compacted ? 'compact' : 'delete' }, { name: 'retention.ms', value: '-1' }];
}

/** Creates missing topics (never changes existing ones); returns the names created. */
export async function ensureTopics(admin: Admin, specs: readonly Pick<TopicSpec, 'name' | 'partitions' | 'compacted'>[], defaultPartitions: number): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing: ITopicConfig[] = specs.filter((t) => !existing.has(t.name)).map((t) => ({
    topic: t.name,
    numPartitions: t.partitions ?? defaultPartitions,
    replicationFactor: -1, // broker default: 1 on the local stack, 3 on a real cluster
    configEntries: topicConfigEntries(t.compacted),
  }));
  if (missing.length > 0) await admin.createTopics({ topics: missing, waitForLeaders: true });
  return missing.map((t) => t.topic);
}

/**
 * Topics among `names` that delete records by age (a finite retention.ms with
 * the delete policy), with their retention: old event timestamps make Kafka
 * drop such data within minutes. Returned so the caller can warn.
 */
export async function timeRetainedTopics(admin: Admin, names: readonly string[]): Promise<{ topic: string; retentionMs: number }[]> {
  if (names.length === 0) return [];
  const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: names.map((name) => ({ type: kafkajs.ConfigResourceTypes.TOPIC, name, configNames: ['retention.ms', 'cleanup.policy'] })) });
  return resources.flatMap((r) => {
    const get = (n: string) => r.configEntries.find((e) => e.configName === n)?.configValue;
    const retentionMs = Number(get('retention.ms'));
    return get('cleanup.policy')?.includes('delete') && retentionMs >= 0 ? [{ topic: r.resourceName, retentionMs }] : [];
  });
}

/** Connects an admin client, failing with a message that says how to fix an unreachable broker. */
export async function connectAdmin(kafka: Kafka, brokers: string): Promise<Admin> {
  const admin = kafka.admin();
  try {
    await admin.connect();
  } catch (err) {
    throw new UnavailableError('KAFKA_UNAVAILABLE', `cannot reach Kafka at ${brokers}: ${(err as Error).message}; start the local stack with \`npm run stack:up\` or set KAFKA_BROKERS`, { cause: err });
  }
  return admin;
}

export async function createProducer(kafka: Kafka, opts: { idempotent?: boolean; transactionalId?: string } = {}): Promise<Producer> {
  const producer = kafka.producer({
    // Java's murmur2 partitioner, so keys land where Kafka's own clients put them.
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: opts.idempotent ?? true,
    maxInFlightRequests: opts.idempotent === false ? undefined : 1,
    ...(opts.transactionalId ? { transactionalId: opts.transactionalId } : {}),
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  return producer;
}

const defaultPartitioner = Partitioners.DefaultPartitioner();

/** The partition Kafka's default partitioner (murmur2, as the Java client) picks for a key. */
export function partitionForKey(key: string, partitions: number): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
  return defaultPartitioner({ topic: '', partitionMetadata, message: { key, value: null } });
}

/** Partition offsets (high watermarks) of a topic: where a consumer reading to the end must stop. */
export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, bigint>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
}

export interface TopicRecord { key: string | null; value: Buffer | null; partition: number; offset: string; timestamp: string; headers: Record<string, string> }

/**
 * Reads a topic from the beginning to its end at call time with
 * read_committed (tools and tests: snapshots of changelogs, assertions).
 * Partitions that were never written are skipped; the read fails after
 * `timeoutMs` with the topic named.
 */
export async function readTopicToEnd(kafka: Kafka, topic: string, timeoutMs = 60_000): Promise<TopicRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: { partition: number; high: string }[];
  try {
    ends = await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }
  // Partitions that were ever written (kafkajs reported low == high once after a broker restart).
  const remaining = new Map(ends.filter((o) => o.high !== '0').map((o) => [o.partition, BigInt(o.high)]));
  const out: TopicRecord[] = [];
  if (remaining.size === 0) return out;
  const consumer = kafka.consumer({ groupId: `sep-reader-${Math.random().toString(16).slice(2, 10)}`, readUncommitted: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`reading ${topic} to its end did not finish within ${timeoutMs / 1000} s`)), timeoutMs);
      // END_BATCH_PROCESS also fires for batches of only transaction markers, which carry
      // no message: the only reliable sign that a transactional partition is read to its end.
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        if (BigInt(payload.lastOffset) + 1n >= (remaining.get(payload.partition) ?? 0n)) remaining.delete(payload.partition);
        if (remaining.size === 0) { clearTimeout(timer); resolve(); }
      });
      consumer.run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            const headers = Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, String(v)]));
            out.push({ key: m.key?.toString() ?? null, value: m.value, partition: batch.partition, offset: m.offset, timestamp: m.timestamp, headers });
          }
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/** The group's committed offsets as `${topic}/${partition}` → next offset (partitions without one are absent). */
export async function committedOffsets(kafka: Kafka, groupId: string, topics: string[]): Promise<Map<string, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const out = new Map<string, bigint>();
    for (const t of await admin.fetchOffsets({ groupId, topics })) {
      for (const p of t.partitions) if (Number(p.offset) >= 0) out.set(`${t.topic}/${p.partition}`, BigInt(p.offset));
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}
