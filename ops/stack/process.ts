/**
 * Process plumbing shared by every local service: detached spawn with a pid
 * file and a log file, readiness polling with a deadline, stop by pid.
 * Everything lives under the stack directory (default `.stack/`, ignored by git).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const STACK_DIR = path.resolve(process.env.SEP_STACK_DIR ?? path.join(import.meta.dirname, '..', '..', '.stack'));

export function stackPath(...parts: string[]): string {
  const p = path.join(STACK_DIR, ...parts);
  mkdirSync(path.dirname(p), { recursive: true });
  return p;
}

/** A stack failure that carries the exact fix for the operator. */
export class StackError extends Error {
  constructor(message: string, readonly fix: string) {
    super(`${message}\n  fix: ${fix}`);
    this.name = 'StackError';
  }
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Starts a long-lived process detached from this one; returns its pid. */
export function spawnDetached(name: string, command: string, args: string[], opts: SpawnOptions = {}): number {
  const logFile = stackPath('logs', `${name}.log`);
  const out = openSync(logFile, 'a');
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    detached: true,
    stdio: ['ignore', out, out],
  });
  if (child.pid === undefined) throw new StackError(`could not start ${name} (${command})`, `check that ${command} is installed and on PATH`);
  child.unref();
  writeFileSync(pidFile(name), String(child.pid));
  return child.pid;
}

export function pidFile(name: string): string {
  return stackPath('run', `${name}.pid`);
}

export function readPid(name: string): number | undefined {
  const f = pidFile(name);
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops a service by its pid file: SIGTERM to its process group, SIGKILL after `graceMs`. */
export async function stopByPid(name: string, graceMs = 10_000): Promise<'stopped' | 'not-running'> {
  const pid = readPid(name);
  if (pid === undefined || !isAlive(pid)) {
    rmSync(pidFile(name), { force: true });
    return 'not-running';
  }
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) signalGroup(pid, 'SIGKILL');
  while (isAlive(pid)) await sleep(50);
  rmSync(pidFile(name), { force: true });
  return 'stopped';
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal); // detached children lead their own group
  } catch {
    try { process.kill(pid, signal); } catch { /* already gone */ }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** True when something accepts TCP connections on host:port. */
export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Polls `check` until it returns true or `timeoutMs` passes. If the service's
 * process dies meanwhile, fails at once with the tail of its log.
 */
export async function waitUntil(name: string, check: () => Promise<boolean>, timeoutMs: number, pid?: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    if (pid !== undefined && !isAlive(pid)) {
      throw new StackError(`${name} exited during start-up:\n${logTail(name)}`, `read ${stackPath('logs', `${name}.log`)}`);
    }
    await sleep(200);
  }
  throw new StackError(`${name} was not ready after ${Math.round(timeoutMs / 1000)} s:\n${logTail(name)}`, `read ${stackPath('logs', `${name}.log`)}; run \`npm run stack:down\` and retry`);
}

export function logTail(name: string, lines = 15): string {
  const f = stackPath('logs', `${name}.log`);
  if (!existsSync(f)) return '  (no log)';
  return readFileSync(f, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `  | ${l}`).join('\n');
}
