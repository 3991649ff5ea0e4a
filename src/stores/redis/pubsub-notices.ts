import type { PredictionRecord } from '../../protocol/prediction.js';
import { connectRedis, type Redis } from '../../redis/connect.js';
import type { RedisAddress } from '../../redis/redis-url.js';
import type { NoticeCarrier } from '../stored-notices.js';

/**
 * Carries stored notices to other processes over Redis pub/sub, on a channel under the key
 * prefix. A message carries the records themselves, not their ids: final records are a few
 * hundred bytes, and every gateway that hears a notice would otherwise read each record back,
 * one round trip per waiter, at the moment the store is busiest.
 *
 * Publishing goes over the store's own connection. Listening takes a connection of its own (a
 * subscribed connection runs no other commands), opened only while some listener of this
 * process wants notices from others, so a process that only writes holds one connection.
 * Pub/sub keeps nothing: a notice published while a subscriber is disconnected is lost, which
 * only leaves its waiters to their fallback read.
 *
 * A message is the sender's origin, a newline, and the records as JSON: a listener skips what
 * its own process sent (its threads heard it already) on those bytes, before decoding anything.
 */
export class PubSubNotices implements NoticeCarrier {
  private readonly subscriptions = new Set<Promise<void>>();

  constructor(
    private readonly publisher: Redis,
    private readonly address: RedisAddress,
    private readonly channel: string,
    private readonly commandTimeoutMs: number,
  ) {}

  send(origin: string, records: readonly PredictionRecord[]): void {
    this.publisher.publish(this.channel, `${origin}\n${JSON.stringify(records)}`).catch(() => {
      // Down or reconnecting: listeners elsewhere fall back to reading the store.
    });
  }

  watch(ownOrigin: string, deliver: (origin: string, records: readonly PredictionRecord[]) => void): () => void {
    const subscriber = connectRedis(this.address, { name: 'spillway-store-notices', commandTimeoutMs: this.commandTimeoutMs });
    subscriber.on('error', () => {
      // Reconnects on its own; what is published meanwhile is lost (see above).
    });
    // Subscribed on every 'ready', not once: with the offline queue off, a SUBSCRIBE sent before
    // the first connection would fail and never be retried. Subscribing twice is harmless.
    let markSubscribed: () => void = () => {};
    const subscribed = new Promise<void>((resolve) => (markSubscribed = resolve));
    const subscribe = () => {
      subscriber.subscribe(this.channel).then(markSubscribed, () => {
        // Dropped again before it answered; the next 'ready' subscribes.
      });
    };
    subscriber.on('ready', subscribe);
    if (subscriber.status === 'ready') subscribe();
    // Buffers, not strings: most of what a serving process hears is its own worker thread's
    // notices, which it drops on the origin's bytes without decoding the records.
    const ownPrefix = Buffer.from(`${ownOrigin}\n`);
    const channel = Buffer.from(this.channel);
    subscriber.on('messageBuffer', (heardOn: Buffer, message: Buffer) => {
      if (!heardOn.equals(channel)) return;
      if (message.subarray(0, ownPrefix.length).equals(ownPrefix)) return;
      const text = message.toString();
      const newline = text.indexOf('\n');
      if (newline === -1) return;
      let records: unknown;
      try {
        records = JSON.parse(text.slice(newline + 1));
      } catch {
        return; // not ours: another program on the same channel
      }
      if (Array.isArray(records)) deliver(text.slice(0, newline), records as PredictionRecord[]);
    });
    this.subscriptions.add(subscribed);
    return () => {
      this.subscriptions.delete(subscribed);
      subscriber.removeAllListeners('messageBuffer');
      subscriber.quit().catch(() => subscriber.disconnect());
    };
  }

  /**
   * Resolves once every watch started so far is subscribed, or rejects after the command
   * timeout: what `ping` waits for, so that a handle that answers ping hears what others
   * announce from then on.
   */
  async subscribed(): Promise<void> {
    if (this.subscriptions.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not subscribed to ${this.channel} within ${this.commandTimeoutMs} ms`)), this.commandTimeoutMs);
    });
    try {
      await Promise.race([Promise.all(this.subscriptions), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
