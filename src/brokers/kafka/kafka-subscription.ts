import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Consumer, stringDeserializers, type Message, type MessagesStream } from '@platformatic/kafka';
import type { Delivery, SubscribeOptions, Subscription, TakeOptions } from '../broker.js';
import { takeLoop, type Signals } from '../take-loop.js';
import './kafka-client-fixes.js';
import { kafkaGroupId, type KafkaBrokerOptions } from './kafka-options.js';
import { OffsetTracker } from './offset-tracker.js';

type Record = Message<string, string, string, string>;
type Republish = (message: { topic: string; key?: string; value: string; headers: { [name: string]: string } }) => Promise<void>;

/** How long an ack waits for the commit that records it. */
const commitWaitMs = 2000;

/** How long a consumer may sit idle while its partitions hold unread records. */
const stallAfterMs = 15_000;

/** Headers of a record handed back to the group at close: its attempt and its first position. */
export const attemptHeader = 'spillway-attempt';
export const originHeader = 'spillway-origin';

/**
 * A partition this consumer owns, from the join that gave it until the join that takes it away.
 * Deliveries remember the ownership they came from: an ack after the partition moved is ignored.
 */
interface Ownership {
  /** The next offset to hand out; unknown until the first record after the partition came. */
  next: bigint | undefined;
  /** The highest offset dropped past `next` while the read position was sent back to it. */
  skippedUpTo: bigint | undefined;
  /** Reads that came back past `next` again after being sent back: a gap that stays is real. */
  rereads: number;
}

/**
 * Re-reads that still start past the expected offset before the gap counts as real: offsets with
 * no record to hand out (a transaction's control records) must not stop a partition, and a read
 * that was in flight when the position was sent back settles within one.
 */
const rereadsBeforeGap = 3;

/** A record this consumer holds: taken (not yet done), or waiting to be taken again. */
interface Held {
  readonly record: Record;
  readonly ownership: Ownership;
  attempt: number;
  /** When a nacked record may be taken again; 0 while it is out with a caller. */
  visibleAt: number;
}

/**
 * One consumer in the group, read in paused mode: records are read from the stream only when a
 * caller takes them, so while every slot is busy the stream's buffer fills and fetching stops.
 *
 * - ack: the offset is marked done; commits move to the lowest unfinished offset per partition.
 * - nack: the record stays here and is handed out again after the delay with its attempt
 *   raised; its offset stays uncommitted meanwhile, so a crash still brings it back.
 * - close: records still held are produced again (attempt raised) for the group's next owner.
 * - a dead consumer: its session times out, its partitions move, and the new owner reads from
 *   the committed offsets, so every unfinished record comes again.
 * - a rebalance: partitions that moved away are forgotten (their acks are ignored, so nothing is
 *   committed for a partition owned elsewhere); partitions kept go on where they were. Records
 *   are handed out strictly in offset order per partition: a record behind that point is a
 *   re-read (dropped), one past it means the client skipped ahead (it is sent back to that point).
 * - an ephemeral group commits nothing and disappears once its consumer leaves.
 */
