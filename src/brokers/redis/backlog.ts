import type { Redis } from '../../redis/connect.js';
import type { QueuePlace, QueueStats } from '../broker.js';
import { countAfterScript, queuePlaceScript } from './lua-scripts.js';
import { redisGroupName, streamKey } from './redis-keys.js';
import { groupsReply, pendingIdsReply, readEntries, type GroupInfo } from './stream-replies.js';

/** A PEL is read this far for claimable entries; past it the split errs towards `leased`. */
const claimableScanLimit = 10_000;

async function findGroup(redis: Redis, key: string, group: string): Promise<GroupInfo | undefined> {
  const groups = groupsReply(await redis.call('XINFO', 'GROUPS', key));
  const names = [group, redisGroupName(group, true)];
  return groups.find((g) => names.includes(g.name));
}

/**
 * Entries after the group's position. Redis reports no lag when entries after that position were
 * deleted (its counters cannot tell how many), and then the entries are counted.
 */
async function lagOf(redis: Redis, key: string, info: GroupInfo): Promise<number> {
  return info.lag ?? Number(await redis.eval(countAfterScript, 1, key, info.lastDeliveredId));
}

/** A stream id's time part: when Redis accepted the entry (ids are `<ms>-<seq>` from XADD *). */
const idTime = (id: string): number => Number(id.slice(0, id.indexOf('-')));

/**
 * Waiting plus leased for one group: XINFO GROUPS gives `pending` (leased) and `lag` (entries
 * after the group's position). A group that does not exist yet would start from the earliest
 * entry, so every entry is waiting for it.
 */
export async function groupBacklog(redis: Redis, topic: string, group: string): Promise<number> {
  const key = streamKey(topic);
  if ((await redis.exists(key)) === 0) return 0;
  const info = await findGroup(redis, key, group);
  if (info === undefined) return Number(await redis.xlen(key));
  return info.pending + (await lagOf(redis, key, info));
}

/**
 * The backlog split: entries after the group's position wait; of the pending ones, those idle for
 * a lease or more wait too (nacked with their delay over, or left by a dead consumer: the next
 * XAUTOCLAIM takes them), the rest are leased. "A lease" is the broker's default; a subscriber
 * with a longer one of its own has its held entries counted as waiting early. Not atomic: the
 * commands run one after another, so a take in between may count one entry in both or neither.
 */
export async function groupQueueStats(redis: Redis, topic: string, group: string, leaseMs: number): Promise<QueueStats> {
  const key = streamKey(topic);
  const none: QueueStats = { waiting: 0, leased: 0, oldestWaitingPublishedAt: null };
  if ((await redis.exists(key)) === 0) return none;
  const first = async (from: string): Promise<number | null> => {
    const [entry] = readEntries(await redis.call('XRANGE', key, from, '+', 'COUNT', '1'), 'XRANGE');
    return entry === undefined ? null : idTime(entry.id);
  };
  const info = await findGroup(redis, key, group);
  if (info === undefined) return { waiting: Number(await redis.xlen(key)), leased: 0, oldestWaitingPublishedAt: await first('-') };
  const lag = await lagOf(redis, key, info);
  const claimable =
    info.pending === 0
      ? []
      : pendingIdsReply(await redis.call('XPENDING', key, info.name, 'IDLE', String(leaseMs), '-', '+', String(claimableScanLimit)));
  const times = [...(claimable.length > 0 ? [idTime(claimable[0]!)] : []), ...(lag > 0 ? [await first(`(${info.lastDeliveredId}`)] : [])];
  const known = times.filter((t): t is number => t !== null);
  return {
    waiting: lag + claimable.length,
    leased: Math.max(0, info.pending - claimable.length),
    oldestWaitingPublishedAt: known.length === 0 ? null : Math.min(...known),
  };
}

/** Entries counted ahead of one before the count stops and is reported as not exact. */
const placeCountCap = 10_000;

/**
 * Where one entry stands for the group, in one script (atomic, so exact up to the cap). A pending
 * entry counts as waiting by the same rule as groupQueueStats: idle for the broker's default lease.
 */
export async function groupQueuePlace(redis: Redis, topic: string, group: string, id: string, leaseMs: number): Promise<QueuePlace | null> {
  const reply = await redis.eval(queuePlaceScript, 1, streamKey(topic), redisGroupName(group, false), id, String(leaseMs), String(placeCountCap));
  if (!Array.isArray(reply)) return null;
  const [ahead, exact] = reply as unknown[];
  return typeof ahead === 'number' ? { ahead, exact: exact === 1 } : null;
}
