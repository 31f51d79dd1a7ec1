/**
 * Local Redis from Debian's redis-server (the design's Valkey stand-in). It is
 * installed with apt when missing and we are root; otherwise the fix is printed.
 * Persistence is off: the stack's Redis holds snapshots the pipeline rewrites.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import net from 'node:net';
import type { LocalService } from './service.ts';
import { portOpen, spawnDetached, stackPath, StackError, waitUntil } from './process.ts';

const PORT = Number(process.env.SEP_REDIS_PORT ?? 16379);

function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export const redis: LocalService = {
  name: 'redis',
  envVar: 'REDIS_URL',
  localUrl: `redis://127.0.0.1:${PORT}`,

  async install(log) {
    if (hasRedisServer()) return;
    const fix = 'sudo apt-get update && sudo apt-get install -y redis-server (or set REDIS_URL to a running Redis/Valkey)';
    if (process.getuid?.() !== 0 || spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) {
      throw new StackError('redis-server is not installed', fix);
    }
    log('installing redis-server with apt-get (once)');
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', timeout: 300_000 });
      execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], {
        stdio: 'ignore', timeout: 300_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch (err) {
      throw new StackError(`apt-get could not install redis-server: ${(err as Error).message}`, fix);
    }
    if (!hasRedisServer()) throw new StackError('redis-server still missing after apt-get install', fix);
  },

  async start() {
    if (await portOpen(PORT)) {
      throw new StackError(`port ${PORT} (redis) is already in use`, `stop the process on ${PORT}, or set REDIS_URL to use it, or set SEP_REDIS_PORT to another port`);
    }
    const pid = spawnDetached('redis', 'redis-server', [
      '--port', String(PORT), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', stackPath('redis', '.keep').replace(/\/\.keep$/, ''), '--daemonize', 'no',
    ]);
    await waitUntil('redis', () => redis.healthy(redis.localUrl), 15_000, pid);
  },

  healthy(url) {
    // A PING over RESP is enough and avoids a client dependency in the stack.
    const { hostname, port } = new URL(url);
    return new Promise((resolve) => {
      const socket = net.connect({ host: hostname, port: Number(port || 6379) });
      const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
      socket.setTimeout(1000, () => done(false));
      socket.once('error', () => done(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      // -NOAUTH still proves a live Redis; credentials are the client's business.
      socket.once('data', (buf) => done(/^(\+PONG|-NOAUTH)/.test(buf.toString())));
    });
  },
};
