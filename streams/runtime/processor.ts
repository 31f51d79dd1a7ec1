/**
 * The processor API, in Kafka Streams' words: a Processor gets `init(context)`,
 * `process(record)` per input record and `close()`. The ProcessorContext
 * forwards records downstream, hands out the task's state stores and
 * schedules punctuators on stream time (deterministic on replay) or wall-clock
 * time (live alarms only).
 */
import type { StateStore } from './stores.ts';

export interface StreamRecord<V = unknown> {
  key: string;
  value: V;
  /** Event time, epoch ms. */
  timestamp: number;
}

export type PunctuationType = 'stream-time' | 'wall-clock';
export type Punctuator = (timestamp: number) => void;
export type Cancel = () => void;

export interface ProcessorContext {
  /** The input partition (= task id) this processor instance serves. */
  readonly partition: number;
  /** Topic and offset of the record being processed (undefined inside a punctuator). */
  readonly topic: string | undefined;
  readonly offset: number | undefined;
  /** Largest record timestamp seen by this task so far (−Infinity before the first). */
  readonly streamTime: number;
  /** Sends a record to the named child nodes (default: all children of this processor). */
  forward<V>(record: StreamRecord<V>, ...children: string[]): void;
  getStateStore<S extends StateStore>(name: string): S;
  /**
   * Calls `punctuator` every `intervalMs`. Stream-time punctuators fire when a
   * record advances stream time across a multiple of the interval, once per
   * record, with the latest such multiple as timestamp — so the same input gives
   * the same punctuations however it is batched. Wall-clock punctuators run on a
   * timer and may not forward (their output would not be reproducible).
   */
  schedule(intervalMs: number, type: PunctuationType, punctuator: Punctuator): Cancel;
}

export interface Processor<V = unknown> {
  init?(context: ProcessorContext): void;
  process(record: StreamRecord<V>): void;
  close?(): void;
}
