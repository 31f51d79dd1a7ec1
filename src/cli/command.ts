/** What every `sep` subcommand is, and the flag checks several of them share. */
import { UsageError } from '../../streams/runtime/errors.ts';

export type Values = Record<string, string | boolean | undefined>;
export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export interface Command {
  usage: string;
  options: OptionSpec;
  positionals?: true;
  run(values: Values, positionals: string[]): Promise<number>;
}

export function runIdFlag(v: string | boolean | undefined, fallback: string): string {
  const id = v === undefined ? fallback : String(v);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(id)) throw new UsageError(`--run-id ${JSON.stringify(id)}: use 1–64 letters, digits, '.', '_' or '-'`);
  return id;
}