export class KafkaSubscription implements Subscription {
  private consumer: Consumer<string, string, string, string>;
  private stream: MessagesStream<string, string, string, string> | undefined;
  private readonly tracker = new OffsetTracker();
  private readonly held = new Map<string, Held>();
  private readonly owned = new Map<number, Ownership>();
  private idleSince: number | undefined;
  private stalled = false;
  private reconnecting: Promise<void> | undefined;
  private readonly watchdog: NodeJS.Timeout;
  private readonly wakers = new Set<() => void>();
  private readonly closing = new AbortController();
  private nextCommit: Promise<void> | undefined;
  private lastCommit: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly o: KafkaBrokerOptions,
    private readonly options: SubscribeOptions,
    private readonly republish: Republish,
    private readonly onClose: () => void,
  ) {
    this.consumer = this.newConsumer();
    this.watchdog = setInterval(() => void this.checkForStall(), 5000);
    this.watchdog.unref();
  }

  /** Joins the group and starts fetching; resolves once this consumer has its partitions. */
  async start(): Promise<void> {
    this.consumer.on('consumer:group:join', () => this.onJoin());
    const where = { topic: this.options.topic, group: this.options.group };
    this.consumer.on('consumer:heartbeat:error', (e: { error?: unknown }) => this.o.logger?.debug({ ...where, err: e.error }, 'Kafka heartbeat failed'));
    this.consumer.on('consumer:group:leave', () => this.o.logger?.debug(where, 'left the Kafka consumer group'));
    this.consumer.on('consumer:group:rejoin', () => this.o.logger?.debug(where, 'rejoining the Kafka consumer group'));
    this.consumer.on('error', (error: unknown) => this.o.logger?.warn({ ...where, err: error }, 'Kafka consumer error'));
    this.stream = await this.consumer.consume({
      topics: [this.options.topic],
      mode: 'committed',
      fallbackMode: this.options.from === 'latest' ? 'latest' : 'earliest',
      autocommit: false,
      highWaterMark: 256,
    });
    this.o.logger?.debug(
      { topic: this.options.topic, group: this.options.group, generation: this.consumer.generationId, assignments: this.consumer.assignments },
      'Kafka consumer joined',
    );
    this.stream.on('readable', () => this.wake());
    this.stream.on('error', () => this.wake());
    // The start position is fixed once the first fetch went out; only then is a message published
    // after subscribe() sure to be read (it matters for a group that starts at the latest offset).
    await within(10_000, once(this.stream, 'fetch')).catch(() => undefined);
  }

  private newConsumer(): Consumer<string, string, string, string> {
    const sessionTimeout = Math.max(1000, this.options.leaseMs ?? this.o.leaseMs);
    return new Consumer({
      clientId: `${this.o.clientId}-${randomUUID().slice(0, 8)}`,
      bootstrapBrokers: [...this.o.bootstrap],
      groupId: kafkaGroupId(this.options.group, this.options.topic),
      deserializers: stringDeserializers,
      sessionTimeout,
      heartbeatInterval: Math.max(100, Math.floor(sessionTimeout / 4)),
      rebalanceTimeout: Math.max(sessionTimeout, 10_000),
      maxWaitTime: 500,
      autocommit: false,
    });
  }

  /**
   * The client gives up on a stream once a broker outage outlasts its retries; a new consumer
   * rejoins the group and reads on from the committed offsets, so nothing unfinished is lost.
   * One replacement at a time, however many callers notice the need; each step is bounded
   * (replaceConsumer), so a slot waiting here is never stuck.
   */
  private reconnect(): Promise<void> {
    this.reconnecting ??= this.replaceConsumer().finally(() => {
      this.reconnecting = undefined;
    });
    return this.reconnecting;
  }

  private async replaceConsumer(): Promise<void> {
    this.stalled = false;
    // Forced, so the old member stops heartbeating at once and cannot keep partitions nobody reads.
    const old = this.consumer;
    await within(5000, new Promise<void>((resolve) => old.close(true, () => resolve()))).catch(() => undefined);
    this.forget(new Set());
    this.consumer = this.newConsumer();
    try {
      await within(30_000, this.start());
    } catch (error) {
      // Try again on the next take, after the caller's backoff.
      this.stalled = true;
      throw error;
    }
  }

  take(max: number, options: TakeOptions = {}): Promise<Delivery[]> {
    return takeLoop(max, options, this.closing.signal, {
      attempt: async (n) => {
        if (this.stream?.destroyed === true || this.stalled) await this.reconnect();
        const taken = this.takeReady(n);
        this.idleSince = taken.length > 0 ? undefined : (this.idleSince ?? Date.now());
        return taken;
      },
      wait: (ms, signals) => this.sleep(Math.min(ms, this.nextDelayedIn()), signals),
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    clearInterval(this.watchdog);
    // Unfinished records go back to the group with their attempt raised, like a lease running out.
    const unfinished = [...this.held.values()];
    await Promise.allSettled(unfinished.map((h) => this.handBack(h)));
    await this.lastCommit;
    try {
      await this.stream?.close();
      await this.consumer.close();
    } catch {
      // Already closed by a broker error: nothing left to release.
    }
    this.onClose();
  }

  private takeReady(max: number): Delivery[] {
    const out: Delivery[] = [];
    const now = Date.now();
    for (const h of this.held.values()) {
      if (out.length >= max) break;
      if (h.visibleAt !== 0 && h.visibleAt <= now) {
        h.visibleAt = 0;
        h.attempt += 1;
        out.push(this.delivery(h));
      }
    }
    while (out.length < max) {
      const record = (this.stream?.read() as Record | null) ?? undefined;
      if (record === undefined) break;
      const ownership = this.owned.get(record.partition);
      if (ownership === undefined) continue; // the partition moved to another member
      if (ownership.next !== undefined && record.offset < ownership.next) continue; // read again
      if (ownership.next !== undefined && record.offset > ownership.next && this.rewind(record, ownership)) continue;
      ownership.next = record.offset + 1n;
      ownership.skippedUpTo = undefined;
      ownership.rereads = 0;
      const h: Held = { record, ownership, attempt: attemptOf(record), visibleAt: 0 };
      this.held.set(keyOf(record), h);
      this.tracker.handedOut(record.partition, record.offset);
      out.push(this.delivery(h));
    }
    return out;
  }

  private delivery(h: Held): Delivery {
    const { record } = h;
    return {
      topic: record.topic,
      position: record.headers.get(originHeader) ?? keyOf(record),
      key: record.key === '' || record.key === undefined ? undefined : record.key,
      headers: Object.fromEntries(record.headers),
      value: record.value,
      attempt: h.attempt,
      publishedAt: Number(record.timestamp),
      ack: () => this.done(h),
      nack: async (delayMs = 0) => {
        if (this.held.get(keyOf(record)) !== h) return;
        h.visibleAt = Date.now() + Math.max(1, delayMs);
        this.wake();
      },
    };
  }

  /** At close: the record goes to the end of its partition with its attempt raised, then counts as done. */
  private async handBack(h: Held): Promise<void> {
    const { record } = h;
    const headers = Object.fromEntries(record.headers);
    headers[attemptHeader] = String(h.attempt + 1);
    headers[originHeader] ??= keyOf(record);
    await this.republish({
      topic: record.topic,
      value: record.value,
      headers,
      ...(record.key === '' || record.key === undefined ? {} : { key: record.key }),
    });
    await this.done(h);
  }

  /** Marks the record finished; resolves once a commit that includes that has been attempted. */
  private async done(h: Held): Promise<void> {
    const { record } = h;
    if (this.owned.get(record.partition) !== h.ownership) return;
    this.held.delete(keyOf(record));
    this.tracker.done(record.partition, record.offset);
    if (this.options.ephemeral === true) return;
    // Waits for the commit, but not for long: a commit stuck on a dead coordinator must not hold
    // up the caller's next take. A later commit carries this offset anyway.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.commit().catch(() => undefined),
      new Promise((resolve) => {
        timer = setTimeout(resolve, commitWaitMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /**
   * One commit request in flight at a time; everything finished meanwhile goes in the next, and
   * each caller waits for the request that started after its call.
   */
  private commit(): Promise<void> {
    this.nextCommit ??= (this.lastCommit ?? Promise.resolve()).then(() => {
      this.nextCommit = undefined;
      const offsets = [...this.tracker.advance()].map(([partition, offset]) => ({
        topic: this.options.topic,
        partition,
        offset,
        leaderEpoch: -1,
      }));
      return offsets.length === 0 ? undefined : this.consumer.commit({ offsets });
    });
    this.lastCommit = this.nextCommit.catch(() => undefined);
    return this.nextCommit;
  }

  /**
   * A join settled the group's assignment. Partitions kept go on where they were. Partitions
   * that came are read from the group's committed offset or, with none, from the fallback: the
   * client keeps its own read position for a partition without a commit, which may lie past
   * records this member read but never handed out, so that position is dropped here (this
   * listener runs before the client's own, which then seeds the position afresh).
   */
  private onJoin(): void {
    const assigned = new Set(this.consumer.assignments?.find((a) => a.topic === this.options.topic)?.partitions ?? []);
    this.o.logger?.debug({ topic: this.options.topic, group: this.options.group, generation: this.consumer.generationId, assigned: [...assigned] }, 'Kafka rebalance');
    this.forget(assigned);
    for (const partition of assigned) {
      if (this.owned.has(partition)) continue;
      this.owned.set(partition, { next: undefined, skippedUpTo: undefined, rereads: 0 });
      this.stream?.offsetsToFetch.delete(fetchKey(this.options.topic, partition));
    }
    this.wake();
  }

  /** Drops all state for partitions outside `keep`: they belong to another member now. */
  private forget(keep: ReadonlySet<number>): void {
    for (const partition of [...this.owned.keys()]) if (!keep.has(partition)) this.owned.delete(partition);
    for (const [key, h] of this.held) if (!keep.has(h.record.partition)) this.held.delete(key);
    this.tracker.retain(keep);
  }

  /**
   * The client skipped ahead of what this member has handed out (a fetch that was in flight
   * across a rebalance can move its read position): read the partition again from `next`.
   * False when the gap has proved real: the record is handed out.
   */
  private rewind(record: Record, ownership: Ownership): boolean {
    const { next, skippedUpTo } = ownership;
    if (next === undefined) return false;
    // Dropped records arrive in offset order; one at or below the highest dropped is a re-read.
    if (skippedUpTo !== undefined && record.offset <= skippedUpTo) ownership.rereads += 1;
    if (ownership.rereads >= rereadsBeforeGap) return false;
    if (skippedUpTo === undefined) {
      this.o.logger?.debug({ topic: this.options.topic, group: this.options.group, partition: record.partition, offset: next }, 'Kafka read position skipped ahead; reading again');
    }
    ownership.skippedUpTo = skippedUpTo === undefined || record.offset > skippedUpTo ? record.offset : skippedUpTo;
    this.stream?.offsetsToFetch.set(fetchKey(this.options.topic, record.partition), next);
    return true;
  }

  /**
   * The client can lose track of a partition whose leader died mid-fetch without reporting an
   * error. Idle for a while with records waiting on a partition we own means exactly that: the
   * consumer is replaced, and the new one reads on from the committed offsets.
   */
  private async checkForStall(): Promise<void> {
    if (this.closed || this.stalled || this.idleSince === undefined || Date.now() - this.idleSince < stallAfterMs) return;
    const topic = this.options.topic;
    const assigned = this.consumer.assignments?.find((a) => a.topic === topic)?.partitions ?? [];
    try {
      const ends = (await this.consumer.listOffsets({ topics: [topic] })).get(topic) ?? [];
      // Unassigned but idle while the group has records waiting: this member fell out of the group.
      const partitions = assigned.length > 0 ? assigned : ends.map((_end, p) => p);
      const committed = (await this.consumer.listCommittedOffsets({ topics: [{ topic, partitions }] })).get(topic) ?? [];
      const waiting = partitions.some((p) => {
        const from = (assigned.length > 0 ? this.owned.get(p)?.next : undefined) ?? committed[p] ?? -1n;
        return from >= 0n && (ends[p] ?? 0n) > from;
      });
      if (waiting && this.idleSince !== undefined) {
        this.o.logger?.warn({ topic, group: this.options.group }, 'Kafka consumer stopped receiving while records wait; reconnecting');
        this.stalled = true;
        this.wake();
      }
    } catch {
      // The broker is unreachable: the stream reports that itself.
    }
  }

  private nextDelayedIn(): number {
    let next = 1000;
    const now = Date.now();
    for (const h of this.held.values()) if (h.visibleAt !== 0) next = Math.min(next, Math.max(0, h.visibleAt - now));
    return next;
  }

  private sleep(ms: number, signals: Signals): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        for (const s of signals) s?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
      for (const s of signals) s?.addEventListener('abort', done, { once: true });
    });
  }

  private wake(): void {
    for (const wake of [...this.wakers]) wake();
  }
}

function attemptOf(record: Record): number {
  const value = Number(record.headers.get(attemptHeader));
  return Number.isInteger(value) && value > 0 ? value : 1;
}

function keyOf(record: Record): string {
  return `${record.partition}:${record.offset}`;
}

/** The client's key for a partition's read position. */
function fetchKey(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

/** The promise's outcome, or a rejection once `ms` have passed without one. */
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer from Kafka within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
