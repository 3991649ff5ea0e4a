import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Broker, Delivery } from '../../src/brokers/broker.js';
import { LazySubscription } from '../../src/brokers/lazy-subscription.js';
import { openBroker } from '../../src/brokers/open-broker.js';
import { FairLanes } from '../../src/worker/fair-lanes.js';
import { inKafkaSuite, testBrokers } from '../helpers/paths.js';

// The turn order is exact on brokers whose take reads the queue itself. Kafka's take reads what
// its consumer has fetched so far, so which lane looks empty depends on fetch timing there; the
// lanes themselves are checked on Kafka end to end (test/gateway/fair-queuing.test.ts).
describe.skipIf(inKafkaSuite).each(testBrokers)('fair lanes on the $name broker', ({ url }) => {
  const open: { broker: Broker; lanes: FairLanes[] }[] = [];
  afterEach(async () => {
    for (const { broker, lanes } of open.splice(0)) {
      await Promise.all(lanes.map((l) => l.close()));
      await broker.close();
    }
  });

  /** Lanes named by tenant on fresh topics, with the shared lane first, as a worker builds them. */
  async function setUp(weights: Record<string, number>) {
    const broker = await openBroker({ url, dataDir: mkdtempSync(join(tmpdir(), 'spillway-lanes-')), leaseMs: 5000 });
    const run = randomUUID().slice(0, 8);
    const topic = (name: string) => `lanes-${run}-${name}`;
    const names = ['shared', ...Object.keys(weights)];
    const make = () =>
      new FairLanes(
        names.map((name) => ({
          name,
          weight: weights[name] ?? 1,
          subscription: new LazySubscription(broker, { topic: topic(name), group: 'workers' }),
        })),
      );
    const entry = { broker, lanes: [make()] };
    open.push(entry);
    const publish = (name: string, n: number) =>
      broker.publish(
        topic(name),
        Array.from({ length: n }, (_, i) => ({ value: `${name}${i + 1}` })),
      );
    const another = () => {
      const lanes = make();
      entry.lanes.push(lanes);
      return lanes;
    };
    return { broker, lanes: entry.lanes[0] as FairLanes, publish, another, topic };
  }

  async function takeOneByOne(lanes: FairLanes, n: number): Promise<string[]> {
    const order: string[] = [];
    for (let i = 0; i < n; i++) {
      const [d] = await lanes.take(1, { timeoutMs: 10_000 });
      if (d === undefined) break;
      order.push(d.value);
      await d.ack();
    }
    return order;
  }

  it('takes from waiting lanes in weighted turns, and an idle lane saves up nothing', async () => {
    const { lanes, publish } = await setUp({ a: 1, b: 3 });
    await publish('a', 12);
    await publish('b', 12);
    expect(await takeOneByOne(lanes, 12)).toEqual(['a1', 'b1', 'b2', 'b3', 'a2', 'b4', 'b5', 'b6', 'a3', 'b7', 'b8', 'b9']);
    // b runs dry: a gets every slot b leaves free.
    expect(await takeOneByOne(lanes, 4)).toEqual(['a4', 'b10', 'b11', 'b12']);
    expect(await takeOneByOne(lanes, 8)).toEqual(['a5', 'a6', 'a7', 'a8', 'a9', 'a10', 'a11', 'a12']);
  });

  it("a request in a quiet lane goes ahead of a flooded lane's backlog", async () => {
    const { lanes, publish } = await setUp({ a: 1, b: 1 });
    await publish('a', 50);
    expect(await takeOneByOne(lanes, 3)).toEqual(['a1', 'a2', 'a3']);
    await publish('b', 1);
    const next = await takeOneByOne(lanes, 2);
    expect(next).toContain('b1');
  });

  it('fills a batch across lanes in turns', async () => {
    const { lanes, publish } = await setUp({ a: 1, b: 2 });
    await publish('a', 10);
    await publish('b', 10);
    await publish('shared', 10);
    // Rounds of shared 1, a 1, b 2: two full rounds and the first of a third.
    const batch = await lanes.take(9, { timeoutMs: 10_000 });
    const count = (prefix: string) => batch.filter((d) => d.value.startsWith(prefix)).length;
    expect(batch).toHaveLength(9);
    expect([count('shared'), count('a'), count('b')]).toEqual([3, 2, 4]);
    await Promise.all(batch.map((d) => d.ack()));
  });

  it('waits while every lane is empty, and never takes more than the takes waiting ask for', async () => {
    const { broker, lanes, publish, topic } = await setUp({ a: 1, b: 1 });
    const answered: Delivery[][] = [];
    const waiting = [lanes.take(1), lanes.take(1), lanes.take(1)].map((p) =>
      p.then((got) => {
        answered.push(got);
        return got;
      }),
    );
    await publish('a', 1);
    await publish('b', 1);
    await vi.waitFor(() => expect(answered).toHaveLength(2), { timeout: 10_000 });
    // Two requests for three waiting takes: two are answered, one with each; the third waits on.
    expect(answered.flat().map((d) => d.value).sort()).toEqual(['a1', 'b1']);
    await Promise.all(answered.flat().map((d) => d.ack()));
    await publish('shared', 1);
    await Promise.all(waiting);
    // Nothing was taken ahead: the third take gets the next request and nothing else.
    expect(answered[2]?.map((d) => d.value)).toEqual(['shared1']);
    await Promise.all(answered[2]!.map((d) => d.ack()));
    for (const name of ['shared', 'a', 'b']) expect(await broker.backlog(topic(name), 'workers')).toBe(0);
  });

  it('gives up after its timeout or an abort with nothing taken, and close returns what it held', async () => {
    const { broker, lanes, publish, another, topic } = await setUp({ a: 1 });
    expect(await lanes.take(2, { timeoutMs: 100 })).toEqual([]);
    const controller = new AbortController();
    const pending = lanes.take(1, { signal: controller.signal });
    controller.abort();
    expect(await pending).toEqual([]);
    await publish('a', 2);
    const [held] = await lanes.take(1, { timeoutMs: 10_000 });
    expect(held?.value).toBe('a1');
    await lanes.close();
    // Closed without an ack: a1 goes back to the group, and another reader takes both.
    const other = another();
    const values: string[] = [];
    while (values.length < 2) {
      for (const d of await other.take(2, { timeoutMs: 10_000 })) {
        values.push(d.value);
        await d.ack();
      }
    }
    expect(values.sort()).toEqual(['a1', 'a2']);
    expect(await broker.backlog(topic('a'), 'workers')).toBe(0);
  });
  it('waits without a timeout by watching, not by sweeping the lanes again and again', async () => {
    const { lanes, publish } = await setUp({ a: 1 });
    const sweeps = vi.spyOn(lanes as unknown as { sweep: (...args: unknown[]) => unknown }, 'sweep');
    const taken = lanes.take(1);
    // Idle for a while: a take with no timeout must not wake up on its own in the meantime.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const whileIdle = sweeps.mock.calls.length;
    await publish('a', 1);
    const [d] = await taken;
    expect(d?.value).toBe('a1');
    expect(whileIdle).toBeLessThanOrEqual(2);
  });
});
