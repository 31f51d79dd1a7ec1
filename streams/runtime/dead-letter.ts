/**
 * Dead letters: a record that cannot be processed is published to dlq.v1 with
 * its original bytes, the reason and where it came from. Nothing is dropped
 * silently; the counter `sep_dead_letters_total{reason,topic}` rises.
 */
import { DecodeError, InputError, type RejectReason } from './errors.ts';
import { deadLetters } from './metrics.ts';
import { TOPICS } from './topics.ts';

export interface DeadLetter {
  reason: RejectReason;
  error_class: string;
  message: string;
  source_topic: string;
  source_partition: number;
  source_offset: number;
  source_file: string | null;
  source_line: number | null;
  key: Buffer | null;
  value: Buffer | null;
  /** The source record's timestamp when known (keeps replays deterministic), else when it was dead-lettered. */
  ts: number;
}

export const DLQ_TOPIC = TOPICS.deadLetters.name;

export type DeadLetterSource =
  | { topic: string; partition: number; offset: number; key: Buffer | null; value: Buffer | null; ts: number }
  | { topic: string; file: string; line: number; value: Buffer; ts: number };

export function deadLetterOf(err: unknown, source: DeadLetterSource): DeadLetter {
  const reason: RejectReason = err instanceof InputError || err instanceof DecodeError ? err.reason : 'malformed';
  deadLetters.inc({ reason, topic: source.topic });
  const fromFile = 'file' in source;
  return {
    reason,
    error_class: err instanceof Error ? err.name : 'Error',
    message: err instanceof Error ? err.message : String(err),
    source_topic: source.topic,
    source_partition: fromFile ? -1 : source.partition,
    source_offset: fromFile ? -1 : source.offset,
    source_file: fromFile ? source.file : null,
    source_line: fromFile ? source.line : null,
    key: fromFile ? null : source.key,
    value: source.value,
    ts: source.ts,
  };
}
