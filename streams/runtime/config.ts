/**
 * One configuration resolver: explicit value → environment variable → default.
 * Every knob is declared once with its unit, range and default; `resolveConfig`
 * validates all of them at start and reports every bad key in one error whose
 * message names the key, the value seen and the accepted range.
 */
import { ConfigError } from './errors.ts';

type Kind = 'number' | 'integer' | 'boolean' | 'string' | 'json';
type ValueOf<K extends Kind> = K extends 'number' | 'integer' ? number : K extends 'boolean' ? boolean : K extends 'string' ? string : unknown;

export interface Knob<K extends Kind = Kind> {
  kind: K;
  /** Environment variable name; defaults to the key. */
  env?: string;
  default: ValueOf<K>;
  min?: number;
  max?: number;
  /** Accepted values for strings. */
  oneOf?: readonly string[];
  /** One line: meaning and unit. */
  doc: string;
  /** Secret values are never printed. */
  secret?: boolean;
}

export type Spec = Record<string, Knob>;
export type Resolved<S extends Spec> = { [P in keyof S]: ValueOf<S[P]['kind']> };

export function resolveConfig<S extends Spec>(spec: S, explicit: Partial<Record<keyof S, unknown>> = {}, env: NodeJS.ProcessEnv = process.env): Resolved<S> {
  const out: Record<string, unknown> = {};
  const problems: { key: string; message: string }[] = [];
  for (const [key, knob] of Object.entries(spec)) {
    const envName = knob.env ?? key;
    const raw = explicit[key] !== undefined ? explicit[key] : env[envName] !== undefined && env[envName] !== '' ? env[envName] : undefined;
    if (raw === undefined) {
      out[key] = knob.default;
      continue;
    }
    try {
      out[key] = parse(knob, raw);
    } catch (err) {
      const shown = knob.secret ? '****' : JSON.stringify(raw);
      problems.push({ key: envName, message: `=${shown}: ${(err as Error).message} (${knob.doc}; default ${JSON.stringify(knob.default)})` });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as Resolved<S>;
}

function parse(knob: Knob, raw: unknown): unknown {
  switch (knob.kind) {
    case 'number':
    case 'integer': {
      const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
      if (!Number.isFinite(n)) throw new Error('must be a number');
      if (knob.kind === 'integer' && !Number.isInteger(n)) throw new Error('must be a whole number');
      if (knob.min !== undefined && n < knob.min) throw new Error(`must be ≥ ${knob.min}${rangeText(knob)}`);
      if (knob.max !== undefined && n > knob.max) throw new Error(`must be ≤ ${knob.max}${rangeText(knob)}`);
      return n;
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      const s = String(raw).trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      throw new Error('must be one of 1/0, true/false, yes/no, on/off');
    }
    case 'string': {
      const s = String(raw);
      if (knob.oneOf && !knob.oneOf.includes(s)) throw new Error(`must be one of ${knob.oneOf.join(', ')}`);
      return s;
    }
    case 'json':
      if (typeof raw !== 'string') return raw;
      try {
        return JSON.parse(raw);
      } catch (err) {
        throw new Error(`must be valid JSON (${(err as Error).message})`);
      }
  }
}

function rangeText(knob: Knob): string {
  if (knob.min !== undefined && knob.max !== undefined) return `; accepted range [${knob.min}, ${knob.max}]`;
  return '';
}

/** A printable copy of a resolved config with secrets masked. */
export function describeConfig<S extends Spec>(spec: S, config: Resolved<S>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, spec[k]?.secret ? '****' : v]));
}

/** One bad knob: its environment name and what is wrong with it, with the accepted range. */
export type ConfigProblem = { key: string; message: string };

/**
 * Runs one resolution step and keeps going on a ConfigError, adding its
 * problems to `problems`: every bad knob is reported in one error, not the
 * first one only.
 */
export function collectProblems<T>(problems: ConfigProblem[], resolve: () => T): T | undefined {
  try {
    return resolve();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
    return undefined;
  }
}
