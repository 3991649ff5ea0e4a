import { join } from 'node:path';
import type { OutgoingMessage } from '../../protocol/message.js';
import type { Broker, Delivery, QueuePlace, QueueStats, SubscribeOptions, Subscription, TopicOptions } from '../broker.js';
import { GroupCommit } from '../../sqlite/group-commit.js';
import { openDatabase, whileBusy, type SqliteDatabase } from '../../sqlite/open-database.js';
import type { TopicView, TopicViewWriter } from '../../sqlite/topic-view.js';
import { ChangeWatcher } from './change-watcher.js';
import { embeddedQueuePlace } from './queue-place.js';
import { embeddedQueueStats } from './queue-stats.js';
import { createSchema } from './schema.js';
import { EmbeddedSubscription, leaseOf, type Lease, type LeaseOp } from './embedded-subscription.js';
import { SoleReaderSubscription } from './sole-reader-subscription.js';

export interface EmbeddedBrokerOptions {
  /** Folder holding queue.db; every process that shares it shares the queue. */
  readonly dataDir: string;
  readonly busyTimeoutMs?: number;
  /** How often idle takers look for commits made by other processes. */
  readonly pollMs?: number;
  readonly defaultLeaseMs?: number;
  /** An ephemeral group not renewed for this long belongs to a dead process and is removed. */
  readonly ephemeralTtlMs?: number;
  /** Messages of a topic no group reads are kept this long. */
  readonly orphanRetentionMs?: number;
  readonly compactEveryMs?: number;
  /**
   * Tables in queue.db kept in step with a topic (the result store's records, when the store
   * shares this file): written in the transaction that publishes to the topic.
   */
  readonly views?: readonly TopicView<OutgoingMessage>[];
}

/** What one call commits whole: its messages, and for a hand-off the leases its acks delete. */
interface DurableWrite {
  readonly topic: string;
  readonly messages: readonly OutgoingMessage[];
  readonly publishedAt: number;
  readonly acks: readonly Lease[];
  /** The topic view's writes, if the topic has one. */
  readonly view?: () => void;
  /** Set by the insert: each message's seq, its position. */
  seqs?: number[];
}

/**
 * A durable queue in one SQLite file, shared by every process on the machine that opens it.
 *
 * Publishes go through a connection with synchronous=FULL and are group-committed: an accepted
 * request survives power loss, and one fsync covers everything published in one event-loop turn.
 * Leases and acks go through a second connection with synchronous=NORMAL: losing the last of
 * those to a power cut only causes a redelivery, which at-least-once processing already allows.
 * A worker's hand-off (`publishAndAck`) is the exception: its acks ride in its results' durable
 * transaction, one commit where there were two. A topic with a view (the result store, when it
 * lives in this file) has the view written in that same transaction too.
 */
export class EmbeddedBroker implements Broker {
  private readonly durable: SqliteDatabase;
  private readonly fast: SqliteDatabase;
  private readonly publishes: GroupCommit<DurableWrite>;
  private readonly views: ReadonlyMap<string, TopicViewWriter<OutgoingMessage>>;
  private readonly leaseOps: GroupCommit<LeaseOp>;
  private readonly watcher: ChangeWatcher;
  private readonly subscriptions = new Set<Subscription>();
  private readonly compactor: NodeJS.Timeout;
  private closed = false;

  static open(options: EmbeddedBrokerOptions): EmbeddedBroker {
    return new EmbeddedBroker(options);
  }

