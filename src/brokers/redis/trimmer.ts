import type { Redis } from '../../redis/connect.js';
import { deleteIdleConsumerScript, safeTrimScript } from './lua-scripts.js';
import { aliveKey, isEphemeralGroup, streamKey } from './redis-keys.js';
import { consumersReply, groupsReply } from './stream-replies.js';

/**
 * Keeps streams bounded without losing work.
 *
 * - A topic with a retention drops entries older than it (XTRIM MINID by time), read or not,
 *   and keeps younger ones even once read, for a group that joins later from the earliest.
 * - Any other topic drops only what every group has acked (safeTrimScript), and only once it is
 *   `graceMs` old: a group that does not exist yet cannot hold entries back, and a part that
 *   subscribes a moment after others (a dispatcher starting beside a busy gateway) would
 *   otherwise find the first results already gone, read and acked by the groups that were there.
 *   On Redis 8.2+ acks
 *   already delete such entries (XACKDEL … ACKED); the same trim still runs as a sweep for what
 *   those acks could not delete yet (a group that acked later, a group destroyed since).
 * - First, ephemeral groups whose owner died (liveness key expired) are destroyed, since their
 *   positions would otherwise hold every entry back for ever.
 *
 * Publishers run it after publishing, at most once per `everyMs` per topic.
 */
export class Trimmer {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly everyMs: number,
    private readonly graceMs: number,
  ) {}

  due(topic: string, now = Date.now()): boolean {
    if (now - (this.last.get(topic) ?? 0) < this.everyMs) return false;
    this.last.set(topic, now);
    return true;
  }

  /** Returns how many entries were dropped. */
  async trim(redis: Redis, topic: string, retentionMs: number | undefined, now = Date.now()): Promise<number> {
    await destroyAbandonedGroups(redis, topic);
    const key = streamKey(topic);
    const dropped =
      retentionMs === undefined
        ? await redis.eval(safeTrimScript, 1, key, Math.max(0, Math.floor(now - this.graceMs)))
        : await redis.call('XTRIM', key, 'MINID', String(Math.max(0, Math.floor(now - retentionMs))));
    return typeof dropped === 'number' ? dropped : 0;
  }
}

/** The janitor: destroys the ephemeral groups of a topic whose owner stopped renewing their liveness key. */
export async function destroyAbandonedGroups(redis: Redis, topic: string): Promise<string[]> {
  const key = streamKey(topic);
  let groups;
  try {
    groups = groupsReply(await redis.call('XINFO', 'GROUPS', key));
  } catch (error) {
    if (/no such key/i.test(String(error))) return [];
    throw error;
  }
  const destroyed: string[] = [];
  for (const g of groups) {
    if (!isEphemeralGroup(g.name)) continue;
    if ((await redis.exists(aliveKey(topic, g.name))) === 1) continue;
    await redis.call('XGROUP', 'DESTROY', key, g.name);
    destroyed.push(g.name);
  }
  return destroyed;
}

/** A consumer that has not touched Redis for this long is gone: live ones read every few seconds. */
export const deadConsumerIdleMs = 3600_000;

/**
 * Removes consumers of a topic's groups that hold nothing and have been idle past
 * `deadConsumerIdleMs`: each subscription is a consumer with a name of its own, so crashed
 * processes would otherwise leave names behind for ever. The check that a consumer holds
 * nothing runs inside the same script as the delete, so no entry can be dropped with it.
 */
export async function pruneDeadConsumers(redis: Redis, topic: string, idleMs = deadConsumerIdleMs): Promise<number> {
  const key = streamKey(topic);
  if ((await redis.exists(key)) === 0) return 0;
  let pruned = 0;
  for (const group of groupsReply(await redis.call('XINFO', 'GROUPS', key))) {
    for (const consumer of consumersReply(await redis.call('XINFO', 'CONSUMERS', key, group.name))) {
      if (consumer.pending > 0 || consumer.idle < idleMs) continue;
      if ((await redis.eval(deleteIdleConsumerScript, 1, key, group.name, consumer.name)) !== -1) pruned += 1;
    }
  }
  return pruned;
}
