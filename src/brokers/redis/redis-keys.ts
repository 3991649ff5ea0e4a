import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * Key names. Everything Spillway writes sits under `spillway:` so it can share a Redis with other
 * programs; topics already carry the deployment prefix, so deployments never meet either.
 */
export const streamKey = (topic: string): string => `spillway:stream:${topic}`;

/** Hash of topic → retention in ms ('' for none), written by ensureTopic, read by trimming. */
export const topicsKey = 'spillway:topics';

/**
 * Ephemeral groups carry this prefix in Redis, so the janitor can tell them from durable ones
 * (whose names the operator chose) without any other record.
 */
const ephemeralPrefix = 'spillway-ephemeral:';

export function redisGroupName(group: string, ephemeral: boolean): string {
  return ephemeral ? `${ephemeralPrefix}${group}` : group;
}

export function isEphemeralGroup(redisGroup: string): boolean {
  return redisGroup.startsWith(ephemeralPrefix);
}

/** Set with a PX by the owner of an ephemeral group while it lives; gone means the owner died. */
export const aliveKey = (topic: string, redisGroup: string): string => `spillway:alive:${topic}:${redisGroup}`;

/** Where close() hands leased entries: another consumer's XAUTOCLAIM takes them from here at once. */
export const returnedConsumer = 'spillway-returned';

/** Unique per subscriber, and readable in XINFO CONSUMERS: host, process, and a random tail. */
export function consumerName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}
