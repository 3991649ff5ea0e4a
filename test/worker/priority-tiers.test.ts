import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { LazySubscription } from '../../src/brokers/lazy-subscription.js';
import { openBroker } from '../../src/brokers/open-broker.js';
import { FairLanes } from '../../src/worker/fair-lanes.js';
import { inKafkaSuite, testBrokers } from '../helpers/paths.js';

// Priority tiers of FairLanes (docs/priorities.md): the order of takes is exact on brokers whose
// take reads the queue itself; on Kafka it depends on fetch timing, and the tiers are checked
// there end to end (test/gateway/priorities.test.ts).
describe.skipIf(inKafkaSuite).each(testBrokers)('priority tiers on the $name broker', ({ url }) => {
  const open: { broker: Broker; lanes: FairLanes }[] = [];
  afterEach(async () => {
    for (const { broker, lanes } of open.splice(0)) {
      await lanes.close();
      await broker.close();
    }
  });

  /** One lane per tier, `h` (tier 0), `n` (1) and `l` (2), on fresh topics, plus `m` beside `h` when asked. */
  async function setUp(agingTakes: number, extraHighLane = false) {
    const broker = await openBroker({ url, dataDir: mkdtempSync(join(tmpdir(), 'spillway-tiers-')), leaseMs: 5000 });
    const run = randomUUID().slice(0, 8);
    const topic = (name: string) => `tiers-${run}-${name}`;
    const sources = [
      { name: 'h', tier: 0 },
      ...(extraHighLane ? [{ name: 'm', tier: 0 }] : []),
      { name: 'n', tier: 1 },
      { name: 'l', tier: 2 },
    ];
    const lanes = new FairLanes(
      sources.map(({ name, tier }) => ({ name, tier, weight: 1, subscription: new LazySubscription(broker, { topic: topic(name), group: 'workers' }) })),
      { agingTakes },
    );
    open.push({ broker, lanes });
    let counts: Record<string, number> = {};
    const publish = async (name: string, n: number) => {
      const from = counts[name] ?? 0;
      counts = { ...counts, [name]: from + n };
      await broker.publish(
        topic(name),
        Array.from({ length: n }, (_, i) => ({ value: `${name}${from + i + 1}` })),
      );
    };
    return { broker, lanes, publish, topic };
  }

  async function take(lanes: FairLanes, max: number): Promise<string[]> {
    const got = await lanes.take(max, { timeoutMs: 10_000 });
    await Promise.all(got.map((d) => d.ack()));
    return got.map((d) => d.value);
  }

  async function takeOneByOne(lanes: FairLanes, n: number): Promise<string[]> {
    const order: string[] = [];
    for (let i = 0; i < n; i++) order.push(...(await take(lanes, 1)));
    return order;
  }

  it('serves the tiers strictly in order while aging is far off', async () => {
    const { lanes, publish } = await setUp(100);
    await publish('l', 3);
    await publish('n', 3);
    await publish('h', 3);
    expect(await takeOneByOne(lanes, 9)).toEqual(['h1', 'h2', 'h3', 'n1', 'n2', 'n3', 'l1', 'l2', 'l3']);
  });

  it('a high request overtakes a backlog of low ones', async () => {
    const { lanes, publish } = await setUp(100);
    await publish('l', 50);
    expect(await takeOneByOne(lanes, 3)).toEqual(['l1', 'l2', 'l3']);
    await publish('h', 1);
    expect(await takeOneByOne(lanes, 2)).toEqual(['h1', 'l4']);
  });

  it('fills a batch from the highest tier down, in turns within a tier', async () => {
    const { lanes, publish } = await setUp(100, true);
    await publish('l', 10);
    await publish('n', 2);
    await publish('h', 2);
    await publish('m', 2);
    expect(await take(lanes, 8)).toEqual(['h1', 'm1', 'h2', 'm2', 'n1', 'n2', 'l1', 'l2']);
  });

  it('ages: after agingTakes takes that never reached low, the next serves low first', async () => {
    const { lanes, publish } = await setUp(3);
    await publish('h', 20);
    await publish('l', 5);
    expect(await takeOneByOne(lanes, 12)).toEqual(['h1', 'h2', 'h3', 'l1', 'h4', 'h5', 'h6', 'l2', 'h7', 'h8', 'h9', 'l3']);
  });

  it('an aged tier gets at most half of a batch: the rest still goes in order', async () => {
    const { lanes, publish } = await setUp(2);
    await publish('h', 40);
    await publish('l', 10);
    expect(await take(lanes, 4)).toEqual(['h1', 'h2', 'h3', 'h4']);
    expect(await take(lanes, 4)).toEqual(['h5', 'h6', 'h7', 'h8']);
    expect(await take(lanes, 4)).toEqual(['l1', 'l2', 'h9', 'h10']);
    expect(await take(lanes, 4)).toEqual(['h11', 'h12', 'h13', 'h14']);
  });

  it('never starves a lower tier: under an endless high flood, normal and low are each served within agingTakes + 2 takes', async () => {
    const agingTakes = 4;
    const { lanes, publish } = await setUp(agingTakes);
    await publish('n', 40);
    await publish('l', 40);
    const lastServed = { n: 0, l: 0 };
    const longestGap = { n: 0, l: 0 };
    for (let t = 1; t <= 60; t++) {
      // The flood never lets up: there is always more high work than a take holds.
      await publish('h', 2);
      const got = await take(lanes, 2);
      expect(got).toHaveLength(2);
      for (const tier of ['n', 'l'] as const) {
        if (!got.some((v) => v.startsWith(tier))) continue;
        longestGap[tier] = Math.max(longestGap[tier], t - lastServed[tier]);
        lastServed[tier] = t;
      }
    }
    for (const tier of ['n', 'l'] as const) {
      expect(60 - lastServed[tier]).toBeLessThanOrEqual(agingTakes + 2);
      expect(longestGap[tier]).toBeLessThanOrEqual(agingTakes + 2);
    }
  });
});