  private constructor(private readonly options: EmbeddedBrokerOptions) {
    const path = join(options.dataDir, 'queue.db');
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    // No busy timeout: its only writes are the group commit below, which waits for the lock
    // without stopping the thread (retryWhileBusyMs).
    this.durable = openDatabase(path, { durability: 'full', busyTimeoutMs: 0, openTimeoutMs: busyTimeoutMs });
    whileBusy(busyTimeoutMs, () => createSchema(this.durable));
    this.fast = openDatabase(path, { durability: 'normal', busyTimeoutMs });

    const insert = this.durable.prepare(
      'INSERT INTO messages (topic, key, headers, value, published_at) VALUES (?, ?, ?, ?, ?)',
    );
    const handedOff = this.durable.prepare('DELETE FROM leases WHERE topic = ? AND grp = ? AND seq = ? AND owner = ?');
    this.views = new Map((options.views ?? []).map((view) => [view.topic, view.prepare(this.durable)]));
    this.publishes = new GroupCommit(this.durable, (writes) => {
      for (const write of writes) {
        write.view?.();
        write.seqs = write.messages.map((message) => {
          const headers = message.headers === undefined ? null : JSON.stringify(message.headers);
          return Number(insert.run(write.topic, message.key ?? null, headers, message.value, write.publishedAt).lastInsertRowid);
        });
        for (const lease of write.acks) handedOff.run(lease.topic, lease.group, lease.seq, lease.owner);
      }
    }, { retryWhileBusyMs: busyTimeoutMs });

    const ack = this.fast.prepare('DELETE FROM leases WHERE topic = ? AND grp = ? AND seq = ? AND owner = ?');
    const nack = this.fast.prepare(
      'UPDATE leases SET visible_at = ?, owner = NULL WHERE topic = ? AND grp = ? AND seq = ? AND owner = ?',
    );
    this.leaseOps = new GroupCommit(this.fast, (ops) => {
      for (const op of ops) {
        if (op.kind === 'ack') ack.run(op.topic, op.group, op.seq, op.owner);
        else nack.run(op.visibleAt, op.topic, op.group, op.seq, op.owner);
      }
    });

    this.watcher = new ChangeWatcher(this.fast, options.pollMs ?? 2);
    this.compactor = setInterval(() => this.compactQuietly(), options.compactEveryMs ?? 2000);
    this.compactor.unref();
  }

  /** SQLite takes far more; this keeps one message from stalling every other writer. */
  readonly maxMessageBytes = 64 * 1024 * 1024;

  /** Transactions committed for publishes so far; many publishes share one under load. */
  get publishCommits(): number {
    return this.publishes.commitCount;
  }

  async publish(topic: string, messages: readonly OutgoingMessage[]): Promise<readonly (string | undefined)[]> {
    if (this.closed) throw new Error('broker is closed');
    const seqs = await this.commit(topic, messages, []);
    return seqs.map(String);
  }

  /**
   * One transaction, with the publishes of others: the messages go in and the leases go out
   * together. A delivery this broker did not lease (a sole reader's, another broker's) is acked
   * on its own afterwards.
   */
  async publishAndAck(topic: string, messages: readonly OutgoingMessage[], deliveries: readonly Delivery[]): Promise<void> {
    if (this.closed) throw new Error('broker is closed');
    const acks: Lease[] = [];
    const others: Delivery[] = [];
    for (const delivery of deliveries) {
      const lease = leaseOf(delivery, this.leaseOps);
      if (lease === undefined) others.push(delivery);
      else acks.push(lease);
    }
    if (messages.length + acks.length > 0) await this.commit(topic, messages, acks);
    await Promise.all(others.map((d) => d.ack()));
  }

  /** Messages in and leases out in one durable transaction (shared with others' writes), with the topic's view. */
  private async commit(topic: string, messages: readonly OutgoingMessage[], acks: readonly Lease[]): Promise<readonly number[]> {
    const update = messages.length === 0 ? undefined : this.views.get(topic)?.(messages);
    const write: DurableWrite = { topic, messages: update?.messages ?? messages, publishedAt: Date.now(), acks, ...(update === undefined ? {} : { view: update.apply }) };
    await this.publishes.submit(write);
    update?.committed();
    if (messages.length > 0) this.watcher.notify(topic);
    return write.seqs ?? [];
  }

  async ensureTopic(topic: string, options: TopicOptions = {}): Promise<void> {
    this.fast
      .prepare(
        `INSERT INTO topics (topic, retention_ms) VALUES (?, ?)
         ON CONFLICT (topic) DO UPDATE SET retention_ms = excluded.retention_ms`,
      )
      .run(topic, options.retentionMs ?? null);
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new Error('broker is closed');
    if (options.ephemeral === true || options.soleReader === true) {
      const sole = new SoleReaderSubscription(this.fast, this.watcher, options, (s) => this.subscriptions.delete(s));
      this.subscriptions.add(sole);
      return sole;
    }
    const subscription = new EmbeddedSubscription(
      {
        db: this.fast,
        watcher: this.watcher,
        leaseOps: this.leaseOps,
        onClose: (s) => this.subscriptions.delete(s),
      },
      { ...options, leaseMs: options.leaseMs ?? this.options.defaultLeaseMs ?? 30_000 },
    );
    this.subscriptions.add(subscription);
    return subscription;
  }

