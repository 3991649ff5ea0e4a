import { randomUUID } from 'node:crypto';
import type { Delivery, SubscribeOptions, Subscription, TakeOptions } from '../broker.js';
import { takeLoop } from '../take-loop.js';
import type { GroupCommit } from '../../sqlite/group-commit.js';
import type { SqliteDatabase } from '../../sqlite/open-database.js';
import type { ChangeWatcher } from './change-watcher.js';
import { toDelivery } from './schema.js';
import type { DueLeaseRow, MessageRow } from './schema.js';

/** A message leased to one subscriber: what an ack deletes. */
export interface Lease {
  readonly topic: string;
  readonly group: string;
  readonly seq: number;
  readonly owner: string;
}

export type LeaseOp = ({ kind: 'ack' } & Lease) | ({ kind: 'nack'; visibleAt: number } & Lease);

/** The lease behind each delivery of a leasing subscription, and the lease ops of its broker. */
const leases = new WeakMap<Delivery, { lease: Lease; leaseOps: GroupCommit<LeaseOp> }>();

/**
 * The lease `delivery` holds, when a subscription of the broker owning `leaseOps` took it: that
 * broker can then delete it in a transaction of its own choosing (a worker's hand-off).
 */
export function leaseOf(delivery: Delivery, leaseOps: GroupCommit<LeaseOp>): Lease | undefined {
  const held = leases.get(delivery);
  return held?.leaseOps === leaseOps ? held.lease : undefined;
}

interface Shared {
  readonly db: SqliteDatabase;
  readonly watcher: ChangeWatcher;
  readonly leaseOps: GroupCommit<LeaseOp>;
  readonly onClose: (subscription: Subscription) => void;
}

/** Longest an idle taker sleeps before looking again for leases that expired meanwhile. */
const maxIdleSleepMs = 1000;

export class EmbeddedSubscription implements Subscription {
  private readonly owner = randomUUID();
  private readonly topic: string;
  private readonly group: string;
  private readonly leaseMs: number;
  private readonly renewer: NodeJS.Timeout;
  private readonly closing = new AbortController();
  private closed = false;

  private readonly hasWork: (at: number) => boolean;
  private readonly takeWork: (max: number, at: number) => Delivery[];
  private readonly nextVisibleAt: (at: number) => number | null;

