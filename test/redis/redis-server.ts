import { testRedis as scriptedRedis } from '../helpers/redis-script.js';
import { testRedisUrl } from '../helpers/paths.js';

/**
 * The Redis servers of the Redis suite, all started by scripts/redis as a deployment would run
 * them (AOF, appendfsync always), each in a folder of its own on a free port.
 */

/** A server a test owns and may stop, kill and start again; its data survives all three. */
export interface OwnRedis {
  readonly url: string;
  readonly port: number;
  /** A clean shutdown (the AOF is complete); `start` brings it back with its data. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on its port and folder; resolves once its AOF is loaded. */
  start(): Promise<void>;
  /** Stops it for good and deletes its folder. */
  destroy(): Promise<void>;
}

export async function startOwnRedis(): Promise<OwnRedis> {
  const redis = scriptedRedis();
  const url = await redis.up();
  return {
    url,
    port: Number(new URL(url).port),
    stop: async () => {
      await redis.run(['down']);
    },
    kill: () => redis.kill(),
    start: async () => {
      await redis.start();
    },
    destroy: () => redis.destroy(),
  };
}

/** The suite's server: SPILLWAY_TEST_REDIS (shared, left running) when set, else one of this file's own. */
export interface SuiteRedis {
  readonly url: string;
  /** Deletes the server if this file started it; a shared one is left alone. */
  release(): Promise<void>;
}

export async function suiteRedis(): Promise<SuiteRedis> {
  if (process.env['SPILLWAY_TEST_REDIS'] !== undefined && process.env['SPILLWAY_TEST_REDIS'] !== '') {
    return { url: testRedisUrl, release: async () => {} };
  }
  const own = await startOwnRedis();
  return { url: own.url, release: () => own.destroy() };
}
