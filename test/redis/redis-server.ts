import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway redis-server for the Redis suite, run as Spillway expects it in production (AOF,
 * fsync on every write). Stand-in until test/helpers/redis-script.ts arrives; swap it there.
 */
export interface TestRedis {
  readonly url: string;
  readonly port: number;
  stop(): void;
  /** Starts it again on the same port and data (own servers only). */
  start(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A server of our own, always: for tests that stop it. */
export async function startOwnRedis(): Promise<TestRedis> {
  let port = await freePort();
  while (port === 6379 || port === 6390) port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'spillway-redis-'));
  const pidfile = join(dir, 'redis.pid');
  const start = async () => {
    execFileSync('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always',
      '--save', '', '--daemonize', 'yes', '--pidfile', pidfile,
    ]);
    for (let i = 0; i < 100; i++) {
      try {
        execFileSync('redis-cli', ['-p', String(port), 'ping'], { stdio: 'ignore' });
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop() {
      try {
        // Returns once the server has closed its connections on the way out (AOF flushed).
        execFileSync('redis-cli', ['-p', String(port), 'shutdown'], { stdio: 'ignore' });
      } catch {
        try {
          process.kill(Number(readFileSync(pidfile, 'utf8').trim()), 'SIGTERM');
        } catch {
          // Already gone.
        }
      }
    },
  };
}

/** SPILLWAY_TEST_REDIS when set (shared, never stopped here), else a server of our own. */
export async function testRedis(): Promise<TestRedis> {
  const shared = process.env.SPILLWAY_TEST_REDIS;
  if (shared !== undefined && shared !== '') {
    return { url: shared, port: Number(new URL(shared).port), stop: () => undefined, start: async () => undefined };
  }
  return startOwnRedis();
}
