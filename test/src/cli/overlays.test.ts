import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asOfTimes } from '../../../src/cli/overlays.ts';
import { UsageError } from '../../../streams/runtime/errors.ts';

const D = (iso: string) => Date.parse(iso);

test('sep overlays: --as-of, a --from/--to range of day starts, or the current hour', () => {
  assert.deepEqual(asOfTimes({ 'as-of': '2026-11-16T00:00:00Z' }), [D('2026-11-16T00:00:00Z')]);
  assert.deepEqual(asOfTimes({ from: '2026-11-14T06:00:00Z', to: '2026-11-16T00:00:00Z' }), [D('2026-11-15T00:00:00Z'), D('2026-11-16T00:00:00Z')]);
  assert.deepEqual(asOfTimes({}, D('2026-11-22T09:41:12Z')), [D('2026-11-22T09:00:00Z')]);
});

test('sep overlays: bad flags are usage errors that say what to give', () => {
  const usage = (v: Record<string, string>, re: RegExp) => assert.throws(() => asOfTimes(v), (e: unknown) => e instanceof UsageError && re.test(e.message));
  usage({ 'as-of': 'yesterday' }, /--as-of "yesterday": give an hour-aligned ISO-8601 UTC time/);
  usage({ 'as-of': '2026-11-16T00:30:00Z' }, /hour-aligned/);
  usage({ 'as-of': '2026-11-16T00:00:00Z', from: '2026-11-14T00:00:00Z' }, /not both/);
  usage({ from: '2026-11-14T00:00:00Z' }, /--from and --to go together/);
  usage({ from: '2026-11-16T00:00:00Z', to: '2026-11-14T00:00:00Z' }, /is before --from/);
  usage({ from: '2026-11-14T01:00:00Z', to: '2026-11-14T05:00:00Z' }, /no day start/);
});
