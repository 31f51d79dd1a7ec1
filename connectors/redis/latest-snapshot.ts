/**
 * Mirrors the latest record per key of a topic into a Redis hash (field =
 * key, value = the record as JSON with ISO timestamps) for operations to read,
 * e.g. `features:latest`. Reads committed records only; a write never replaces
 * a newer record with an older one (the Lua script compares timestamps).
 */
import type { Kafka } from 'kafkajs';
import type { Redis } from 'ioredis';
import { committedOffsets, type Consumer, type EachBatchPayload } from '../../streams/runtime/kafka.ts';
import type { AvroSerde } from '../../streams/runtime/serde.ts';
import { DecodeError } from '../../streams/runtime/errors.ts';
import { deadLetters } from '../../streams/runtime/metrics.ts';

// KEYS[1] = hash, ARGV = field, ts, json, field, ts, json, ...; the hash `${KEYS[1]}:ts` holds each field's timestamp.
const NEWER_WINS = `
for i = 1, #ARGV, 3 do
  local old = tonumber(redis.call('HGET', KEYS[1] .. ':ts', ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) >= old then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    redis.call('HSET', KEYS[1] .. ':ts', ARGV[i], ARGV[i + 1])
  end
end
return 1`;

export interface LatestSnapshotOptions {
  kafka: Kafka;
  serde: AvroSerde;
  redis: Redis;
  topic: string;
  hashKey: string;
  groupId: string;
}

export class LatestSnapshot {
  state: 'idle' | 'running' | 'stopped' = 'idle';
  private consumer: Consumer | undefined;
  /** partition → next offset done with (committed at start, then the partition end once reached). */
  readonly positions = new Map<number, bigint>();

  constructor(private readonly opts: LatestSnapshotOptions) {}

  async start(): Promise<void> {
    for (const [k, v] of await committedOffsets(this.opts.kafka, this.opts.groupId, [this.opts.topic])) this.positions.set(Number(k.split('/').pop()), v);
    const consumer = this.opts.kafka.consumer({ groupId: this.opts.groupId, readUncommitted: false, allowAutoTopicCreation: false });
    this.consumer = consumer;
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.offsetLag === '0') this.positions.set(payload.partition, BigInt(payload.highWatermark));
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    await consumer.run({ eachBatch: (p) => this.onBatch(p) });
    this.state = 'running';
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    this.state = 'stopped';
  }

  private async onBatch({ batch }: EachBatchPayload): Promise<void> {
    const latest = new Map<string, { ts: number; json: string }>();
    for (const m of batch.messages) {
      let value: Record<string, unknown>;
      try {
        value = await this.opts.serde.decode<Record<string, unknown>>(this.opts.topic, m.value);
      } catch (err) {
        // The snapshot is only a mirror (the record stays on its topic): count it and go on.
        if (!(err instanceof DecodeError)) throw err;
        deadLetters.inc({ reason: err.reason, topic: this.opts.topic });
        continue;
      }
      const ts = Number(m.timestamp);
      latest.set(m.key?.toString() ?? '', { ts, json: JSON.stringify({ ...value, ts: new Date(ts).toISOString() }) });
    }
    const args = [...latest].flatMap(([field, { ts, json }]) => [field, String(ts), json]);
    if (args.length) await this.opts.redis.eval(NEWER_WINS, 1, this.opts.hashKey, ...args);
  }
}
