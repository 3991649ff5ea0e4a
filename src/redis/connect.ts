import { Redis } from 'ioredis';
import type { RedisAddress } from './redis-url.js';

export type { Redis } from 'ioredis';

export interface RedisConnectionOptions {
  /** Shown by `CLIENT LIST`, so an operator can tell Spillway's connections apart. */
  readonly name: string;
  /** A command sent while the server is unreachable fails after this long instead of hanging. */
  readonly commandTimeoutMs?: number;
}

/**
 * One connection to Redis with the settings every Spillway adapter wants: it reconnects with a
 * capped backoff for ever (a server that is down comes back), but a command issued while it is
 * down fails at once instead of queueing, so a request gets 503 and nothing hangs. Commands
 * already sent when the connection drops fail too (no automatic resend: a publish must not be
 * repeated behind the caller's back).
 */
export function connectRedis(address: RedisAddress, options: RedisConnectionOptions): Redis {
  return new Redis({
    host: address.host,
    port: address.port,
    db: address.db,
    connectionName: options.name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: options.commandTimeoutMs ?? 10_000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
    lazyConnect: false,
  });
}

/** Resolves once the connection is ready (or rejects after `timeoutMs`), for a start-up check. */
export async function whenReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis at ${redis.options.host ?? '?'}:${redis.options.port ?? '?'} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/**
 * Resolves true once the connection is ready, or false at its first failed attempt (or after
 * `timeoutMs`), never rejecting: for an adapter that must start while Redis is down, answering
 * 503 until the reconnects succeed, yet should not fail the first commands of a healthy start.
 */
export async function firstAttempt(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true;
  return new Promise<boolean>((resolve) => {
    const settle = (ready: boolean) => () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onFailure);
      redis.off('end', onFailure);
      resolve(ready);
    };
    const onReady = settle(true);
    const onFailure = settle(false);
    const timer = setTimeout(onFailure, timeoutMs);
    redis.once('ready', onReady);
    redis.once('error', onFailure);
    redis.once('end', onFailure);
  });
}
