import assert from 'node:assert/strict';
import { ConfigError } from '../../streams/runtime/errors.ts';

/** The ConfigError's problems as "KEY message" lines; fails the test when `fn` throws anything else or nothing. */
export function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    return err.problems.map((p) => `${p.key} ${p.message}`);
  }
  assert.fail('no ConfigError thrown');
}
