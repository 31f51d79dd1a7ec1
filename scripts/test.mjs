#!/usr/bin/env node
// `npm test`: typecheck, bring the local stack up (services whose env variable
// is set are used as they are), then run every test/**/*.test.ts with node's
// test runner. The stack is left running for the next run; `npm run stack:down`
// stops it. Pass file paths to run only those tests.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit' }).status ?? 1;

function find(dir) {
  return readdirSync(dir).sort().flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? find(p) : p.endsWith('.test.ts') ? [path.relative(root, p)] : [];
  });
}

// Paths may be files or directories (a directory runs every *.test.ts under it).
const missing = process.argv.slice(2).filter((p) => !existsSync(path.resolve(root, p)));
if (missing.length > 0) {
  console.error(`npm test: no such test file or directory: ${missing.join(', ')} (give paths under test/, e.g. node scripts/test.mjs test/streams)`);
  process.exit(2);
}
const files = process.argv.length > 2
  ? process.argv.slice(2).flatMap((p) => (statSync(path.resolve(root, p)).isDirectory() ? find(path.resolve(root, p)) : [p]))
  : find(path.join(root, 'test'));
const steps = [
  ['typecheck', process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', root]],
  ['stack', process.execPath, ['--import', 'tsx', 'ops/stack/cli.ts', 'up']],
  ['tests', process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=1', ...files]],
];
for (const [name, cmd, args] of steps) {
  const code = run(cmd, args);
  if (code !== 0) {
    console.error(`npm test: ${name} failed (exit ${code})`);
    process.exit(code);
  }
}
