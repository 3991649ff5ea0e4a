import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from './child-server.js';
import { repoRoot } from './spillway.js';

/**
 * The Redis server a benchmark runs its Redis-backed systems on. Both sides of a comparison must
 * use one server with one persistence setting, so the settings are read back from the server
 * itself ({@link RedisFacts}) rather than trusted from how it was started.
 */
export interface BenchRedis {
  readonly url: string;
  /** The redis-server process, to count its CPU time (NaN if unknown). */
  readonly pid: number;
  /** Who started it: this bench (`redis-server`, `scripts/redis`) or nobody (`external`, via a URL). */
  readonly started_by: 'redis-server' | 'scripts/redis' | 'external';
  readonly facts: RedisFacts;
  /** Stops the server and deletes its folder, if this bench started it; otherwise does nothing. */
  stop(): Promise<void>;
}

/** What a reader needs to know of the Redis server, as it reports them. */
export interface RedisFacts {
  readonly version: string;
  readonly appendonly: string;
  readonly appendfsync: string;
  /** RDB snapshot rule; '' means none. */
  readonly save: string;
  readonly bind: string;
  readonly dir: string;
}

/**
 * The persistence every bench Redis gets: each write is in the AOF and fsync'ed before Redis
 * answers (the durability Spillway's embedded broker gives an accepted request), and no RDB
 * snapshots, whose forks would land at random moments inside a measurement.
 */
export const benchRedisArgs = ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--bind', '127.0.0.1'] as const;

/**
 * A fresh, empty Redis on a free loopback port, in a new temporary folder: through
 * `scripts/redis up` where this checkout has that script, else redis-server directly with
 * {@link benchRedisArgs}. This is the one place that decides how, so pointing the benches at
 * scripts/redis changes nothing else.
 */
