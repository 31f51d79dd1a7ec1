/**
 * A Task runs the topology for one input partition: it owns that partition's
 * processor instances and state stores, its stream time and punctuators. It
 * knows nothing about Kafka: `process` takes a decoded record and returns what
 * the record produced (outputs, changelog writes, dead letters), which the
 * runner commits atomically (or the test driver collects).
 */
import { InputError, type DecodeError } from './errors.ts';
import type { Cancel, Processor, ProcessorContext, PunctuationType, Punctuator, StreamRecord } from './processor.ts';
import { KeyValueStore, type ChangelogWrite, type StateStore } from './stores.ts';
import type { ProcessorNode, Topology } from './topology.ts';

export interface OutputRecord {
  topic: string;
  key: string;
  value: unknown;
  timestamp: number;
}

export interface TaskRejection {
  error: InputError | DecodeError;
  topic: string;
  offset: number;
}

/** What one input record (and the punctuations it triggered) produced; state writes are drained separately. */
export interface TaskOutput {
  outputs: OutputRecord[];
  rejections: TaskRejection[];
}

export interface StoreChangelog {
  store: string;
  writes: ChangelogWrite[];
}

export interface TaskOptions {
  /** Records older than stream time − grace are dead-lettered as `late` (ms, default 300 000). */
  graceMs?: number;
}

/**
 * The runtime's own store: the task's stream time, checkpointed with every
 * commit and restored with the other stores. Without it a restarted task
 * would start stream time afresh: a late record would pass that the
 * uninterrupted run rejected, and a punctuation already done would fire again.
 */
export const STREAM_TIME_STORE = 'stream-time';

interface Schedule { intervalMs: number; next: number; fn: Punctuator; cancelled: boolean }

