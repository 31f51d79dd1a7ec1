/**
 * The executor's side of alloc.weights.v1: `subscribeAllocations()` hands
 * each committed allocation decision to a callback, once, in `seq` order.
 *
 * - Reads committed records only (read_committed): the allocator publishes
 *   in Kafka transactions, so an aborted decision is never seen.
 * - `seq` rises by one per decision. A record whose seq is at or below the
 *   last one handed over (a redelivery after a rebalance or restart) is
 *   skipped, so the callback sees each decision once; give `afterSeq` (the
 *   last seq your executor applied, kept with its own state) to carry that
 *   across restarts.
 * - A jump in seq is reported in `skipped`: normal when a new consumer reads
 *   the compacted topic from the beginning (compaction keeps the latest
 *   decision per portfolio); never at the live edge.
 * - The callback runs before the offset is committed: if it throws, the same
 *   decision is delivered again (kafkajs retries, then restarts the
 *   consumer) — never skipped; `state` turns 'failed' only if kafkajs gives up.
 *
 * Example (README "For the executor"):
 *
 *   const sub = await subscribeAllocations({ kafka, serde, groupId: 'executor-1', afterSeq: lastApplied,
 *     onAllocation: async (a) => { await rebalanceTo(a.weights, { stale: a.stale, killSwitch: a.kill_switch }); lastApplied = a.seq; } });
 */
import type { Kafka } from 'kafkajs';
import type { AvroSerde } from '../../streams/runtime/serde.ts';
import { TOPICS } from '../../streams/runtime/topics.ts';
import type { Consumer } from '../../streams/runtime/kafka.ts';
import type { AllocationDecision } from '../../streams/allocation/allocator.ts';

export type Allocation = AllocationDecision;

export interface SubscribeAllocationsOptions {
  kafka: Kafka;
  serde: AvroSerde;
  /** The executor's own consumer group. */
  groupId: string;
  /** Default alloc.weights.v1 under SEP_TOPIC_PREFIX. */
  topic?: string;
  /** Only this portfolio's decisions (default: every portfolio; seq is per portfolio). */
  portfolio?: string;
  /** Decisions with seq ≤ this are skipped (per portfolio); default none. */
  afterSeq?: number;
  /** Start from the earliest retained decision when the group has no offsets (default true). */
  fromBeginning?: boolean;
  onAllocation: (allocation: Allocation) => void | Promise<void>;
  log?: (line: string) => void;
}

export type SubscriptionState = 'starting' | 'running' | 'stopped' | 'failed';

export interface AllocationSubscription {
  readonly state: SubscriptionState;
  /** Last seq handed to the callback, per portfolio. */
  readonly lastSeq: ReadonlyMap<string, number>;
  /** Decisions skipped as already handed over (redeliveries). */
  readonly duplicates: number;
  /** Seq numbers jumped over (compaction before this consumer started). */
  readonly skipped: number;
  stop(): Promise<void>;
}

export async function subscribeAllocations(o: SubscribeAllocationsOptions): Promise<AllocationSubscription> {
  const topic = o.topic ?? TOPICS.allocations.name;
  o.serde.readAs(topic, TOPICS.allocations);
  const lastSeq = new Map<string, number>();
  const sub = { state: 'starting' as SubscriptionState, lastSeq, duplicates: 0, skipped: 0, stop: async () => {} };
  const consumer: Consumer = o.kafka.consumer({ groupId: o.groupId, readUncommitted: false, allowAutoTopicCreation: false });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: o.fromBeginning ?? true });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    o.log?.(`allocations consumer failed: ${payload.error.message}`);
    if (!payload.restart) sub.state = 'failed';
  });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const a = (await o.serde.decode(topic, message.value)) as Allocation;
      if (o.portfolio !== undefined && a.portfolio !== o.portfolio) return;
      const last = lastSeq.get(a.portfolio) ?? o.afterSeq;
      if (last !== undefined && a.seq <= last) {
        sub.duplicates++;
        return;
      }
      if (last !== undefined && a.seq > last + 1) sub.skipped += a.seq - last - 1;
      await o.onAllocation(a);
      lastSeq.set(a.portfolio, a.seq);
    },
  });
  sub.state = 'running';
  sub.stop = async () => {
    await consumer.disconnect();
    if (sub.state !== 'failed') sub.state = 'stopped';
  };
  return sub;
}
