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
 * A group that lives and dies with one subscriber (a gateway's view of the response stream).
 * Nobody else can ever take over its messages, so leases and acks stay in memory and reading is
 * a plain SELECT. Only its position is written, now and then, so compaction keeps what it has
 * not finished and drops the group once its process is gone.
 */
export class EphemeralSubscription implements Subscription {
  private readonly topic: string;
  private readonly group: string;
  private cursor: number;
  /** Taken and not yet acked, by seq; nacked ones wait here until visible again. */
  private readonly held = new Map<number, Held>();
  private readonly closing = new AbortController();
  private readonly saver: NodeJS.Timeout;
  private readonly fresh;
  private closed = false;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly watcher: ChangeWatcher,
    options: SubscribeOptions,
    private readonly onClose: (s: Subscription) => void,
  ) {
    this.topic = options.topic;
    this.group = options.group;
    this.cursor =
      options.from === 'latest'
        ? (db.prepare('SELECT COALESCE(MAX(seq), 0) FROM messages').pluck().get() as number)
        : 0;
    db.prepare(
      `INSERT INTO groups (topic, grp, cursor, ephemeral, seen_at) VALUES (?, ?, ?, 1, ?)
       ON CONFLICT (topic, grp) DO UPDATE SET cursor = excluded.cursor, seen_at = excluded.seen_at`,
    ).run(this.topic, this.group, this.cursor, Date.now());
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
      this.db.prepare('DELETE FROM groups WHERE topic = ? AND grp = ?').run(this.topic, this.group);
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
