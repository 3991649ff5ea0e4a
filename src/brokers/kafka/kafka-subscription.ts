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

/** A record this consumer holds: taken (not yet done), or waiting to be taken again. */
interface Held {
  readonly record: Record;
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
 * - a rebalance: tracking starts afresh for the new generation and acks of records from an
 *   older one are ignored, so nothing is committed twice or for a partition now owned elsewhere.
 * - an ephemeral group commits nothing and disappears once its consumer leaves.
 */
export class KafkaSubscription implements Subscription {
  private consumer: Consumer<string, string, string, string>;
  private stream: MessagesStream<string, string, string, string> | undefined;
  private readonly tracker = new OffsetTracker();
  private readonly held = new Map<string, Held>();
  /** Per partition: one past the highest offset read from the stream. */
  private readonly readUpTo = new Map<number, bigint>();
  private idleSince: number | undefined;
  private stalled = false;
  private reconnecting: Promise<void> | undefined;
  private readonly watchdog: NodeJS.Timeout;
  private readonly wakers = new Set<() => void>();
  private readonly closing = new AbortController();
  private generation = -1;
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
    this.consumer.on('consumer:group:join', () => this.onRebalance());
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
    this.generation = this.consumer.generationId;
    this.o.logger?.debug(
      { topic: this.options.topic, group: this.options.group, generation: this.generation, assignments: this.consumer.assignments },
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
    this.readUpTo.clear();
    // Forced, so the old member stops heartbeating at once and cannot keep partitions nobody reads.
    const old = this.consumer;
    await within(5000, new Promise<void>((resolve) => old.close(true, () => resolve()))).catch(() => undefined);
    this.onRebalance();
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
      if (generationOf(record) !== this.generation) continue; // fetched before a rebalance
      const next = record.offset + 1n;
      if ((this.readUpTo.get(record.partition) ?? -1n) < next) this.readUpTo.set(record.partition, next);
      const h: Held = { record, attempt: attemptOf(record), visibleAt: 0 };
      this.held.set(keyOf(record), h);
      this.tracker.handedOut(record.partition, record.offset);
      out.push(this.delivery(h));
    }
    return out;
  }

  private delivery(h: Held): Delivery {
    const { record } = h;
    const generation = this.generation;
    return {
      topic: record.topic,
      position: record.headers.get(originHeader) ?? keyOf(record),
      key: record.key === '' || record.key === undefined ? undefined : record.key,
      headers: Object.fromEntries(record.headers),
      value: record.value,
      attempt: h.attempt,
      publishedAt: Number(record.timestamp),
      ack: () => this.done(record, generation),
      nack: async (delayMs = 0) => {
        if (generation !== this.generation || this.held.get(keyOf(record)) !== h) return;
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
    await this.done(record, this.generation);
  }

  /** Marks the record finished; resolves once a commit that includes that has been attempted. */
  private async done(record: Record, generation: number): Promise<void> {
    if (generation !== this.generation) return;
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

  private onRebalance(): void {
    this.o.logger?.debug({ topic: this.options.topic, group: this.options.group, generation: this.consumer.generationId, assignments: this.consumer.assignments }, 'Kafka rebalance');
    this.generation = this.consumer.generationId;
    this.tracker.retain(new Set());
    this.held.clear();
    this.wake();
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
        const from = (assigned.length > 0 ? this.readUpTo.get(p) : undefined) ?? committed[p] ?? -1n;
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

function generationOf(record: Record): number {
  const meta = record.metadata as { consumer?: { generationId?: number } };
  return meta.consumer?.generationId ?? -1;
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
