/**
 * Mirrors the gates blob (gates.blob.v1) into Redis and Prometheus for
 * operations (seeds: operations-reference, operations-runbook, allocator
 * telemetry log; docs/gates.md, "Operations: Redis keys and metrics"):
 *
 * - `opt:rolling:gates_blob`: the newest blob as JSON
 *   `{ts, gates, cooldowns, bufs, repetition, hazard, calmar, span_ok}`,
 *   `ts` and cooldown ends as epoch ms;
 * - `opt:rolling:cooldown:{instrument}`: the cooldown end (epoch ms), expiring
 *   at that end (PEXPIREAT); deleted when the blob lists no cooldown for the
 *   instrument, or when its end has already passed (a replay of old days);
 * - the gauges `sep_rolling_gate`, `sep_rolling_eligible_count`,
 *   `sep_rolling_cooldown`, `sep_span_integrity_ok`, and at scrape
 *   `sep_gates_blob_age_seconds` and `sep_rolling_session_open`.
 *
 * Newer wins. The blob and its cooldown keys are written by one Lua script
 * that first compares `ts` with the blob already in Redis, so a stale writer —
 * a replay, a lagging or restarted instance reading the topic from the start —
 * can never put an older blob back, nor touch the cooldown keys. A blob with
 * the same `ts` as the stored one does overwrite it: equal ts means the same
 * evaluation, so this is the same blob again (an at-least-once redelivery, or
 * a bit-identical replay), and on the single-partition topic the record read
 * later is the one produced later. The gauges follow the same rule against
 * the newest blob this mirror has read.
 *
 * Reads committed records only (the gates processor publishes in Kafka
 * transactions). An undecodable record is counted in sep_dead_letters_total
 * and skipped: the mirror is a read model, the record stays on its topic.
 * One mirror per process: the gauges are the process's own.
 */
import type { Kafka } from 'kafkajs';
import type { Redis } from 'ioredis';
import { committedOffsets, type Consumer, type EachBatchPayload } from '../../streams/runtime/kafka.ts';
import type { AvroSerde } from '../../streams/runtime/serde.ts';
import { DecodeError } from '../../streams/runtime/errors.ts';
import { TOPICS } from '../../streams/runtime/topics.ts';
import {
  deadLetters, gatesBlobAge, gatesBlobMaxAge, rollingCooldown, rollingEligibleCount, rollingGate, rollingSessionOpen, spanIntegrityOk,
} from '../../streams/runtime/metrics.ts';
import type { GatesBlob } from '../../streams/gates/blob.ts';
import { resolveGatesConfig, type GatesConfig } from '../../streams/gates/config.ts';
import { isOpen, minutesToClose } from '../../streams/gates/sessions.ts';

/** The blob's Redis key (seed name), before the key prefix. */
export const GATES_BLOB_KEY = 'opt:rolling:gates_blob';
/** Cooldown keys are this plus the instrument (seed: `opt:rolling:cooldown:{instrument}`), before the key prefix. */
export const COOLDOWN_KEY_PREFIX = 'opt:rolling:cooldown:';

/**
 * KEYS[1] = blob key, KEYS[2..n] = cooldown keys;
 * ARGV[1] = blob ts (epoch ms), ARGV[2] = blob JSON,
 * ARGV[3..] = cooldown end (epoch ms) per KEYS[2..], or '-' for none.
 * Returns 1 when written, 0 when the stored blob is newer. Every key is passed
 * in KEYS, as Redis requires of scripts. A stored value that is not a blob
 * JSON with a numeric ts is overwritten. PEXPIREAT at a time already past
 * deletes the key, so Redis's clock, the one that expires the keys, also
 * decides that a cooldown is over.
 */
const WRITE_IF_NEWER = `
local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, old = pcall(cjson.decode, stored)
  if ok and type(old) == 'table' and type(old.ts) == 'number' and tonumber(ARGV[1]) < old.ts then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2])
for i = 2, #KEYS do
  local ends = ARGV[i + 1]
  if ends == '-' then
    redis.call('DEL', KEYS[i])
  else
    redis.call('SET', KEYS[i], ends)
    redis.call('PEXPIREAT', KEYS[i], ends)
  end
end
return 1`;

/** The gates knobs the mirror reads. */
export type GatesBlobMirrorConfig = Pick<GatesConfig, 'blobMaxAgeSec' | 'calendar' | 'sessionExitMinutes'>;

