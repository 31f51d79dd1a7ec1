/**
 * Mirrors alloc.weights.v1 into Redis `risk:allocation_weights` (DESIGN
 * §6.3; seeds: operations-reference) for operations and for executors that
 * poll Redis instead of consuming the topic. The value is the latest
 * decision as JSON, the alloc.weights.v1 record's fields with `weights` as
 * `{instrument: weight}` and the reasons beside them:
 *
 *   {"portfolio":"main","seq":42,"ts":1763000000000,"weights":{"EUR_USD":0.1},
 *    "reasons":{"EUR_USD":["top_k","cost"]},"total":0.1,"stale":false,
 *    "stale_age_sec":12,"kill_switch":false,"gates_ts":1762999988000,"config_hash":"…"}
 *
 * Newer wins: a Lua script compares `seq` with the stored value, so a replay
 * or a lagging reader never puts an older decision back. It reads through
 * subscribeAllocations (committed records, once each, in seq order).
 */
import type { Kafka } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { AvroSerde } from '../../streams/runtime/serde.ts';
import { subscribeAllocations, type Allocation, type AllocationSubscription } from '../executor/allocations.ts';

/** The seed's key, before the key prefix. */
export const ALLOCATION_WEIGHTS_KEY = 'risk:allocation_weights';

/** KEYS[1] = the key; ARGV[1] = seq, ARGV[2] = JSON. Returns 1 when written, 0 when the stored seq is newer. */
const WRITE_IF_NEWER = `
local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, old = pcall(cjson.decode, stored)
  if ok and type(old) == 'table' and type(old.seq) == 'number' and tonumber(ARGV[1]) < old.seq then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1`;

export function allocationWeightsJson(a: Allocation): string {
  const weights: Record<string, number> = {};
  const reasons: Record<string, string[]> = {};
  for (const w of a.weights) {
    weights[w.instrument] = w.weight;
    reasons[w.instrument] = w.reasons;
  }
  const { portfolio, seq, ts, total, stale, stale_age_sec, kill_switch, gates_ts, config_hash } = a;
  return JSON.stringify({ portfolio, seq, ts, weights, reasons, total, stale, stale_age_sec, kill_switch, gates_ts, config_hash });
}

export interface AllocationWeightsMirrorOptions {
  kafka: Kafka;
  serde: AvroSerde;
  redis: Redis;
  groupId: string;
  topic?: string;
  /** Put before the key, like the topics' SEP_TOPIC_PREFIX (default ''). */
  keyPrefix?: string;
  log?: (line: string) => void;
}

export class AllocationWeightsMirror {
  readonly key: string;
  /** Last seq written per portfolio (or found newer in Redis). */
  lastSeq: number | undefined;
  private sub: AllocationSubscription | undefined;

  constructor(private readonly o: AllocationWeightsMirrorOptions) {
    this.key = `${o.keyPrefix ?? ''}${ALLOCATION_WEIGHTS_KEY}`;
  }

  async start(): Promise<void> {
    this.sub = await subscribeAllocations({
      kafka: this.o.kafka, serde: this.o.serde, groupId: this.o.groupId, topic: this.o.topic, log: this.o.log,
      onAllocation: async (a) => {
        await this.o.redis.eval(WRITE_IF_NEWER, 1, this.key, String(a.seq), allocationWeightsJson(a));
        this.lastSeq = a.seq;
      },
    });
  }

  async stop(): Promise<void> {
    await this.sub?.stop();
  }
}
