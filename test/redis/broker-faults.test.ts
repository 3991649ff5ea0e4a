import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { openBroker } from '../../src/brokers/open-broker.js';
import { SpillwayError } from '../../src/protocol/errors.js';
import { startOwnRedis, type TestRedis } from './redis-server.js';

/** What a call does while Redis is down: how it ended and how long it took. */
async function outcome(call: () => Promise<unknown>): Promise<{ code: string | undefined; ms: number }> {
  const started = Date.now();
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  return { code: error instanceof SpillwayError ? error.code : String(error), ms: Date.now() - started };
}

// A server of its own whatever SPILLWAY_TEST_REDIS says: these tests stop it.
describe('redis broker while Redis is down', () => {
  let server: TestRedis;
  let broker: Broker;

  beforeAll(async () => {
    server = await startOwnRedis();
    broker = await openBroker({ url: server.url, dataDir: '' });
  });
  afterAll(async () => {
    await broker.close();
    server.stop();
  });

  it('publish, subscribe, backlog and ping reject promptly with SPILLWAY_BROKER_UNAVAILABLE; take waits and resumes', async () => {
    const t = `t.${randomUUID()}`;
    await broker.publish(t, [{ value: 'before' }]);
    const sub = await broker.subscribe({ topic: t, group: 'g' });
    const [before] = await sub.take(1);
    await before!.ack();

    server.stop();
    const pendingTake = sub.take(1, { timeoutMs: 20_000 });
    for (const call of [
      () => broker.publish(t, [{ value: 'lost' }]),
      () => broker.subscribe({ topic: t, group: 'other' }),
      () => broker.backlog(t, 'g'),
      () => broker.ping(),
    ]) {
      const { code, ms } = await outcome(call);
      expect(code).toBe('SPILLWAY_BROKER_UNAVAILABLE');
      expect(ms).toBeLessThan(3000);
    }

    await server.start();
    // Back: the broker's connections come back by themselves, and the waiting take gets new work.
    let published = false;
    for (let i = 0; i < 50 && !published; i++) {
      published = await broker.publish(t, [{ value: 'after' }]).then(
        () => true,
        () => false,
      );
      if (!published) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(published).toBe(true);
    const got = await pendingTake;
    expect(got.map((d) => d.value)).toEqual(['after']);
    await got[0]!.ack();
    await sub.close();
  });

  it('an unreachable Redis at open does not throw; ping says where and what', async () => {
    const down = await startOwnRedis();
    down.stop();
    const unreachable = await openBroker({ url: down.url, dataDir: '' });
    const error = await unreachable.ping().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpillwayError);
    expect((error as SpillwayError).message).toContain(`Redis at 127.0.0.1:${down.port}`);
    await unreachable.close();
  });
});