export interface GatesBlobMirrorOptions {
  kafka: Kafka;
  serde: AvroSerde;
  redis: Redis;
  groupId: string;
  /** Topic to read; default TOPICS.gatesBlob.name (`gates.blob.v1` under SEP_TOPIC_PREFIX). */
  topic?: string;
  /**
   * Put before every Redis key, e.g. `it.x.` → `it.x.opt:rolling:gates_blob`;
   * default '' (the seeds' names). Pass TOPIC_PREFIX to namespace the keys
   * like the topics, as `features:latest` is.
   */
  keyPrefix?: string;
  /**
   * GATES_BLOB_MAX_AGE_SEC (exported as sep_gates_blob_max_age_seconds), the
   * session calendar and SESSION_EXIT_MINUTES (for sep_rolling_session_open);
   * default resolveGatesConfig() from the environment.
   */
  gates?: GatesBlobMirrorConfig;
  /** Wall clock, epoch ms (default Date.now), for the blob age and the session gauge; Redis's own clock expires the cooldown keys. */
  now?: () => number;
}

/** The Redis value: the blob's fields in schema order, `ts` and cooldown ends as epoch ms. */
export function gatesBlobJson(blob: GatesBlob): string {
  const { ts, gates, cooldowns, bufs, repetition, hazard, calmar, span_ok } = blob;
  return JSON.stringify({ ts, gates, cooldowns, bufs, repetition, hazard, calmar, span_ok });
}

/**
 * The rolling-gate gauges for the newest blob applied. Series of instruments
 * that leave the blob, and an instrument's previous {eligible, buf}
 * combination, are removed, so each instrument has exactly one
 * sep_rolling_gate series. `attach()` adds the scrape-time gauges (blob age,
 * session open) and the configured max age; `withdraw()` removes every series.
 */
export class GatesBlobGauges {
  private newest: number | undefined;
  /** instrument → the sep_rolling_gate labels it has now. */
  private readonly gateLabels = new Map<string, { eligible: string; buf: string }>();
  private readonly cooldownSeries = new Set<string>();
  private readonly spanSeries = new Set<string>();

  constructor(private readonly gates: GatesBlobMirrorConfig, private readonly now: () => number = Date.now) {}

  /** Exports sep_gates_blob_max_age_seconds and installs the samplers of sep_gates_blob_age_seconds and sep_rolling_session_open. */
  attach(): void {
    gatesBlobMaxAge.set(this.gates.blobMaxAgeSec);
    gatesBlobAge.sampleWith(() => this.ageSeconds());
    rollingSessionOpen.sampleWith(() => (this.sessionOpen(this.now()) ? 1 : 0));
  }

  /** Whether the gates can pass at `t`: a session is open and the close is more than SESSION_EXIT_MINUTES away (as evaluate.ts decides). */
  sessionOpen(t: number): boolean {
    const { calendar, sessionExitMinutes } = this.gates;
    return isOpen(calendar, t) && minutesToClose(calendar, t) > sessionExitMinutes;
  }

  /** ts of the newest blob applied, epoch ms; undefined before the first. */
  get newestTs(): number | undefined {
    return this.newest;
  }

  /** Wall-clock age of the newest blob, seconds (negative for a ts ahead of the clock); undefined before the first blob. */
  ageSeconds(): number | undefined {
    return this.newest === undefined ? undefined : (this.now() - this.newest) / 1000;
  }

  /** Applies `blob` unless an applied blob is newer (equal ts applies); returns whether it did. */
  apply(blob: GatesBlob): boolean {
    if (this.newest !== undefined && blob.ts < this.newest) return false;
    this.newest = blob.ts;
    const gates = Object.keys(blob.gates);
    for (const instrument of [...this.gateLabels.keys()]) if (!Object.hasOwn(blob.gates, instrument)) this.dropGate(instrument);
    for (const instrument of gates) {
      const labels = { eligible: blob.gates[instrument] ? '1' : '0', buf: String(blob.bufs[instrument] ?? '') };
      const before = this.gateLabels.get(instrument);
      if (before && (before.eligible !== labels.eligible || before.buf !== labels.buf)) this.dropGate(instrument);
      rollingGate.set({ instrument, ...labels }, 1);
      this.gateLabels.set(instrument, labels);
    }
    rollingEligibleCount.set(gates.filter((i) => blob.gates[i]).length);

    const cooling = new Set([...gates, ...Object.keys(blob.cooldowns)]);
    replaceSeries(this.cooldownSeries, cooling, (i) => rollingCooldown.remove({ instrument: i }));
    for (const instrument of cooling) rollingCooldown.set({ instrument }, (blob.cooldowns[instrument] ?? -Infinity) > blob.ts ? 1 : 0);

    // A blob written before span_ok existed reads with {} (the schema default): no series then, rather than a guess.
    replaceSeries(this.spanSeries, new Set(Object.keys(blob.span_ok)), (i) => spanIntegrityOk.remove({ instrument: i }));
    for (const [instrument, ok] of Object.entries(blob.span_ok)) spanIntegrityOk.set({ instrument }, ok ? 1 : 0);
    return true;
  }

