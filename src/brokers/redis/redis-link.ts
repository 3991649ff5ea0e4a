import { SpillwayError } from '../../protocol/errors.js';
import { connectRedis, whenReady, type Redis } from '../../redis/connect.js';
import type { RedisAddress } from '../../redis/redis-url.js';

/**
 * A connection plus the one rule for using it: wait briefly for it to be ready (it may just be
 * connecting, or coming back), then run, and turn any failure into SPILLWAY_BROKER_UNAVAILABLE,
 * which the gateway answers with 503 and Retry-After. Nothing waits longer than `readyWaitMs`
 * plus the command timeout, so no request hangs on a Redis that is down.
 */
export class RedisLink {
  readonly redis: Redis;

  constructor(
    readonly address: RedisAddress,
    name: string,
    private readonly readyWaitMs: number,
  ) {
    this.redis = connectRedis(address, { name });
    // Without a listener ioredis prints every failed reconnect; the callers see the failures.
    this.redis.on('error', () => undefined);
  }

  async run<T>(what: string, step: (redis: Redis) => Promise<T>): Promise<T> {
    try {
      await whenReady(this.redis, this.readyWaitMs);
      return await step(this.redis);
    } catch (error) {
      throw unavailable(this.address, what, error);
    }
  }

  /** Like run, for callers that retry quietly on their own (take, renewals). */
  async attempt<T>(step: (redis: Redis) => Promise<T>): Promise<T> {
    await whenReady(this.redis, this.readyWaitMs);
    return step(this.redis);
  }

  close(): void {
    this.redis.disconnect();
  }
}

export function unavailable(address: RedisAddress, what: string, error: unknown): SpillwayError {
  if (error instanceof SpillwayError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new SpillwayError('SPILLWAY_BROKER_UNAVAILABLE', `Redis at ${address.host}:${address.port} could not ${what}: ${reason}`, {
    cause: error,
  });
}
