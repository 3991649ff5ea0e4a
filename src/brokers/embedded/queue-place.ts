import type { SqliteDatabase } from '../../sqlite/open-database.js';
import type { QueuePlace } from '../broker.js';

/**
 * Exact, in one read transaction, by the same rule as embeddedQueueStats: a message waits while it
 * is past the group's cursor, or leased with nobody holding it (nacked, or its holder's lease ran
 * out). Those waiting with a smaller seq are ahead of it, since seq is the order of publishing.
 * A message the group holds or has acked (or that compaction dropped) has no place: null.
 */
export function embeddedQueuePlace(db: SqliteDatabase, topic: string, group: string, seq: number, now: number): QueuePlace | null {
  return db.transaction((): QueuePlace | null => {
    const known = db.prepare('SELECT 1 FROM messages WHERE topic = ? AND seq = ?').pluck().get(topic, seq);
    if (known === undefined) return null;
    const cursor = db.prepare('SELECT cursor FROM groups WHERE topic = ? AND grp = ?').pluck().get(topic, group) as number | undefined;
    const count = (sql: string, params: Record<string, unknown>) => db.prepare(sql).pluck().get(params) as number;
    // A group nobody has subscribed yet starts at the earliest message: everything before waits.
    if (cursor === undefined) return { ahead: count('SELECT COUNT(*) FROM messages WHERE topic = @topic AND seq < @seq', { topic, seq }), exact: true };
    if (seq <= cursor) {
      const lease = db.prepare('SELECT owner, visible_at FROM leases WHERE topic = ? AND grp = ? AND seq = ?').get(topic, group, seq) as
        | { owner: string | null; visible_at: number }
        | undefined;
      if (lease === undefined || (lease.owner !== null && lease.visible_at > now)) return null;
    }
    const fresh = count('SELECT COUNT(*) FROM messages WHERE topic = @topic AND seq > @cursor AND seq < @seq', { topic, cursor, seq });
    const free = count(
      `SELECT COUNT(*) FROM leases WHERE topic = @topic AND grp = @group AND seq < @seq
         AND (owner IS NULL OR visible_at <= @now)`,
      { topic, group, seq, now },
    );
    return { ahead: fresh + free, exact: true };
  })();
}
