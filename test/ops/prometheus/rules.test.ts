/**
 * The alert rules of the rolling gates (ops/prometheus/sep-rolling.rules.yml)
 * against the code: every metric they read is one the pipeline exports, the
 * Prometheus config loads them, docker-compose mounts them, and — where
 * promtool is installed (PATH or PROMTOOL) — their unit tests pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { METRIC } from '../../../streams/runtime/metrics.ts';

const DIR = path.resolve(import.meta.dirname, '../../../ops/prometheus');
const ROOT = path.resolve(DIR, '../..');
const rules = readFileSync(path.join(DIR, 'sep-rolling.rules.yml'), 'utf8');
const promtool = process.env.PROMTOOL ?? 'promtool';
const hasPromtool = spawnSync(promtool, ['--version']).status === 0;

test('every sep_ metric in the alert rules is one the pipeline exports', () => {
  const exported = new Set<string>(Object.values(METRIC));
  const used = new Set(rules.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n').match(/\bsep_[a-z0-9_]+/g));
  assert.ok(used.size >= 5, `found ${[...used].join(', ')}`);
  assert.deepEqual([...used].filter((m) => !exported.has(m)), []);
});

test('group sep-rolling is loaded by prometheus.yml and mounted by docker-compose', () => {
  assert.match(rules, /^\s+- name: sep-rolling$/m);
  assert.match(readFileSync(path.join(DIR, 'prometheus.yml'), 'utf8'), /^rule_files:\n\s+- sep-rolling\.rules\.yml$/m);
  assert.match(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), /- \.\/ops\/prometheus\/sep-rolling\.rules\.yml:\/etc\/prometheus\/sep-rolling\.rules\.yml:ro/);
});

test('promtool: the rules and the config check, the rule unit tests pass', { skip: !hasPromtool && `no ${promtool} (Debian package prometheus, or set PROMTOOL)` }, () => {
  for (const args of [['check', 'config', 'prometheus.yml'], ['test', 'rules', 'sep-rolling.rules.test.yml']]) {
    const r = spawnSync(promtool, args, { cwd: DIR, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  }
});
