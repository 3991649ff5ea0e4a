import type { Delivery, SubscribeOptions, Subscription, TakeOptions } from '../broker.js';
import { takeLoop } from '../take-loop.js';
import type { SqliteDatabase } from '../../sqlite/open-database.js';
import type { ChangeWatcher } from './change-watcher.js';
import { toDelivery } from './schema.js';
import type { MessageRow } from './schema.js';

interface Held {
  readonly row: MessageRow;
  attempt: number;
  visibleAt: number;
}

/**
 * A group that one subscriber reads at a time: an ephemeral one (a gateway's view of the
 * response stream) or a sole reader (an analytics tap, the store writer, the callback
 * dispatcher: readers whose handling is idempotent). Nobody else takes over its messages
 * while it runs, so leases and acks stay in memory and reading is a plain SELECT, which takes no
 * lock that serving waits on. Only its position is written, now and then, so compaction keeps
 * what it has not finished. An ephemeral group is dropped once its process is gone; a sole
 * reader's position outlives it, and its next run resumes there, taking again what came after.
 */
export class SoleReaderSubscription implements Subscription {
  private readonly topic: string;
  private readonly group: string;
  private cursor: number;
  /** Taken and not yet acked, by seq; nacked ones wait here until visible again. */
  private readonly held = new Map<number, Held>();
  private readonly closing = new AbortController();
  private readonly saver: NodeJS.Timeout;
  private readonly fresh;
  private readonly ephemeral: boolean;
  private closed = false;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly watcher: ChangeWatcher,
    options: SubscribeOptions,
    private readonly onClose: (s: Subscription) => void,
  ) {
    this.topic = options.topic;
    this.group = options.group;
    this.ephemeral = options.ephemeral === true;
    const start =
      options.from === 'latest'
        ? (db.prepare('SELECT COALESCE(MAX(seq), 0) FROM messages').pluck().get() as number)
        : 0;
    this.cursor = this.ephemeral ? joinAfresh(db, this.topic, this.group, start) : resume(db, this.topic, this.group, start);
    this.fresh = db.prepare(
      'SELECT seq, key, headers, value, published_at FROM messages WHERE topic = ? AND seq > ? ORDER BY seq LIMIT ?',
    );
    const save = db.prepare('UPDATE groups SET cursor = ?, seen_at = ? WHERE topic = ? AND grp = ?');
    this.saver = setInterval(() => {
      try {
        save.run(this.safeCursor(), Date.now(), this.topic, this.group);
      } catch {
        // Busy: the next save comes long before the group would count as abandoned.
      }
    }, 5000);
    this.saver.unref();
  }

  take(max: number, options: TakeOptions = {}): Promise<Delivery[]> {
    let since = 0;
    return takeLoop(max, options, this.closing.signal, {
      attempt: (n) => {
        since = this.watcher.version();
        const now = Date.now();
        const out: Delivery[] = [];
        for (const h of this.held.values()) {
          if (out.length >= n) break;
          if (h.visibleAt <= now) {
            h.attempt += 1;
            h.visibleAt = Infinity;
            out.push(this.delivery(h));
          }
        }
        if (out.length < n) {
          for (const row of this.fresh.all(this.topic, this.cursor, n - out.length) as MessageRow[]) {
            const h: Held = { row, attempt: 1, visibleAt: Infinity };
            this.held.set(row.seq, h);
            this.cursor = row.seq;
            out.push(this.delivery(h));
          }
        }
        return out;
      },
      wait: (ms, signals) => this.watcher.wait(this.topic, since, Math.min(ms, this.nextVisibleIn(Date.now())), signals),
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    clearInterval(this.saver);
    try {
      if (this.ephemeral) this.db.prepare('DELETE FROM groups WHERE topic = ? AND grp = ?').run(this.topic, this.group);
      else this.db.prepare('UPDATE groups SET cursor = ?, seen_at = ? WHERE topic = ? AND grp = ?').run(this.safeCursor(), Date.now(), this.topic, this.group);
    } finally {
      this.onClose(this);
    }
  }

  /** Everything before the oldest unfinished message is done. */
  private safeCursor(): number {
    let oldest = this.cursor + 1;
    for (const seq of this.held.keys()) oldest = Math.min(oldest, seq);
    return oldest - 1;
  }

  private nextVisibleIn(now: number): number {
    let next = 1000;
    for (const h of this.held.values()) if (h.visibleAt !== Infinity) next = Math.min(next, h.visibleAt - now);
    return Math.max(0, next);
  }

  private delivery(h: Held): Delivery {
    return toDelivery(this.topic, h.row, h.attempt, {
      ack: async () => {
        this.held.delete(h.row.seq);
      },
      nack: async (delayMs = 0) => {
        if (!this.held.has(h.row.seq)) return;
        h.visibleAt = Date.now() + delayMs;
        this.watcher.notify(this.topic);
      },
    });
  }
}

function joinAfresh(db: SqliteDatabase, topic: string, group: string, start: number): number {
  db.prepare(
    `INSERT INTO groups (topic, grp, cursor, ephemeral, seen_at) VALUES (?, ?, ?, 1, ?)
     ON CONFLICT (topic, grp) DO UPDATE SET cursor = excluded.cursor, seen_at = excluded.seen_at`,
  ).run(topic, group, start, Date.now());
  return start;
}

/**
 * Picks up a sole reader's group where it stopped. Leases it holds in the table (the group was
 * read by take-and-ack subscribers before) are given up and their messages read again, so a
 * group that changes how it is read loses nothing.
 */
function resume(db: SqliteDatabase, topic: string, group: string, start: number): number {
  return db
    .transaction((): number => {
      db.prepare(
        `INSERT INTO groups (topic, grp, cursor, ephemeral, seen_at) VALUES (?, ?, ?, 0, ?)
         ON CONFLICT (topic, grp) DO UPDATE SET seen_at = excluded.seen_at`,
      ).run(topic, group, start, Date.now());
      const saved = db.prepare('SELECT cursor FROM groups WHERE topic = ? AND grp = ?').pluck().get(topic, group) as number;
      const oldestLease = db.prepare('SELECT MIN(seq) FROM leases WHERE topic = ? AND grp = ?').pluck().get(topic, group) as number | null;
      if (oldestLease === null) return saved;
      db.prepare('DELETE FROM leases WHERE topic = ? AND grp = ?').run(topic, group);
      const cursor = Math.min(saved, oldestLease - 1);
      db.prepare('UPDATE groups SET cursor = ? WHERE topic = ? AND grp = ?').run(cursor, topic, group);
      return cursor;
    })
    .immediate();
}
