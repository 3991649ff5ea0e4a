import type { Redis } from '../../redis/connect.js';
import type { LimitState, RateBucket, RateDecision } from '../store.js';
import { normalized, rateDecision } from '../token-bucket.js';
import type { StoreKeys } from './keys.js';
import { joinCappedLua, takeTokensLua } from './limit-scripts.js';
import { guarded } from './unavailable.js';

/** The scripts as ioredis commands (defineCommand adds them at run time; this names their types). */
interface LimitCommands {
  spillwayTakeTokens(...keysAndArgs: (string | number)[]): Promise<(number | string)[]>;
  spillwayJoinCapped(set: string, member: string, cap: number, expiresAt: number): Promise<[number, number]>;
}

/**
 * Token buckets and capped sets on Redis, shared by every gateway on the server and prefix.
 * Each check-then-write is one script (limit-scripts.ts), so it is atomic across gateways.
 */
export class RedisLimits implements LimitState {
  private readonly redis: Redis & LimitCommands;

  constructor(
    redis: Redis,
    private readonly keys: StoreKeys,
    private readonly url: string,
  ) {
    redis.defineCommand('spillwayTakeTokens', { lua: takeTokensLua });
    redis.defineCommand('spillwayJoinCapped', { lua: joinCappedLua, numberOfKeys: 1 });
    this.redis = redis as Redis & LimitCommands;
  }

  async takeTokens(buckets: readonly RateBucket[]): Promise<RateDecision> {
    if (buckets.length === 0) return { allowed: true, buckets: [] };
    const used = buckets.map(normalized);
    const keys = used.map((b) => this.keys.rateBucket(b.name));
    const args = used.flatMap((b) => [b.ratePerS, b.burst]);
    // Number of keys first: how many buckets varies per call.
    const [allowed, ...tokens] = await guarded(this.url, () => this.redis.spillwayTakeTokens(keys.length, ...keys, ...args));
    return rateDecision(used, tokens.map(Number), allowed === 1);
  }

  async joinCapped(set: string, member: string, cap: number, expiresAt: number): Promise<{ joined: boolean; size: number }> {
    const [joined, size] = await guarded(this.url, () => this.redis.spillwayJoinCapped(this.keys.cappedSet(set), member, cap, expiresAt));
    return { joined: joined === 1, size };
  }

  async leaveCapped(set: string, members: readonly string[]): Promise<void> {
    if (members.length === 0) return;
    await guarded(this.url, () => this.redis.zrem(this.keys.cappedSet(set), ...members));
  }
}