  /** Removes every series this object set, and the samplers; the next blob starts afresh. */
  withdraw(): void {
    gatesBlobAge.sampleWith(undefined);
    rollingSessionOpen.sampleWith(undefined);
    gatesBlobMaxAge.remove();
    for (const instrument of [...this.gateLabels.keys()]) this.dropGate(instrument);
    replaceSeries(this.cooldownSeries, new Set(), (i) => rollingCooldown.remove({ instrument: i }));
    replaceSeries(this.spanSeries, new Set(), (i) => spanIntegrityOk.remove({ instrument: i }));
    rollingEligibleCount.remove();
    this.newest = undefined;
  }

  private dropGate(instrument: string): void {
    const labels = this.gateLabels.get(instrument);
    if (labels) rollingGate.remove({ instrument, ...labels });
    this.gateLabels.delete(instrument);
  }
}

/** Makes `current` equal to `next`, calling `remove` for each member that leaves. */
function replaceSeries(current: Set<string>, next: ReadonlySet<string>, remove: (instrument: string) => void): void {
  for (const i of current) if (!next.has(i)) remove(i);
  current.clear();
  for (const i of next) current.add(i);
}

export class GatesBlobMirror {
  state: 'idle' | 'running' | 'stopped' = 'idle';
  /** partition → next offset done with (committed at start, then the partition end once reached). */
  readonly positions = new Map<number, bigint>();
  readonly topic: string;
  /** The Redis keys written: the blob key, and the prefix of the cooldown keys. */
  readonly keys: { blob: string; cooldownPrefix: string };
  private readonly gauges: GatesBlobGauges;
  private consumer: Consumer | undefined;

  /** Throws ConfigError when `gates` is not given and the environment's gates knobs are invalid. */
  constructor(private readonly opts: GatesBlobMirrorOptions) {
    this.topic = opts.topic ?? TOPICS.gatesBlob.name;
    const prefix = opts.keyPrefix ?? '';
    this.keys = { blob: `${prefix}${GATES_BLOB_KEY}`, cooldownPrefix: `${prefix}${COOLDOWN_KEY_PREFIX}` };
    this.gauges = new GatesBlobGauges(opts.gates ?? resolveGatesConfig().config, opts.now ?? Date.now);
  }

  /** ts of the newest blob read, epoch ms; undefined before the first. */
  get newestTs(): number | undefined {
    return this.gauges.newestTs;
  }

  /** Wall-clock age of the newest blob read, seconds; undefined before the first (for /api/status). */
  blobAgeSeconds(): number | undefined {
    return this.gauges.ageSeconds();
  }

  async start(): Promise<void> {
    const { kafka, groupId } = this.opts;
    for (const [k, v] of await committedOffsets(kafka, groupId, [this.topic])) this.positions.set(Number(k.split('/').pop()), v);
    this.gauges.attach();
    const consumer = kafka.consumer({ groupId, readUncommitted: false, allowAutoTopicCreation: false });
    this.consumer = consumer;
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.offsetLag === '0') this.positions.set(payload.partition, BigInt(payload.highWatermark));
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({ eachBatch: (p) => this.onBatch(p) });
    this.state = 'running';
  }

  /** Stops reading and withdraws the mirror's series from /metrics; Redis keeps the last blob. */
  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    this.gauges.withdraw();
    this.state = 'stopped';
  }

  private async onBatch({ batch }: EachBatchPayload): Promise<void> {
    // Only the batch's newest blob matters (the later record on a tie): one script call per batch.
    let newest: GatesBlob | undefined;
    for (const m of batch.messages) {
      let blob: GatesBlob;
      try {
        blob = await this.opts.serde.decode<GatesBlob>(this.topic, m.value);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        deadLetters.inc({ reason: err.reason, topic: this.topic });
        continue;
      }
      if (!newest || blob.ts >= newest.ts) newest = blob;
    }
    if (!newest) return;
    await this.write(newest);
    this.gauges.apply(newest);
  }

  private async write(blob: GatesBlob): Promise<void> {
    const instruments = [...new Set([...Object.keys(blob.gates), ...Object.keys(blob.cooldowns)])];
    const keys = [this.keys.blob, ...instruments.map((i) => `${this.keys.cooldownPrefix}${i}`)];
    // A cooldown counts only while it runs at the blob's ts (buildGatesBlob lists no other).
    const ends = instruments.map((i) => { const end = blob.cooldowns[i]; return end !== undefined && end > blob.ts ? String(end) : '-'; });
    await this.opts.redis.eval(WRITE_IF_NEWER, keys.length, ...keys, String(blob.ts), gatesBlobJson(blob), ...ends);
  }
}
