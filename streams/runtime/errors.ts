/**
 * The one errors module. Every error the product raises is a SepError with a
 * code from a closed list; callers act on flags (`retriable`) rather than on
 * message text. Downstream errors are wrapped as `{ cause }` and keep their own
 * codes (node-postgres SQLSTATE, kafkajs error types) on the cause.
 */
export const ERROR_CODES = [
  'CONFIG_INVALID',
  'INPUT_INVALID',
  'DECODE_FAILED',
  'SCHEMA_INCOMPATIBLE',
  'KAFKA_UNAVAILABLE',
  'REGISTRY_UNAVAILABLE',
  'DATABASE_UNAVAILABLE',
  'REDIS_UNAVAILABLE',
  'MIGRATION_FAILED',
  'USAGE',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class SepError extends Error {
  readonly retriable: boolean = false;
  constructor(readonly code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A configuration key is missing or out of range; the message names the key and the accepted values. */
export class ConfigError extends SepError {
  constructor(readonly problems: readonly { key: string; message: string }[]) {
    super('CONFIG_INVALID', problems.length === 1
      ? `${problems[0]!.key} ${problems[0]!.message}`
      : `invalid configuration:\n  ${problems.map((p) => `${p.key} ${p.message}`).join('\n  ')}`);
  }
}

/**
 * Why a record was rejected. The reason is the dead-letter reason and the
 * metric label; `field` names what was wrong so the fix is obvious.
 */
export const REJECT_REASONS = [
  'malformed',          // not parseable at all (bad JSON, wrong number of CSV columns)
  'unknown_field',      // a column/key the schema does not have
  'missing_field',      // a required field is absent
  'invalid_value',      // NaN, negative/zero price, high < low, bad timestamp
  'unknown_instrument', // not in the instrument catalog
  'undecodable',        // bytes are not Confluent-framed Avro of the topic's schema
  'unknown_schema',     // the schema id is not in the registry
  'late',               // beyond the grace period (stream runtime)
  'rejected_by_database', // a decoded record whose row TimescaleDB refused (a constraint or data exception; the sink)
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export class InputError extends SepError {
  constructor(readonly reason: RejectReason, readonly field: string | undefined, message: string) {
    super('INPUT_INVALID', field ? `${field}: ${message}` : message);
  }
}

export class DecodeError extends SepError {
  constructor(readonly reason: Extract<RejectReason, 'undecodable' | 'unknown_schema'>, message: string, options?: { cause?: unknown }) {
    super('DECODE_FAILED', message, options);
  }
}

export class UnavailableError extends SepError {
  override readonly retriable = true;
  constructor(code: Extract<ErrorCode, 'KAFKA_UNAVAILABLE' | 'REGISTRY_UNAVAILABLE' | 'DATABASE_UNAVAILABLE' | 'REDIS_UNAVAILABLE'>, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export class UsageError extends SepError {
  constructor(message: string) {
    super('USAGE', message);
  }
}