  async backlog(topic: string, group: string): Promise<number> {
    const row = this.fast
      .prepare(
        `SELECT
           (SELECT COUNT(*) FROM messages WHERE topic = @topic AND seq > g.cursor) +
           (SELECT COUNT(*) FROM leases WHERE topic = @topic AND grp = @group) AS n
         FROM groups g WHERE g.topic = @topic AND g.grp = @group`,
      )
      .get({ topic, group }) as { n: number } | undefined;
    if (row !== undefined) return row.n;
    // Nobody in the group has subscribed yet: everything on the topic is waiting for it.
    const all = this.fast.prepare('SELECT COUNT(*) AS n FROM messages WHERE topic = ?').get(topic) as { n: number };
    return all.n;
  }

  async queueStats(topic: string, group: string): Promise<QueueStats> {
    return embeddedQueueStats(this.fast, topic, group, Date.now());
  }

  async positionOf(topic: string, group: string, position: string): Promise<QueuePlace | null> {
    const seq = Number(position);
    if (!Number.isSafeInteger(seq)) return null;
    return embeddedQueuePlace(this.fast, topic, group, seq, Date.now());
  }

  async ping(): Promise<void> {
    this.fast.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.compactor);
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.watcher.close();
    this.durable.close();
    this.fast.close();
  }

  /**
   * Drop what every group has moved past (on topics without a retention: those keep each message
   * for their retention, so a late subscriber reading from the start sees it), what is past its
   * retention, and groups whose ephemeral owner died.
   */
  compact(now = Date.now()): void {
    const ttl = this.options.ephemeralTtlMs ?? 60_000;
    const orphanRetention = this.options.orphanRetentionMs ?? 7 * 24 * 3600_000;
    this.fast.transaction(() => {
      this.fast
        .prepare(
          `DELETE FROM leases WHERE (topic, grp) IN
             (SELECT topic, grp FROM groups WHERE ephemeral = 1 AND seen_at < ?)`,
        )
        .run(now - ttl);
      this.fast.prepare('DELETE FROM groups WHERE ephemeral = 1 AND seen_at < ?').run(now - ttl);
      const lows = this.fast
        .prepare(
          `SELECT topic, MIN(low) AS low FROM (
             SELECT g.topic, MIN(g.cursor + 1, COALESCE(
               (SELECT MIN(l.seq) FROM leases l WHERE l.topic = g.topic AND l.grp = g.grp), g.cursor + 1)) AS low
             FROM groups g
             WHERE g.topic NOT IN (SELECT topic FROM topics WHERE retention_ms IS NOT NULL))
           GROUP BY topic`,
        )
        .all() as { topic: string; low: number }[];
      const drop = this.fast.prepare('DELETE FROM messages WHERE topic = ? AND seq < ?');
      for (const { topic, low } of lows) drop.run(topic, low);
      const retained = this.fast.prepare('SELECT topic, retention_ms FROM topics WHERE retention_ms IS NOT NULL').all() as {
        topic: string;
        retention_ms: number;
      }[];
      const expire = this.fast.prepare('DELETE FROM messages WHERE topic = ? AND published_at < ?');
      for (const { topic, retention_ms } of retained) expire.run(topic, now - retention_ms);
      this.fast
        .prepare(
          `DELETE FROM messages WHERE published_at < ?
             AND NOT EXISTS (SELECT 1 FROM groups g WHERE g.topic = messages.topic)`,
        )
        .run(now - orphanRetention);
    })();
  }

  private compactQuietly(): void {
    try {
      this.compact();
    } catch {
      // Another process holds the write lock; compaction is housekeeping and runs again soon.
    }
  }
}
