import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Broker, Delivery, Subscription } from '../../src/brokers/broker.js';
import { openBroker } from '../../src/brokers/open-broker.js';
import { testKafkaUrl as url } from '../helpers/paths.js';

let broker: Broker;
beforeAll(async () => {
  broker = await openBroker({ url, dataDir: '', leaseMs: 2000, kafka: { partitions: 3 } });
});
afterAll(async () => broker.close());

/** Takes from every subscription until `count` distinct values are seen, counting `seen` (or 60 s pass). */
async function drain(subs: Subscription[], count: number, seen = new Set<string>()): Promise<Set<string>> {
  const deadline = Date.now() + 60_000;
  await Promise.all(
    subs.map(async (sub) => {
      while (seen.size < count && Date.now() < deadline) {
        const got = await sub.take(16, { timeoutMs: 300 });
        for (const d of got) seen.add(d.value);
        await Promise.all(got.map((d) => d.ack()));
      }
    }),
  );
  return seen;
}

it('a member that keeps a partition without a commit across a rebalance reads on from where it was', async () => {
  // The client keeps its own read position for a partition with no committed offset; records it
  // had buffered before the rebalance used to be dropped as stale, so that partition was never
  // read again (CI saw 125 of 200 in the conformance suite's shared-group test).
  const topic = `rebalance-${randomUUID()}`;
  const count = 300;
  await broker.publish(topic, Array.from({ length: count }, (_, i) => ({ key: String(i % 12), value: String(i) })));
  const first = await broker.subscribe({ topic, group: 'g' });
  // One record taken and left open: the first member has fetched, so its buffer holds records of
  // every partition, and nothing is committed yet.
  const [held] = await first.take(1, { timeoutMs: 20_000 });
  expect(held).toBeDefined();
  const others = await Promise.all([1, 2].map(() => broker.subscribe({ topic, group: 'g' })));
  // The open record is taken again only if its partition moved to another member.
  const seen = await drain([first, ...others], count, new Set([(held as Delivery).value]));
  await (held as Delivery).ack();
  expect(seen.size).toBe(count);
  await Promise.all([first, ...others].map((s) => s.close()));
});

it('nothing is skipped when members join and leave while every record is still open', async () => {
  const topic = `rebalance-${randomUUID()}`;
  const count = 300;
  await broker.publish(topic, Array.from({ length: count }, (_, i) => ({ key: String(i % 12), value: String(i) })));
  const a = await broker.subscribe({ topic, group: 'g' });
  const open: Delivery[] = await a.take(50, { timeoutMs: 20_000 });
  expect(open.length).toBeGreaterThan(0);
  const b = await broker.subscribe({ topic, group: 'g' });
  open.push(...(await b.take(50, { timeoutMs: 2000 })));
  await b.close(); // hands its open records back to the group
  const c = await broker.subscribe({ topic, group: 'g' });
  const seen = await drain([a, c], count, new Set(open.map((d) => d.value)));
  await Promise.all(open.map((d) => d.ack()));
  expect(seen.size).toBe(count);
  await Promise.all([a.close(), c.close()]);
});
