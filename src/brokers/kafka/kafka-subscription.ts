import { randomUUID } from 'node:crypto';
import { Consumer, stringDeserializers, type Message, type MessagesStream } from '@platformatic/kafka';
import type { Delivery, SubscribeOptions, Subscription, TakeOptions } from '../broker.js';
import { kafkaGroupId, type KafkaBrokerOptions } from './kafka-options.js';
import { OffsetTracker } from './offset-tracker.js';

type Record = Message<string, string, string, string>;
type Republish = (message: { topic: string; key?: string; value: string; headers: { [name: string]: string } }) => Promise<void>;

/** Headers a retried record carries: its attempt, its earliest redelivery, its first position. */
export const attemptHeader = 'spillway-attempt';
export const notBeforeHeader = 'spillway-not-before';
export const originHeader = 'spillway-origin';

/**
 * One consumer in the group, read in paused mode: records are read from the stream only when a
 * caller takes them, so while every slot is busy the stream's buffer fills and fetching stops.
 *
 * - ack: the offset is marked done; commits move to the lowest unfinished offset per partition.
 * - nack: the record is produced again with its attempt count raised (and a not-before time),
 *   then marked done: Kafka cannot hand one record back, so the retry goes to the partition's end.
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
  private readonly ready: Record[] = [];
  private readonly handedOut = new Map<string, Record>();
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
  }

  /** Joins the group and starts fetching; resolves once this consumer has its partitions. */
  async start(): Promise<void> {
    this.consumer.on('consumer:group:join', () => this.onRebalance());
    this.stream = await this.consumer.consume({
      topics: [this.options.topic],
      mode: 'committed',
      fallbackMode: this.options.from === 'latest' ? 'latest' : 'earliest',
      autocommit: false,
      highWaterMark: 256,
    });
    this.generation = this.consumer.generationId;
    this.stream.on('readable', () => this.wake());
    this.stream.on('error', () => this.wake());
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
   */
  private async reconnect(): Promise<void> {
    try {
      await this.consumer.close();
    } catch {
      // The old consumer's connections are gone already.
    }
    this.onRebalance();
    this.consumer = this.newConsumer();
    await this.start();
  }

  async take(max: number, options: TakeOptions = {}): Promise<Delivery[]> {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`take(max) needs a positive integer, got ${max}`);
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    const signals = [options.signal, this.closing.signal];
    for (;;) {
      if (signals.some((s) => s?.aborted === true)) return [];
      if (this.stream?.destroyed === true) await this.reconnect();
      const taken = this.takeReady(max);
      if (taken.length > 0) return taken;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return [];
      await this.sleep(Math.min(remaining, this.nextDelayedIn()), signals);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    // Unfinished records go back to the group with their attempt raised, like a lease running out.
    const unfinished = [...this.handedOut.values()];
    await Promise.allSettled(unfinished.map((r) => this.retry(r, 0)));
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
    const waiting: Record[] = [];
    while (out.length < max) {
      const record = this.ready.shift() ?? (this.stream?.read() as Record | null) ?? undefined;
      if (record === undefined) break;
      if (generationOf(record) !== this.generation) continue; // fetched before a rebalance
      const key = `${record.partition}:${record.offset}`;
      if (!this.handedOut.has(key)) this.tracker.handedOut(record.partition, record.offset);
      this.handedOut.set(key, record);
      if (notBefore(record) > now) waiting.push(record);
      else out.push(this.delivery(record));
    }
    // Retries not yet due wait here; they count as handed out so no commit passes them.
    this.ready.push(...waiting);
    return out;
  }

  private delivery(record: Record): Delivery {
    const generation = this.generation;
    return {
      topic: record.topic,
      position: record.headers.get(originHeader) ?? `${record.partition}:${record.offset}`,
      key: record.key === '' || record.key === undefined ? undefined : record.key,
      headers: Object.fromEntries(record.headers),
      value: record.value,
      attempt: attemptOf(record),
      publishedAt: Number(record.timestamp),
      ack: () => this.done(record, generation),
      nack: async (delayMs = 0) => {
        if (generation !== this.generation) return;
        await this.retry(record, delayMs);
      },
    };
  }

  private async retry(record: Record, delayMs: number): Promise<void> {
    const headers = Object.fromEntries(record.headers);
    headers[attemptHeader] = String(attemptOf(record) + 1);
    headers[notBeforeHeader] = String(Date.now() + delayMs);
    headers[originHeader] ??= `${record.partition}:${record.offset}`;
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
    this.handedOut.delete(`${record.partition}:${record.offset}`);
    this.tracker.done(record.partition, record.offset);
    if (this.options.ephemeral !== true) await this.commit().catch(() => undefined);
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
    this.generation = this.consumer.generationId;
    this.tracker.retain(new Set());
    this.handedOut.clear();
    this.ready.length = 0;
    this.wake();
  }

  private nextDelayedIn(): number {
    let next = 1000;
    const now = Date.now();
    for (const r of this.ready) next = Math.min(next, Math.max(0, notBefore(r) - now));
    return next;
  }

  private sleep(ms: number, signals: readonly (AbortSignal | undefined)[]): Promise<void> {
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

function notBefore(record: Record): number {
  const value = Number(record.headers.get(notBeforeHeader));
  return Number.isFinite(value) ? value : 0;
}

function generationOf(record: Record): number {
  const meta = record.metadata as { consumer?: { generationId?: number } };
  return meta.consumer?.generationId ?? -1;
}
