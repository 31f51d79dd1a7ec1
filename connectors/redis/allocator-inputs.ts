/**
 * The allocator's live inputs from Redis (docs/allocation.md "On the
 * runtime"): the kill switch `ops:kill_switch` and the account's margin
 * `ops:account`, polled so the allocator can read them synchronously. Live
 * input: a replay has neither (KILL_SWITCH still applies).
 */
import type { Redis } from 'ioredis';

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
