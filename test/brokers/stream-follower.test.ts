import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SubscriptionClosedError, type Broker, type SubscribeOptions, type Subscription } from '../../src/brokers/broker.js';
import { EmbeddedBroker } from '../../src/brokers/embedded/embedded-broker.js';
import { StreamFollower } from '../../src/brokers/stream-reader.js';

/** The broker, with every subscribe held until `open()` and every subscription and take counted. */
function gatedBroker(broker: Broker) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const subscriptions: Subscription[] = [];
  const counts = { takes: 0 };
  const gated = new Proxy(broker, {
    get(target, property) {
      if (property === 'subscribe') {
        return async (options: SubscribeOptions) => {
          await gate;
          const subscription = await target.subscribe(options);
          subscriptions.push(subscription);
          return {
            take: (...args: Parameters<Subscription['take']>) => {
              counts.takes += 1;
              return subscription.take(...args);
            },
            close: () => subscription.close(),
          } satisfies Subscription;
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { broker: gated, open, subscriptions, counts };
}

describe('stream follower', () => {
  let dir: string;
  let embedded: EmbeddedBroker;
  const seen: string[] = [];
  const follow = (broker: Broker, topic: string) =>
    new StreamFollower({
      broker,
      topic,
      group: 'follower',
      from: 'earliest',
      name: 'test follower',
      logger: pino({ level: 'silent' }),
      onValue: (value) => seen.push(value),
      awaitSubscribed: true,
    });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'spillway-stream-follower-'));
    embedded = EmbeddedBroker.open({ dataDir: dir });
    seen.length = 0;
  });
  afterEach(async () => {
    await embedded.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads each value until stopped', async () => {
    const follower = follow(embedded, 'follow.values');
    await follower.start();
    await embedded.publish('follow.values', [{ value: 'a' }, { value: 'b' }]);
    await expect.poll(() => seen).toEqual(['a', 'b']);
    await follower.stop();
    await embedded.publish('follow.values', [{ value: 'c' }]);
    await sleep(100);
    expect(seen).toEqual(['a', 'b']);
  });

  it('stopped while its start still joins the group, it closes the reader that start makes', async () => {
    const gated = gatedBroker(embedded);
    const follower = follow(gated.broker, 'follow.race');
    const starting = follower.start();
    const stopping = follower.stop();
    gated.open();
    await starting;
    await stopping;
    expect(gated.subscriptions).toHaveLength(1);
    await expect(gated.subscriptions[0]!.take(1)).rejects.toBeInstanceOf(SubscriptionClosedError);
    await expect(follower.start()).rejects.toThrow('test follower: stopped');
  });

  it('a reader whose subscription closed under it backs off instead of spinning on empty takes', async () => {
    const gated = gatedBroker(embedded);
    gated.open();
    const follower = follow(gated.broker, 'follow.closed');
    await follower.start();
    await gated.subscriptions[0]!.close();
    const before = gated.counts.takes;
    await sleep(500);
    // Backing off from 100 ms doubling: a handful of takes. Spinning never lets this line run.
    expect(gated.counts.takes - before).toBeLessThan(20);
    await follower.stop();
  });
});
