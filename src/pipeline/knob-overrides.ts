/**
 * Knob overrides from a file (`sep replay --config`, `sep canary --blue/--green`):
 * the environment knobs `resolvePipelineConfig` (./run.ts) reads, by name, with
 * values as the environment would hold them. Kept beside the resolver so the
 * list of names follows it.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../../streams/runtime/errors.ts';
import { REGIME_KNOBS } from '../../streams/features/regime.ts';
import { GATES_CONFIG } from '../../streams/gates/config.ts';
import { MARKOUT_CONFIG } from '../../streams/markout/config.ts';
import { CALIBRATION_CONFIG } from '../../streams/calibration/config.ts';
import { EXECUTION_KNOBS } from '../../streams/execution/topology.ts';
import { ALLOCATION_CONFIG } from '../../streams/allocation/config.ts';

/** Every knob `resolvePipelineConfig` reads: the names a `--config` file may set. */
export const PIPELINE_KNOBS: ReadonlySet<string> = new Set([
  'SEP_INSTRUMENTS', ...Object.keys(REGIME_KNOBS), ...Object.keys(GATES_CONFIG), ...Object.keys(MARKOUT_CONFIG),
  ...Object.keys(CALIBRATION_CONFIG), ...Object.keys(EXECUTION_KNOBS), ...Object.keys(ALLOCATION_CONFIG),
]);

/**
 * A `--config` file: a JSON object of knob → value, the names and forms of
 * the environment knobs (docs/gates.md, …). Numbers and booleans are taken as
 * written, objects and arrays as their JSON text. Values are checked by the
 * knobs' own resolvers when the configuration is resolved.
 */
export function parseConfigOverrides(file: string, flag = '--config'): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give a JSON file of knob overrides, e.g. {"GATES_SPAN_DAYS": 0.25}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${flag} ${file}: not JSON (${(err as Error).message}); give an object of knob overrides, e.g. {"GATES_SPAN_DAYS": 0.25}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new UsageError(`${flag} ${file}: give a JSON object of knob overrides, e.g. {"GATES_SPAN_DAYS": 0.25}`);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(json)) {
    if (!PIPELINE_KNOBS.has(key)) {
      const near = [...PIPELINE_KNOBS].filter((k) => k.split('_')[0] === key.split('_')[0]).sort().slice(0, 8);
      throw new UsageError(`${flag} ${file}: ${JSON.stringify(key)} is not a pipeline knob${near.length ? ` (knobs starting ${key.split('_')[0]}_: ${near.join(', ')})` : ''}; the knobs are listed in docs/gates.md, docs/regime.md, docs/markout.md, docs/calibration.md and docs/allocation.md`);
    }
    if (value === null) throw new UsageError(`${flag} ${file}: ${key} is null; give a value or leave the knob out`);
    out[key] = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return out;
}
