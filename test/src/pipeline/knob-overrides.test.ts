import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../../../streams/runtime/errors.ts';
import { parseConfigOverrides, PIPELINE_KNOBS } from '../../../src/pipeline/knob-overrides.ts';
import { resolvePipelineConfig } from '../../../src/pipeline/run.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sep-knob-overrides-'));
const file = (name: string, text: string) => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};

test('--config: knob → value as the environment would hold it; the resolved configuration takes them', () => {
  const overrides = parseConfigOverrides(file('ok.json', '{"HYSTERESIS_BUF": 0.3, "GATES_SPAN_DAYS": "0.25", "SPAN_MIN_BARS": 120, "MARKOUT_HORIZONS_MS": [200, 500, 5000], "KILL_SWITCH": true}'));
  assert.deepEqual(overrides, { HYSTERESIS_BUF: '0.3', GATES_SPAN_DAYS: '0.25', SPAN_MIN_BARS: '120', MARKOUT_HORIZONS_MS: '[200,500,5000]', KILL_SWITCH: 'true' });
  const config = resolvePipelineConfig(overrides);
  assert.equal(config.gates.buf, 0.3);
  assert.deepEqual(config.markout.horizonsMs, [200, 500, 5000]);
});

test('--config: every knob the pipeline resolves is accepted, nothing else', () => {
  for (const k of ['SEP_INSTRUMENTS', 'EVAL_INTERVAL_SEC', 'MARKOUT_GRACE_MS', 'ALLOC_INTERVAL_SEC', 'GUARD_MIN_COHERENCE']) assert.ok(PIPELINE_KNOBS.has(k), k);
  for (const k of ['SEP_TOPIC_PREFIX', 'DATABASE_URL', 'SEP_OUTPUT_PREFIX']) assert.ok(!PIPELINE_KNOBS.has(k), k);
});

test('--config: bad files are usage errors naming the file, the key and the fix', () => {
  const cases: [string, string, RegExp][] = [
    ['unknown.json', '{"GATES_SPAN_DAY": 1}', /unknown\.json: "GATES_SPAN_DAY" is not a pipeline knob \(knobs starting GATES_: .*GATES_SPAN_DAYS/],
    ['array.json', '[1]', /array\.json: give a JSON object of knob overrides, e\.g\. \{"GATES_SPAN_DAYS": 0\.25\}/],
    ['broken.json', '{"HYSTERESIS_BUF": ', /broken\.json: not JSON/],
    ['null.json', '{"HYSTERESIS_BUF": null}', /null\.json: HYSTERESIS_BUF is null; give a value or leave the knob out/],
    ['infra.json', '{"DATABASE_URL": "postgres://x"}', /"DATABASE_URL" is not a pipeline knob/],
  ];
  for (const [name, text, message] of cases) {
    assert.throws(() => parseConfigOverrides(file(name, text), '--green'), (err: Error) => err instanceof UsageError && message.test(err.message) && err.message.startsWith('--green '), name);
  }
  assert.throws(() => parseConfigOverrides(path.join(dir, 'missing.json')), (err: Error) => err instanceof UsageError && /missing\.json: cannot read it \(ENOENT\)/.test(err.message));
});
