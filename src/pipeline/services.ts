/**
 * Connects to the four services (env variable → the local stack's URL) and
 * bootstraps what every command needs: topics, schemas, migrations. Each
 * failure names the service, the URL and the fix.
 */
import pg from 'pg';
import { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import { connectAdmin, createKafka, ensureTopics, timeRetainedTopics, type Admin } from '../../streams/runtime/kafka.ts';
import { AvroSerde } from '../../streams/runtime/serde.ts';
import { TOPICS } from '../../streams/runtime/topics.ts';
import { UnavailableError } from '../../streams/runtime/errors.ts';
import { resolveConfig } from '../../streams/runtime/config.ts';
import { migrate } from '../../connectors/sink/migrate.ts';
import { recordedServiceUrls, redact, type ServiceUrls } from '../../ops/stack/index.ts';

export const SERVICE_CONFIG = {
  SEP_PARTITIONS: { kind: 'integer', default: 3, min: 1, max: 256, doc: 'partitions of each new keyed topic' },
  SEP_CLIENT_ID: { kind: 'string', default: 'sep', doc: 'Kafka client id prefix' },
} as const;

export interface Services {
  urls: ServiceUrls;
  kafka: Kafka;
  admin: Admin;
  serde: AvroSerde;
  close(): Promise<void>;
}

export async function connectServices(opts: { clientId?: string; log?: (line: string) => void } = {}): Promise<Services> {
  const config = resolveConfig(SERVICE_CONFIG);
  const urls = recordedServiceUrls();
  const kafka = createKafka({ brokers: urls.KAFKA_BROKERS, clientId: opts.clientId ?? config.SEP_CLIENT_ID });
  const admin = await connectAdmin(kafka, urls.KAFKA_BROKERS);
  const created = await ensureTopics(admin, Object.values(TOPICS), config.SEP_PARTITIONS);
  if (created.length) opts.log?.(`created topics ${created.join(', ')}`);
  for (const { topic, retentionMs } of await timeRetainedTopics(admin, Object.values(TOPICS).filter((t) => !t.compacted).map((t) => t.name))) {
    opts.log?.(`warning: topic ${topic} deletes records older than ${(retentionMs / 3_600_000).toFixed(1)} h by their timestamps, so a recorded day older than that disappears within minutes of import; fix: kafka-configs --alter --entity-type topics --entity-name ${topic} --add-config retention.ms=-1`);
  }
  const serde = new AvroSerde(urls.SCHEMA_REGISTRY_URL);
  await serde.registerAll();
  return { urls, kafka, admin, serde, close: () => admin.disconnect() };
}

/** One pg client (the embedded TimescaleDB serves one connection), migrated. */
export async function connectDatabase(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (err) {
    throw new UnavailableError('DATABASE_UNAVAILABLE', `cannot reach TimescaleDB at ${redact(url)}: ${(err as Error).message}; run \`npm run stack:up\` or set DATABASE_URL (the embedded database takes one connection at a time: stop other clients first)`, { cause: err });
  }
  await migrate(client);
  return client;
}

export async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: false });
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new UnavailableError('REDIS_UNAVAILABLE', `cannot reach Redis at ${redact(url)}: ${(err as Error).message}; run \`npm run stack:up\` or set REDIS_URL`, { cause: err });
  }
  return redis;
}