  constructor(
    private readonly shared: Shared,
    options: SubscribeOptions & { leaseMs: number },
  ) {
    this.topic = options.topic;
    this.group = options.group;
    this.leaseMs = options.leaseMs;
    const { db } = shared;
    const now = Date.now();
    const start =
      options.from === 'latest'
        ? (db.prepare('SELECT COALESCE(MAX(seq), 0) AS s FROM messages').get() as { s: number }).s
        : 0;
    db.prepare(
      `INSERT INTO groups (topic, grp, cursor, ephemeral, seen_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (topic, grp) DO UPDATE SET seen_at = excluded.seen_at`,
    ).run(this.topic, this.group, start, 0, now);

    const dueLeases = db.prepare(
      `SELECT l.seq, l.attempt, m.key, m.headers, m.value, m.published_at
         FROM leases l JOIN messages m ON m.seq = l.seq
        WHERE l.topic = ? AND l.grp = ? AND l.visible_at <= ? ORDER BY l.seq LIMIT ?`,
    );
    const cursorOf = db.prepare('SELECT cursor FROM groups WHERE topic = ? AND grp = ?').pluck();
    const fresh = db.prepare(
      'SELECT seq, key, headers, value, published_at FROM messages WHERE topic = ? AND seq > ? ORDER BY seq LIMIT ?',
    );
    const hasFresh = db
      .prepare(
        `SELECT EXISTS (SELECT 1 FROM messages WHERE topic = @topic AND seq >
           (SELECT cursor FROM groups WHERE topic = @topic AND grp = @group))
         OR EXISTS (SELECT 1 FROM leases WHERE topic = @topic AND grp = @group AND visible_at <= @at)`,
      )
      .pluck();
    const release = db.prepare(
      'UPDATE leases SET attempt = attempt + 1, visible_at = ?, owner = ? WHERE topic = ? AND grp = ? AND seq = ?',
    );
    const lease = db.prepare(
      'INSERT INTO leases (topic, grp, seq, attempt, visible_at, owner) VALUES (?, ?, ?, 1, ?, ?)',
    );
    const advance = db.prepare('UPDATE groups SET cursor = ?, seen_at = ? WHERE topic = ? AND grp = ?');

    const nextVisible = db
      .prepare('SELECT MIN(visible_at) FROM leases WHERE topic = ? AND grp = ? AND visible_at > ?')
      .pluck();
    this.nextVisibleAt = (at) => nextVisible.get(this.topic, this.group, at) as number | null;
    this.hasWork = (at) => hasFresh.get({ topic: this.topic, group: this.group, at }) === 1;
    this.takeWork = db
      .transaction((max: number, at: number): Delivery[] => {
        const until = at + this.leaseMs;
        const out: Delivery[] = [];
        for (const row of dueLeases.all(this.topic, this.group, at, max) as DueLeaseRow[]) {
          release.run(until, this.owner, this.topic, this.group, row.seq);
          out.push(this.delivery(row, row.attempt + 1));
        }
        if (out.length < max) {
          const cursor = cursorOf.get(this.topic, this.group) as number | undefined;
          if (cursor === undefined) throw new Error(`consumer group ${this.group} on ${this.topic} was removed`);
          const rows = fresh.all(this.topic, cursor, max - out.length) as MessageRow[];
          for (const row of rows) {
            lease.run(this.topic, this.group, row.seq, until, this.owner);
            out.push(this.delivery(row, 1));
          }
          const last = rows.at(-1);
          if (last !== undefined) advance.run(last.seq, at, this.topic, this.group);
        }
        return out;
      })
      .immediate.bind(null);

    const renew = db.prepare('UPDATE leases SET visible_at = ? WHERE owner = ?');
    const touch = db.prepare('UPDATE groups SET seen_at = ? WHERE topic = ? AND grp = ?');
    // Renewing well inside the lease keeps work held by a live but slow process from being
    // handed to another; once this process dies the renewals stop and the leases run out.
    this.renewer = setInterval(
      () => {
        const at = Date.now();
        try {
          db.transaction(() => {
            renew.run(at + this.leaseMs, this.owner);
            touch.run(at, this.topic, this.group);
          })();
        } catch {
          // Busy: the next renewal comes well before the lease runs out.
        }
      },
      Math.max(50, Math.floor(this.leaseMs / 3)),
    );
    this.renewer.unref();
  }

  take(max: number, options: TakeOptions = {}): Promise<Delivery[]> {
    const { watcher } = this.shared;
    let since = 0;
    return takeLoop(max, options, this.closing.signal, {
      attempt: (n) => {
        // Read before looking: a commit between the look and the wait is then not missed.
        since = watcher.version();
        const now = Date.now();
        return this.hasWork(now) ? this.takeWork(n, now) : [];
      },
      wait: (ms, signals) => watcher.wait(this.topic, since, Math.min(ms, this.nextDueIn(Date.now())), signals),
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    clearInterval(this.renewer);
    const { db } = this.shared;
    try {
      db.prepare('UPDATE leases SET visible_at = ?, owner = NULL WHERE owner = ?').run(Date.now(), this.owner);
      this.shared.watcher.notify(this.topic);
    } finally {
      this.shared.onClose(this);
    }
  }

  private nextDueIn(now: number): number {
    const next = this.nextVisibleAt(now);
    return next === null ? maxIdleSleepMs : Math.min(maxIdleSleepMs, next - now);
  }

  private delivery(row: MessageRow, attempt: number): Delivery {
    const { leaseOps, watcher } = this.shared;
    const lease: Lease = { topic: this.topic, group: this.group, seq: row.seq, owner: this.owner };
    const delivery = toDelivery(this.topic, row, attempt, {
      ack: () => leaseOps.submit({ kind: 'ack', ...lease }),
      nack: async (delayMs = 0) => {
        await leaseOps.submit({ kind: 'nack', ...lease, visibleAt: Date.now() + delayMs });
        watcher.notify(this.topic);
      },
    });
    leases.set(delivery, { lease, leaseOps });
    return delivery;
  }
}
