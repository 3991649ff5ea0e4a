import type { RateBucket, RateBucketState, RateDecision } from './store.js';

/**
 * The arithmetic of token buckets, shared by the store adapters so that they answer alike. The
 * SQLite store runs all of it; the Redis store decides in Lua (limit-scripts.ts repeats
 * `refilled` and `fullInMs` there, operation for operation) and reports with `rateDecision`.
 */

/**
 * The longest wait a store reports. A bucket that never refills (rate 0) would have no answer
 * at all, and a client told to retry after years is no better served than one told a day.
 */
export const longestWaitMs = 86_400_000;

/** The bucket as the stores use it: a negative, NaN or infinite rate or burst counts as 0. */
export function normalized(bucket: RateBucket): RateBucket {
  const finite = (n: number) => (Number.isFinite(n) && n > 0 ? n : 0);
  return { name: bucket.name, ratePerS: finite(bucket.ratePerS), burst: finite(bucket.burst) };
}

/**
 * Tokens in the bucket `elapsedMs` after it held `tokens`: refilled at its rate, never past its
 * burst. A burst lowered since the last take clamps the old count; a raised one lets it grow.
 */
export function refilled(bucket: RateBucket, tokens: number, elapsedMs: number): number {
  return Math.min(bucket.burst, tokens + (Math.max(0, elapsedMs) * bucket.ratePerS) / 1000);
}

/** One token from each bucket if every one has it, else none: `found` are their tokens now. */
export function takeOne(found: readonly number[]): { readonly allowed: boolean; readonly tokens: readonly number[] } {
  const allowed = found.every((t) => t >= 1);
  return { allowed, tokens: allowed ? found.map((t) => t - 1) : found };
}

/** Ms until a bucket holding `tokens` holds `target`; undefined if it never will. */
function msUntil(bucket: RateBucket, tokens: number, target: number): number | undefined {
  if (tokens >= target) return 0;
  if (bucket.ratePerS === 0 || bucket.burst < target) return undefined;
  return Math.ceil(((target - tokens) * 1000) / bucket.ratePerS);
}

/**
 * Ms until a bucket left with `tokens` is full, and so the same as one never used: how long a
 * store must keep it. Undefined when it never refills.
 */
export function fullInMs(bucket: RateBucket, tokens: number): number | undefined {
  return msUntil(bucket, tokens, bucket.burst);
}

const capped = (ms: number | undefined): number => (ms === undefined ? longestWaitMs : Math.min(ms, longestWaitMs));

/**
 * What a take answers, from each bucket's tokens after it (after the take if it was allowed,
 * as found if not). A refusal's wait is the longest of the buckets' waits for one token.
 */
export function rateDecision(buckets: readonly RateBucket[], tokens: readonly number[], allowed: boolean): RateDecision {
  const level = (i: number) => tokens[i] ?? 0;
  const states: RateBucketState[] = buckets.map((b, i) => ({ remaining: Math.max(0, Math.floor(level(i))), resetMs: capped(fullInMs(b, level(i))) }));
  if (allowed) return { allowed: true, buckets: states };
  const retryAfterMs = Math.max(0, ...buckets.map((b, i) => capped(msUntil(b, level(i), 1))));
  return { allowed: false, buckets: states, retryAfterMs };
}
