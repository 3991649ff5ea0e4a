import type { Redis } from '../../redis/connect.js';
import { countAfterScript } from './lua-scripts.js';
import { redisGroupName, streamKey } from './redis-keys.js';
import { groupsReply } from './stream-replies.js';

/**
 * Waiting plus leased for one group: XINFO GROUPS gives `pending` (leased) and `lag` (entries
 * after the group's position). Redis reports no lag when entries after that position were
 * deleted (its counters cannot tell how many), and then the entries are counted. A group that
 * does not exist yet would start from the earliest entry, so every entry is waiting for it.
 */
export async function groupBacklog(redis: Redis, topic: string, group: string): Promise<number> {
  const key = streamKey(topic);
  if ((await redis.exists(key)) === 0) return 0;
  const groups = groupsReply(await redis.call('XINFO', 'GROUPS', key));
  const names = [group, redisGroupName(group, true)];
  const info = groups.find((g) => names.includes(g.name));
  if (info === undefined) return Number(await redis.xlen(key));
  const lag = info.lag ?? Number(await redis.eval(countAfterScript, 1, key, info.lastDeliveredId));
  return info.pending + lag;
}
