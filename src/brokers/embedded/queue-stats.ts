import type { SqliteDatabase } from '../../sqlite/open-database.js';
import type { QueueStats } from '../broker.js';

interface Part {
  readonly n: number;
  readonly oldest: number | null;
}

/**
 * Exact, in one read transaction: messages past the group's cursor and leases nobody holds
 * (nacked, or their holder's lease ran out) are waiting; leases renewed within their term are
 * leased. A group nobody has subscribed yet would start at the earliest message, so the whole
 * topic waits for it.
 */
export function embeddedQueueStats(db: SqliteDatabase, topic: string, group: string, now: number): QueueStats {
  return db.transaction((): QueueStats => {
    const cursor = db.prepare('SELECT cursor FROM groups WHERE topic = ? AND grp = ?').pluck().get(topic, group) as number | undefined;
    const fresh = db
      .prepare('SELECT COUNT(*) AS n, MIN(published_at) AS oldest FROM messages WHERE topic = ? AND seq > ?')
      .get(topic, cursor ?? -1) as Part;
    if (cursor === undefined) return { waiting: fresh.n, leased: 0, oldestWaitingPublishedAt: fresh.oldest };
    const free = db
      .prepare(
        `SELECT COUNT(*) AS n, MIN(m.published_at) AS oldest FROM leases l JOIN messages m ON m.seq = l.seq
         WHERE l.topic = @topic AND l.grp = @group AND (l.owner IS NULL OR l.visible_at <= @now)`,
      )
      .get({ topic, group, now }) as Part;
    const held = db
      .prepare('SELECT COUNT(*) FROM leases WHERE topic = @topic AND grp = @group AND owner IS NOT NULL AND visible_at > @now')
      .pluck()
      .get({ topic, group, now }) as number;
    const oldest = [fresh.oldest, free.oldest].filter((t): t is number => t !== null);
    return { waiting: fresh.n + free.n, leased: held, oldestWaitingPublishedAt: oldest.length === 0 ? null : Math.min(...oldest) };
  })();
}
