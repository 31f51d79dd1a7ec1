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

/**
 * Reads one Redis key every `everyMs` so a processor can ask for its value
 * synchronously (a live input). A Redis error keeps the last value and is
 * logged once per outage; `read` turns the raw value (null: absent) into the
 * watcher's state.
 */
abstract class RedisKeyWatcher {
  private timer: NodeJS.Timeout | undefined;
  private complained = '';

  constructor(protected readonly redis: Redis, readonly key: string, protected readonly log?: (line: string) => void, private readonly everyMs = 1000) {}

  protected abstract read(raw: string | null): void;

  async start(): Promise<void> {
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Logs `message` once until a different one (or none) comes. */
  protected complain(message: string | undefined): void {
    if (message !== undefined && message !== this.complained) this.log?.(`warning: ${message}`);
    this.complained = message ?? '';
  }

  private async poll(): Promise<void> {
    let raw: string | null;
    try {
      raw = await this.redis.get(this.key);
    } catch (err) {
      this.complain(`cannot read ${this.key} (keeping its last value): ${(err as Error).message}`);
      return;
    }
    this.read(raw);
  }
}

/** The kill switch in Redis (`ops:kill_switch`, seed name, before the key prefix): on when "1", "true" or "on". */
export const KILL_SWITCH_KEY = 'ops:kill_switch';

export class KillSwitchWatcher extends RedisKeyWatcher {
  on = false;

  protected read(raw: string | null): void {
    const on = raw !== null && ['1', 'true', 'on'].includes(raw.trim().toLowerCase());
    if (on !== this.on) this.log?.(`kill switch ${this.key} is ${on ? 'ON: allocation increases blocked' : 'off'}`);
    this.on = on;
    this.complain(undefined);
  }
}

/**
 * The account's margin, written to Redis by the executor (which holds the
 * broker account; seed operations-runbook reads it from /api/oanda/account):
 * `ops:account` = JSON {"marginUsed": number, "marginAvailable": number}.
 * `utilisation()` is marginUsed / (marginUsed + marginAvailable)
 * (operations-reference "Margin gating"), or null while the key is absent or
 * unreadable — the allocator then keeps its margin latch as it is. A
 * malformed value is logged once (naming the key and the shape expected) and
 * treated as absent.
 */
export const ACCOUNT_KEY = 'ops:account';

export class AccountWatcher extends RedisKeyWatcher {
  private value: number | null = null;

  utilisation(): number | null {
    return this.value;
  }

  protected read(raw: string | null): void {
    this.value = raw === null ? null : this.parse(raw);
  }

  private parse(raw: string): number | null {
    try {
      const a = JSON.parse(raw) as { marginUsed?: unknown; marginAvailable?: unknown };
      if (typeof a.marginUsed === 'number' && typeof a.marginAvailable === 'number' && a.marginUsed >= 0 && a.marginAvailable >= 0 && a.marginUsed + a.marginAvailable > 0) {
        this.complain(undefined);
        return a.marginUsed / (a.marginUsed + a.marginAvailable);
      }
    } catch { /* reported below */ }
    this.complain(`${this.key} = ${raw.slice(0, 80)}: expected JSON {"marginUsed": number ≥ 0, "marginAvailable": number ≥ 0}; margin gating keeps its state until it is fixed`);
    return null;
  }
}
