/**
 * The stack command: status of the running stack, and the failures that must
 * say exactly what is missing within seconds instead of hanging.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT, urls } from './helpers.ts';

function stack(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'ops/stack/cli.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out, ms: Date.now() - t0 }));
  });
}

test('stack:status reports the four services up', async () => {
  const r = await stack(['status'], urls as unknown as NodeJS.ProcessEnv);
  assert.equal(r.code, 0, r.out);
  for (const name of ['redis', 'timescale', 'schema-registry', 'kafka']) assert.match(r.out, new RegExp(`${name}\\s+up`));
});

test('a port in use fails fast, naming the port and the fix', async () => {
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    const r = await stack(['up'], { SEP_STACK_DIR: mkdtempSync(path.join(os.tmpdir(), 'sep-stack-')), SEP_REDIS_PORT: String(port) });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, new RegExp(`port ${port} \\(redis\\) is already in use`));
    assert.match(r.out, /fix: .*REDIS_URL/);
  } finally {
    blocker.close();
  }
});

test('no Java on PATH: the Kafka step says what to install, and services given by env are not started', async () => {
  const bin = mkdtempSync(path.join(os.tmpdir(), 'sep-nojava-'));
  symlinkSync(process.execPath, path.join(bin, 'node'));
  const r = await stack(['up'], {
    PATH: bin, SEP_STACK_DIR: mkdtempSync(path.join(os.tmpdir(), 'sep-stack-')), SEP_KAFKA_PORT: '29092',
    REDIS_URL: urls.REDIS_URL, DATABASE_URL: urls.DATABASE_URL, SCHEMA_REGISTRY_URL: urls.SCHEMA_REGISTRY_URL,
  });
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /redis: using REDIS_URL/);
  assert.match(r.out, /java/i);
  assert.match(r.out, /fix: .*apt-get install -y openjdk-17-jre-headless maven.*KAFKA_BROKERS/);
  assert.ok(r.ms < 30_000, `took ${r.ms} ms`);
});
