/**
 * The first slice's features job: md.candles.v1 → FeaturesProcessor →
 * features.v1, as a plain consumer loop (at-least-once; state in memory).
 * The exactly-once runtime with state stores replaces this loop (issue 3).
 * Bad records never stop it: they are validated like imported ones and go to
 * dlq.v1 with a reason.
 */
import type { Kafka } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { Consumer, EachBatchPayload, Message, Producer } from '../../streams/runtime/kafka.ts';
import type { AvroSerde } from '../../streams/runtime/serde.ts';
import { DecodeError, InputError } from '../../streams/runtime/errors.ts';
import { deadLetterOf, DLQ_TOPIC } from '../../streams/runtime/dead-letter.ts';
import { recordsIn, recordsOut } from '../../streams/runtime/metrics.ts';
import { TOPICS } from '../../streams/runtime/topics.ts';
import { validateRecord } from '../../streams/model/records.ts';
import type { InstrumentCatalog } from '../../streams/model/instruments.ts';
import { FeaturesProcessor } from '../../streams/features/processor.ts';

export interface FeaturesJobOptions {
  kafka: Kafka;
  serde: AvroSerde;
  producer: Producer;
  catalog: InstrumentCatalog;
  groupId: string;
  /** Latest feature per instrument is mirrored to the Redis hash `features:latest` (field = instrument). */
  redis?: Redis;
}

/** Namespaced like the topics (SEP_TOPIC_PREFIX) so test runs never touch live keys. */
export const LATEST_FEATURES_KEY = `${process.env.SEP_TOPIC_PREFIX ?? ''}features:latest`;

export class FeaturesJob {
  state: 'idle' | 'running' | 'stopped' = 'idle';
  private consumer: Consumer | undefined;
  private readonly processor = new FeaturesProcessor();
  /** partition → next offset processed (for "caught up" checks). */
  readonly positions = new Map<number, bigint>();
  featuresOut = 0;
  deadLettered = 0;

  constructor(private readonly opts: FeaturesJobOptions) {}

  async start(): Promise<void> {
    // Where the group stands before any batch arrives (a caught-up group gets no batches).
    const admin = this.opts.kafka.admin();
    await admin.connect();
    try {
      const [committed] = await admin.fetchOffsets({ groupId: this.opts.groupId, topics: [TOPICS.candles.name] });
      for (const p of committed?.partitions ?? []) if (Number(p.offset) >= 0) this.positions.set(p.partition, BigInt(p.offset));
    } finally {
      await admin.disconnect();
    }
    const consumer = this.opts.kafka.consumer({ groupId: this.opts.groupId, readUncommitted: false, allowAutoTopicCreation: false });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: [TOPICS.candles.name], fromBeginning: true });
    await consumer.run({ eachBatchAutoResolve: false, eachBatch: (p) => this.onBatch(p) });
    this.state = 'running';
  }

  caughtUp(ends: Map<number, bigint>): boolean {
    for (const [partition, high] of ends) if (high > 0n && (this.positions.get(partition) ?? 0n) < high) return false;
    return true;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    this.state = 'stopped';
  }

  private async onBatch({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale()) return;
    const { serde, producer, catalog } = this.opts;
    const out: Message[] = [];
    const latest = new Map<string, string>();
    const dead: Message[] = [];
    for (const m of batch.messages) {
      recordsIn.inc({ topic: batch.topic, processor: 'features' });
      try {
        const raw = await serde.decode<Record<string, unknown>>(batch.topic, m.value);
        const candle = validateRecord('candles', raw, catalog);
        const feature = this.processor.process(candle);
        if (feature) {
          out.push({ key: feature.instrument, value: serde.encode(TOPICS.features.name, feature), timestamp: String(feature.ts) });
          latest.set(feature.instrument, JSON.stringify({ ...feature, ts: new Date(feature.ts).toISOString() }));
        }
      } catch (err) {
        if (!(err instanceof InputError) && !(err instanceof DecodeError)) throw err;
        const letter = deadLetterOf(err, { topic: batch.topic, partition: batch.partition, offset: Number(m.offset), key: m.key, value: m.value, ts: Number(m.timestamp) });
        dead.push({ key: batch.topic, value: serde.encode(DLQ_TOPIC, letter), timestamp: m.timestamp });
      }
    }
    const topicMessages = [];
    if (out.length) topicMessages.push({ topic: TOPICS.features.name, messages: out });
    if (dead.length) topicMessages.push({ topic: DLQ_TOPIC, messages: dead });
    if (topicMessages.length) await producer.sendBatch({ topicMessages, acks: -1 });
    if (latest.size && this.opts.redis) await this.opts.redis.hset(LATEST_FEATURES_KEY, Object.fromEntries(latest));
    recordsOut.inc({ topic: TOPICS.features.name }, out.length);
    this.featuresOut += out.length;
    this.deadLettered += dead.length;
    const last = batch.lastOffset();
    resolveOffset(last);
    this.positions.set(batch.partition, BigInt(last) + 1n);
    await heartbeat();
    await commitOffsetsIfNecessary();
  }
}