export async function startBenchRedis(): Promise<BenchRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-bench-redis-'));
  try {
    const script = join(repoRoot, 'scripts/redis');
    return existsSync(script) ? await viaScript(script, dir) : await viaRedisServer(dir);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** A Redis server someone else runs (a `redis://` URL); stop() leaves it alone. */
export async function useRedis(url: string): Promise<BenchRedis> {
  const facts = await redisFacts(url);
  return { url, pid: await redisPid(url), started_by: 'external', facts, stop: async () => undefined };
}

async function viaScript(script: string, dir: string): Promise<BenchRedis> {
  const env = { ...process.env, SPILLWAY_REDIS_DIR: dir, REDIS_PORT: 'auto' };
  const output = execFileSync('bash', [script, 'up'], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = output.trim().split('\n').at(-1)?.trim() ?? '';
  if (!url.startsWith('redis://')) throw new Error(`scripts/redis up did not print a redis:// URL last:\n${output}`);
  await waitForPing(url, 15_000);
  // The daemon's own pid file (scripts/redis sets `pidfile` in its folder); INFO only if it is unreadable.
  const fromFile = Number(readFileSync(join(dir, 'redis.pid'), { encoding: 'utf8', flag: 'r' }).trim());
  const pid = Number.isInteger(fromFile) && fromFile > 0 ? fromFile : await redisPid(url);
  return {
    url,
    pid,
    started_by: 'scripts/redis',
    facts: await redisFacts(url),
    stop: async () => {
      try {
        // SIGTERM through the script (a clean shutdown), and the folder's files removed by it.
        execFileSync('bash', [script, 'down', '--wipe'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
      } catch {
        await shutdown(url, pid);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function viaRedisServer(dir: string): Promise<BenchRedis> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--dir', dir, '--daemonize', 'no', '--logfile', join(dir, 'redis.log'), ...benchRedisArgs], {
    cwd: dir,
    stdio: 'ignore',
  });
  const exited = once(child, 'exit');
  const failed = once(child, 'error').then(([error]) => {
    throw new Error(`redis-server did not start: ${String(error)} (is it installed? apt-get install redis-server)`);
  });
  const url = `redis://127.0.0.1:${port}`;
  try {
    await Promise.race([waitForPing(url, 15_000), failed]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url,
    pid: child.pid ?? Number.NaN,
    started_by: 'redis-server',
    facts: await redisFacts(url),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A short-lived client for the bench's own calls: never retries, so a dead server fails fast. */
async function withClient<T>(url: string, f: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await f(redis);
  } finally {
    redis.disconnect();
  }
}

async function waitForPing(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await withClient(url, (r) => r.ping());
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`Redis at ${url} did not answer PING within ${timeoutMs} ms: ${String(error)}`);
      await sleep(50);
    }
  }
}

function infoField(info: string, field: string): string {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? 'unknown';
}

async function redisPid(url: string): Promise<number> {
  return withClient(url, async (r) => Number(infoField(await r.info('server'), 'process_id')));
}

export async function redisFacts(url: string): Promise<RedisFacts> {
  return withClient(url, async (r) => {
    const config = async (name: string) => (await r.config('GET', name))[1] ?? 'unknown';
    return {
      version: infoField(await r.info('server'), 'redis_version'),
      appendonly: await config('appendonly'),
      appendfsync: await config('appendfsync'),
      save: await config('save'),
      bind: await config('bind'),
      dir: await config('dir'),
    };
  });
}

/** One line for a report: the version and the persistence settings. */
export function describeRedis(r: BenchRedis): string {
  const f = r.facts;
  return `Redis ${f.version} at ${r.url} (appendonly ${f.appendonly}, appendfsync ${f.appendfsync}, save "${f.save}", bind ${f.bind}; started by ${r.started_by})`;
}

async function shutdown(url: string, pid: number): Promise<void> {
  // SHUTDOWN closes the connection instead of answering; the rejection is the expected outcome.
  await withClient(url, (r) => r.shutdown('NOSAVE')).catch(() => undefined);
  const deadline = Date.now() + 10_000;
  while (Number.isFinite(pid) && existsSync(`/proc/${pid}`) && Date.now() < deadline) await sleep(50);
}

/** Bytes the server holds in memory now (INFO memory used_memory); NaN on failure. */
export async function usedMemory(url: string): Promise<number> {
  return withClient(url, async (r) => Number(infoField(await r.info('memory'), 'used_memory'))).catch(() => Number.NaN);
}

/**
 * Deletes every key that starts with `prefix` and returns how many there were, so one
 * measurement's queue never meets the next and a shared server is left as it was found.
 * `anywhere`: keys that hold `prefix` anywhere (a glob, unescaped); `exact`: the key itself.
 */
export async function deleteKeys(url: string, prefix: string, o: { anywhere?: boolean; exact?: boolean } = {}): Promise<number> {
  const pattern = o.exact === true ? prefix : o.anywhere === true ? `*${prefix}*` : `${prefix}*`;
  return withClient(url, async (r) => {
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await r.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
  });
}

/**
 * Deletes what a Spillway deployment with `--prefix prefix` left on a Redis broker and store, and
 * returns how many keys and hash fields that was. The store's keys start with `prefix:`; the
 * broker's keys embed its topic names (`prefix.requests.echo`, …) after its own `spillway:`
 * namespace, and its topic registry is one hash shared by every deployment, whose fields are
 * topic names. A prefix no other deployment uses (the bench makes one per server start, ending
 * in a fixed-width number) matches nothing else.
 */
export async function deleteSpillwayKeys(url: string, prefix: string, sharedHashes: readonly string[] = ['spillway:topics']): Promise<number> {
  const glob = prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
  const keys = (await deleteKeys(url, `${glob}[:.]`, { anywhere: true })) + (await deleteKeys(url, `${glob}`, { exact: true }));
  const fields = await withClient(url, async (r) => {
    let deleted = 0;
    for (const hash of sharedHashes) {
      if ((await r.type(hash)) !== 'hash') continue;
      let cursor = '0';
      do {
        const [next, flat] = await r.hscan(hash, cursor, 'MATCH', `${glob}.*`, 'COUNT', 1000);
        cursor = next;
        const names = flat.filter((_, i) => i % 2 === 0);
        if (names.length > 0) deleted += await r.hdel(hash, ...names);
      } while (cursor !== '0');
    }
    return deleted;
  });
  return keys + fields;
}
