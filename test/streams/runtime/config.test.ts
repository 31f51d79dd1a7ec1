import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from '../../../streams/runtime/config.ts';
import { ConfigError } from '../../../streams/runtime/errors.ts';

const spec = {
  ALLOC_TOP_K: { kind: 'integer', default: 3, min: 1, max: 50, doc: 'instruments selected' },
  RISK_ALLOC_TARGET_PCT: { kind: 'number', default: 0.3, min: 0, max: 1, doc: 'total allocation, fraction' },
  KILL_SWITCH: { kind: 'boolean', default: false, doc: 'block increases' },
  TOKEN: { kind: 'string', default: '', doc: 'admin token', secret: true },
} as const;

test('explicit beats environment beats default', () => {
  const c = resolveConfig(spec, { ALLOC_TOP_K: 5 }, { ALLOC_TOP_K: '4', RISK_ALLOC_TARGET_PCT: '0.25', KILL_SWITCH: 'yes' });
  assert.deepEqual(c, { ALLOC_TOP_K: 5, RISK_ALLOC_TARGET_PCT: 0.25, KILL_SWITCH: true, TOKEN: '' });
});

test('every bad key is reported at once, with the range, and secrets stay hidden', () => {
  assert.throws(() => resolveConfig(spec, {}, { ALLOC_TOP_K: '0', RISK_ALLOC_TARGET_PCT: 'lots', TOKEN: undefined, KILL_SWITCH: 'maybe' }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.problems.length, 3);
    assert.match(err.message, /ALLOC_TOP_K ="0": must be ≥ 1; accepted range \[1, 50\]/);
    assert.match(err.message, /RISK_ALLOC_TARGET_PCT ="lots": must be a number/);
    assert.match(err.message, /KILL_SWITCH ="maybe": must be one of/);
    return true;
  });
});