export class Task {
  streamTime = -Infinity;
  private readonly stores = new Map<string, StateStore>();
  private readonly processors = new Map<string, Processor>();
  private readonly streamSchedules: Schedule[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private outputs: OutputRecord[] = [];
  private current: { topic: string; offset: number } | undefined;
  /** The last record processed (the stream-time checkpoint is stamped with it). */
  private lastInput: { topic: string; offset: number } | undefined;
  private readonly graceMs: number;
  private initialised = false;

  constructor(private readonly topology: Topology, readonly partition: number, opts: TaskOptions = {}) {
    this.graceMs = opts.graceMs ?? 300_000;
    for (const [name, factory] of topology.stores) this.stores.set(name, factory());
    this.stores.set(STREAM_TIME_STORE, new KeyValueStore<number>(STREAM_TIME_STORE));
    const current = () => this.current;
    for (const store of this.stores.values()) store.bindStamp?.(current);
  }

  /**
   * The state writes since the last drain, stream-time checkpoint included,
   * each stamped with the input record that made it. The runner drains before
   * each send, so what commits always belongs to the committed input offsets.
   */
  drainChangelog(): StoreChangelog[] {
    const time = this.stores.get(STREAM_TIME_STORE) as KeyValueStore<number>;
    if (Number.isFinite(this.streamTime) && time.get('t') !== this.streamTime) {
      this.current = this.lastInput;
      time.put('t', this.streamTime);
      this.current = undefined;
    }
    return [...this.stores.values()].map((s) => ({ store: s.name, writes: s.drainChangelog() })).filter((c) => c.writes.length > 0);
  }

  store(name: string): StateStore {
    const s = this.stores.get(name);
    if (!s) throw new Error(`no state store ${name} in this topology`);
    return s;
  }

  storeNames(): string[] {
    return [...this.stores.keys()];
  }

  /** Creates and initialises the processors; call after restoring the stores. */
  init(): void {
    if (this.initialised) return;
    this.initialised = true;
    // Restored stream time first: processors' stream-time schedules start from it.
    this.streamTime = (this.stores.get(STREAM_TIME_STORE) as KeyValueStore<number>).get('t') ?? -Infinity;
    for (const node of this.topology.nodes.values()) {
      if (node.kind !== 'processor') continue;
      const processor = node.supplier();
      this.processors.set(node.name, processor);
      processor.init?.(this.contextFor(node));
    }
  }

  /**
   * Processes one decoded input record. A record that fails validation or is
   * late is returned as a rejection; the task carries on.
   */
  process(topic: string, offset: number, key: string, value: unknown, timestamp: number): TaskOutput {
    this.init();
    const source = this.topology.sources().find((s) => s.topic === topic);
    if (!source) throw new Error(`topic ${topic} is not a source of this topology`);
    this.current = { topic, offset };
    this.lastInput = this.current;
    try {
      const graceMs = source.graceMs ?? this.graceMs;
      if (timestamp < this.streamTime - graceMs) {
        throw new InputError('late', 'timestamp', `record at ${new Date(timestamp).toISOString()} is more than ${graceMs} ms behind stream time ${new Date(this.streamTime).toISOString()} (partition ${this.partition})`);
      }
      const typed = source.validate(value);
      this.streamTime = Math.max(this.streamTime, timestamp);
      for (const child of source.children) this.deliver(child, { key, value: typed, timestamp });
      this.punctuateStreamTime();
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      this.discardPending();
      return { outputs: [], rejections: [{ error: err, topic, offset }] };
    } finally {
      this.current = undefined;
    }
    return this.drain();
  }

  /** Runs due wall-clock punctuators' side effects (they cannot forward). */
  close(): void {
    for (const t of this.timers) clearInterval(t);
    for (const p of this.processors.values()) p.close?.();
  }

  private drain(): TaskOutput {
    const outputs = this.outputs;
    this.outputs = [];
    return { outputs, rejections: [] };
  }

  /**
   * A rejected record must leave no trace. Processors validate before they
   * write state, so all there can be is outputs already forwarded: drop them.
   */
  private discardPending(): void {
    this.outputs = [];
  }

  private punctuateStreamTime(): void {
    for (const s of this.streamSchedules) {
      if (s.cancelled || this.streamTime < s.next) continue;
      const at = Math.floor(this.streamTime / s.intervalMs) * s.intervalMs;
      s.next = at + s.intervalMs;
      s.fn(at);
    }
  }

  private deliver(name: string, record: StreamRecord): void {
    const node = this.topology.nodes.get(name)!;
    if (node.kind === 'sink') {
      this.outputs.push({ topic: node.topic, key: record.key, value: record.value, timestamp: record.timestamp });
      return;
    }
    if (node.kind === 'processor') this.processors.get(name)!.process(record);
  }

  private contextFor(node: ProcessorNode): ProcessorContext {
    const task = this;
    let inWallClock = false;
    return {
      partition: this.partition,
      get topic() { return task.current?.topic; },
      get offset() { return task.current?.offset; },
      get streamTime() { return task.streamTime; },
      forward(record, ...children) {
        if (inWallClock) throw new Error(`${node.name}: a wall-clock punctuator cannot forward (its output would not replay); use a stream-time punctuator`);
        const targets = children.length ? children : node.children;
        for (const c of targets) {
          if (!node.children.includes(c)) throw new Error(`${node.name} has no child ${c}`);
          task.deliver(c, record);
        }
      },
      getStateStore<S extends StateStore>(name: string): S {
        if (!node.stores.includes(name)) throw new Error(`processor ${node.name} is not connected to state store ${name}; connect it with addStateStore`);
        return task.store(name) as S;
      },
      schedule(intervalMs: number, type: PunctuationType, fn: Punctuator): Cancel {
        if (!(intervalMs > 0)) throw new Error(`${node.name}: punctuation interval must be > 0 ms`);
        if (type === 'stream-time') {
          const s: Schedule = { intervalMs, next: -Infinity, fn, cancelled: false };
          // The first punctuation comes at the first interval boundary after stream time starts.
          s.next = Number.isFinite(task.streamTime) ? (Math.floor(task.streamTime / intervalMs) + 1) * intervalMs : -Infinity;
          task.streamSchedules.push(s);
          return () => { s.cancelled = true; };
        }
        const timer = setInterval(() => {
          inWallClock = true;
          try { fn(Date.now()); } finally { inWallClock = false; }
        }, intervalMs);
        timer.unref();
        task.timers.push(timer);
        return () => clearInterval(timer);
      },
    };
  }
}
