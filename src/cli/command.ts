/** What every `sep` subcommand is, and the flag checks several of them share. */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
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

/** An ISO-8601 date-time with its zone (Z or ±hh:mm): a time given to a replay or rewind must not depend on the machine's time zone. */
const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

/** `--<flag> T` as epoch ms; `command` names the command in the message when the flag is missing. */
export function datetimeFlag(v: string | boolean | undefined, flag = 'to-datetime', command = 'sep rewind'): number {
  if (v === undefined || v === true) throw new UsageError(`${command}: --${flag} is required: an ISO-8601 time with its zone, e.g. --${flag} 2026-11-13T12:00:00Z`);
  const s = String(v);
  const ms = DATETIME.test(s) ? Date.parse(s) : NaN;
  if (!Number.isFinite(ms)) throw new UsageError(`--${flag} ${JSON.stringify(s)}: give an ISO-8601 time with its zone, e.g. 2026-11-13T12:00:00Z or 2026-11-13T13:00:00+01:00`);
  return ms;
}

/**
 * Runs `sep <args>` in a child process with `env` added, its output on ours;
 * SIGINT/SIGTERM are passed on (the child stops cleanly). For what must be
 * decided before the modules load: the topic namespace (streams/runtime/topics.ts).
 */
export function runSelf(args: readonly string[], env: NodeJS.ProcessEnv, opts: { prefix?: string } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args], { env: { ...process.env, ...env }, stdio: opts.prefix ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    if (opts.prefix) {
      for (const [from, to] of [[child.stdout!, process.stdout], [child.stderr!, process.stderr]] as const) {
        createInterface({ input: from, crlfDelay: Infinity }).on('line', (line) => to.write(`${opts.prefix}${line}\n`));
      }
    }
    const pass = (signal: NodeJS.Signals) => () => child.kill(signal);
    const onInt = pass('SIGINT');
    const onTerm = pass('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}
