import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Broker, Delivery } from './broker.js';
import { LazySubscription } from './lazy-subscription.js';

export interface StreamReaderOptions {
  readonly name: string;
  readonly subscription: LazySubscription;
  /** Handles a batch; it acks or nacks each delivery itself. A throw nacks the whole batch. */
  readonly handle: (deliveries: readonly Delivery[]) => Promise<void>;
  readonly batchSize: number;
  readonly logger: Logger;
  /**
   * After a batch smaller than batchSize, wait this long before taking again (default 0): a
   * reader that may lag (a tap) then reads in fewer, fuller batches, each one take and one ack
   * on the broker, rather than one per message as they come.
   */
  readonly lingerMs?: number;
}

/**
 * A reader of a stream in its own consumer group (response readers, heartbeat readers): it
 * pulls batches until stopped and keeps going through broker errors with a capped backoff.
 */
export class StreamReader {
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly o: StreamReaderOptions) {}

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    await this.o.subscription.close();
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      let batch: Delivery[] = [];
      try {
        const subscription = await this.o.subscription.get();
        batch = await subscription.take(this.o.batchSize, { signal });
        if (batch.length > 0) await this.o.handle(batch);
        failures = 0;
        const linger = this.o.lingerMs ?? 0;
        if (linger > 0 && batch.length < this.o.batchSize) await sleep(linger, undefined, { signal }).catch(() => undefined);
      } catch (error) {
        failures += 1;
        const delay = Math.min(5000, 50 * 2 ** failures);
        this.o.logger.error({ err: error, reader: this.o.name, retry_in_ms: delay }, `${this.o.name}: read failed`);
        await Promise.all(batch.map((d) => d.nack(delay).catch(() => undefined)));
        await sleep(delay, undefined, { signal }).catch(() => undefined);
      }
    }
  }
}

export interface FollowOptions {
  readonly broker: Broker;
  readonly topic: string;
  readonly group: string;
  readonly from: 'earliest' | 'latest';
  readonly name: string;
  readonly logger: Logger;
  readonly onValue: (value: string) => void;
  /**
   * start() resolves only once subscribed, so nothing published afterwards is missed (and fails
   * if the broker cannot be reached). Otherwise the reader subscribes when it can, as readers
   * that must not hold up a process's start do.
   */
  readonly awaitSubscribed?: boolean;
}

/**
 * A stream read for information only, in an ephemeral group of this process's own: each value is
 * handed to `onValue` and acked, whatever it holds (heartbeats, results counted by a meter).
 *
 * start() begins reading (again after a start that failed); stop() ends it for good, and waits
 * for a start still joining its group so that the reader it makes is stopped too. A reader left
 * running past its owner's stop would outlive the broker it reads, so the owner must not be able
 * to race the two.
 */
export class StreamFollower {
  private starting: Promise<StreamReader> | undefined;
  private stopped = false;

  constructor(private readonly o: FollowOptions) {}

  start(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error(`${this.o.name}: stopped`));
    this.starting ??= this.open().catch((error: unknown) => {
      this.starting = undefined;
      throw error;
    });
    return this.starting.then(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const reader = await this.starting?.catch(() => undefined);
    await reader?.stop();
  }

  private async open(): Promise<StreamReader> {
    const { o } = this;
    const subscription = new LazySubscription(o.broker, { topic: o.topic, group: o.group, from: o.from, ephemeral: true });
    if (o.awaitSubscribed === true) await subscription.get();
    return new StreamReader({
      name: o.name,
      subscription,
      batchSize: 256,
      logger: o.logger,
      handle: async (deliveries) => {
        for (const d of deliveries) o.onValue(d.value);
        await Promise.all(deliveries.map((d) => d.ack()));
      },
    }).start();
  }
}
