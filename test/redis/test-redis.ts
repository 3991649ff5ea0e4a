import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedPort } from '../helpers/ports.js';

/** A Redis server for the Redis suite: its URL, and how to stop it (a no-op for a shared one). */
export interface TestRedis {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * SPILLWAY_TEST_REDIS (`redis://127.0.0.1:PORT`) when set, else a server of this file's own on
 * a free port, durable as a deployment's would be (appendfsync always). The one place to swap
 * for the shared test server.
 */
export async function testRedis(): Promise<TestRedis> {
  const shared = process.env.SPILLWAY_TEST_REDIS;
  if (shared !== undefined && shared !== '') return { url: shared, stop: async () => {} };
  return startRedisServer();
}

/** A server of one's own, always, that a test may stop and start again. */
export interface OwnRedis extends TestRedis {
  readonly port: number;
  readonly dir: string;
  /** Stops the server and keeps its data, so `startRedisServer(this)` brings it back as it was. */
  shutdown(): void;
}

/** A server of its own, for tests that stop and restart it; `reuse` restarts a shut-down one. */
export async function startRedisServer(reuse?: { port: number; dir: string }): Promise<OwnRedis> {
  const port = reuse?.port ?? (await closedPort());
  const dir = reuse?.dir ?? mkdtempSync(join(tmpdir(), 'spillway-redis-'));
  execFileSync('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always',
    '--save', '', '--daemonize', 'yes', '--pidfile', join(dir, 'redis.pid'),
  ]);
  await waitForPong(port);
  const shutdown = () => {
    try {
      // nosave skips only the RDB snapshot; the append-only file already holds every write.
      execFileSync('redis-cli', ['-p', String(port), 'shutdown', 'nosave'], { stdio: 'ignore' });
    } catch {
      // Already stopped.
    }
  };
  return {
    port,
    dir,
    url: `redis://127.0.0.1:${port}`,
    shutdown,
    stop: async () => {
      shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPong(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      if (execFileSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).trim() === 'PONG') return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
