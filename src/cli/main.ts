/**
 * `sep`: the command line. Subcommands:
 *   sep generate [--out DIR] [--seed N] [--from ISO] [--days N]
 *   sep import <file|dir>... [--kind candles|ticks|orders|fills]
 *   sep run [--run-id ID] [--until-caught-up]
 *   sep sink [--run-id ID] [--topics T,...] [--until-caught-up]
 *   sep rewind --run-id ID --to-datetime T [--dry-run]
 *   sep replay --from T1 --to T2 [--run-id ID] [--config FILE] [--snapshot FILE] | --delete ID
 *   sep canary --from T1 --to T2 --blue A.json --green B.json [--thresholds T.json] [--canary-id ID] [--out DIR]
 *   sep migrate
 *   sep demo
 * Exit codes: 0 ok, 1 error (the message says the fix), 2 usage.
 */
import { parseArgs } from 'node:util';
import { SepError, UsageError } from '../../streams/runtime/errors.ts';
import { StackError } from '../../ops/stack/index.ts';
import { COMMANDS } from './commands.ts';

const USAGE = `usage: sep <command> [options]

commands:
  generate   write a seeded recorded day (candles, ticks, orders, fills) as NDJSON
  import     import recorded-day files (NDJSON/CSV, .gz) into the input topics
  run        run the pipeline (features, gates, markouts, calibration → topics, TimescaleDB, Redis)
  offline    run the pipeline's topologies over recorded files in-process (no services) → files
  sink       run only the TimescaleDB sink (topics → hypertables, exactly-once)
  overlays   compute and publish the allocation overlay (HRP budget, CVaR caps) for a time or a range
  calib      snapshot, verify or load the cost-calibration state
  rewind     rewind a pipeline run's consumers, state and rows to a time (--dry-run shows the plan)
  replay     replay a time range of the input topics as an isolated run (own topics, rows, no Redis)
  canary     replay a range with two configurations (blue, green) and compare: report + PASS/FAIL
  migrate    apply the TimescaleDB migrations
  demo       stack up, import the bundled day, run the pipeline, print a summary

sep <command> --help shows a command's options.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command "${name}"\n\n${USAGE}`);
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: command.positionals !== undefined, strict: true });
  } catch (err) {
    throw new UsageError(`sep ${name}: ${(err as Error).message}\n\n${command.usage}`);
  }
  if (parsed.values.help) {
    console.log(command.usage);
    return 0;
  }
  return command.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      console.error(`sep: ${err.message}`);
      process.exit(2);
    }
    if (err instanceof SepError || err instanceof StackError) console.error(`sep: ${err.message}`);
    else console.error(err);
    process.exit(1);
  },
);
