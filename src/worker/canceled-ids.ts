import type { Logger } from 'pino';
import type { Broker, Delivery } from '../brokers/broker.js';
import { LazySubscription } from '../brokers/lazy-subscription.js';
import { StreamReader } from '../brokers/stream-reader.js';
import { controlRetentionMs, decodeCancelNotice } from '../protocol/control.js';
import { workerControlGroup } from '../protocol/topics.js';

type Watch = (id: string) => void;

/**
 * The predictions canceled recently, as heard on the control topic. Bounded: past `max` ids the
 * oldest is forgotten, and an id is forgotten when the topic itself would have dropped its notice.
 */
export class CanceledIds {
  /** id → when to forget it; a Map keeps insertion order, so the oldest comes first. */
  private readonly ids = new Map<string, number>();
  private readonly watches = new Set<Watch>();

  constructor(
    private readonly max = 100_000,
    private readonly ttlMs = controlRetentionMs,
  ) {}

  has(id: string, now = Date.now()): boolean {
    const until = this.ids.get(id);
    return until !== undefined && until > now;
  }

  add(id: string, canceledAt: number, now = Date.now()): void {
    const until = canceledAt + this.ttlMs;
    if (until <= now || this.ids.has(id)) return;
    this.ids.set(id, until);
    for (const [oldest, expires] of this.ids) {
      if (this.ids.size <= this.max && expires > now) break;
      this.ids.delete(oldest);
    }
    for (const watch of [...this.watches]) watch(id);
  }

  /** Calls `watch` with each id canceled from now on, until the returned function is called. */
  watch(watch: Watch): () => void {
    this.watches.add(watch);
    return () => this.watches.delete(watch);
  }
}

/**
 * Reads the control topic in a group of this worker's own, from the oldest notice kept, so a
 * worker started after a cancel still knows of it. Resolves once what was on the topic at start
 * has been read (best effort: at most `catchUpMs`), so the models start taking work only then.
 */
export async function startCancelReader(o: {
  broker: Broker;
  topic: string;
  workerId: string;
  canceled: CanceledIds;
  logger: Logger;
  catchUpMs?: number;
}): Promise<StreamReader> {
  const subscription = new LazySubscription(o.broker, {
    topic: o.topic,
    group: workerControlGroup(o.workerId),
    from: 'earliest',
    ephemeral: true,
  });
  const handle = async (deliveries: readonly Delivery[]) => {
    for (const d of deliveries) {
      const notice = decodeCancelNotice(d.value);
      if (notice !== undefined) o.canceled.add(notice.id, Date.parse(notice.canceled_at) || d.publishedAt);
    }
    await Promise.all(deliveries.map((d) => d.ack()));
  };
  try {
    // Kafka would create the topic on first use with its default retention; ours comes first.
    await o.broker.ensureTopic(o.topic, { retentionMs: controlRetentionMs });
    const until = Date.now() + (o.catchUpMs ?? 5000);
    const first = await subscription.get();
    while (Date.now() < until) {
      const batch = await first.take(512, { timeoutMs: 100 });
      if (batch.length === 0) break;
      await handle(batch);
    }
  } catch (error) {
    o.logger.warn({ err: error }, 'could not read past cancels; the reader keeps trying');
  }
  return new StreamReader({ name: 'cancel reader', subscription, batchSize: 512, logger: o.logger, handle }).start();
}
