import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SubscriptionClosedError, type Broker, type Delivery, type QueuePlace, type Subscription } from '../../src/brokers/broker.js';
import { until } from '../helpers/until.js';

export interface BrokerHarness {
  /** Opens a new client on the same backing store or server each time. */
  open(): Promise<Broker>;
  /** What a separate process passes to openBroker() to reach the same broker. */
  readonly url: string;
  readonly dataDir: string;
  /** Short lease so expiry tests run quickly. */
  readonly leaseMs: number;
}

const fixture = new URL('../fixtures/take-and-hang.mjs', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const values = (ds: readonly Delivery[]) => ds.map((d) => d.value);

async function takeAll(subscription: Subscription, count: number, timeoutMs = 10_000): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) {
    out.push(...(await subscription.take(count - out.length, { timeoutMs: deadline - Date.now() })));
  }
  return out;
}

/** The behaviour every broker adapter must show, run unchanged against each of them. */
export function describeBrokerConformance(name: string, harness: () => BrokerHarness): void {
  describe(`broker conformance: ${name}`, () => {
    let h: BrokerHarness;
    let broker: Broker;
    const topic = () => `conf.${randomUUID()}`;

    beforeAll(async () => {
      h = harness();
      broker = await h.open();
    });
    afterAll(async () => {
      await broker.close();
    });

    it('creates topics idempotently', async () => {
      const t = topic();
      await broker.ensureTopic(t);
      await broker.ensureTopic(t, { retentionMs: 60_000 });
      await broker.publish(t, [{ value: 'x' }]);
      const sub = await broker.subscribe({ topic: t, group: 'g' });
      expect(values(await sub.take(1))).toEqual(['x']);
      await sub.close();
    });

    it('delivers a published message with its key, headers, value and first attempt', async () => {
      const t = topic();
      const before = Date.now();
      await broker.publish(t, [{ key: 'k1', headers: { 'spillway-id': 'a' }, value: '{"n":1}' }]);
      const sub = await broker.subscribe({ topic: t, group: 'g' });
      const [d, ...rest] = await sub.take(10);
      expect(rest).toEqual([]);
      expect(d).toMatchObject({ topic: t, key: 'k1', headers: { 'spillway-id': 'a' }, value: '{"n":1}', attempt: 1 });
      expect(d!.publishedAt).toBeGreaterThanOrEqual(before - 1000);
      await d!.ack();
      await sub.close();
    });

    it('keeps order within a key and never hands out more than asked', async () => {
      const t = topic();
      await broker.publish(
        t,
        Array.from({ length: 10 }, (_, i) => ({ key: 'same', value: String(i) })),
      );
      const sub = await broker.subscribe({ topic: t, group: 'g' });
      const first = await sub.take(4);
      expect(first.length).toBeLessThanOrEqual(4);
      const rest = await takeAll(sub, 10 - first.length);
      const all = [...first, ...rest];
      expect(values(all)).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
      await Promise.all(all.map((d) => d.ack()));
      await sub.close();
    });

    it('take waits for a message published later', async () => {
      const t = topic();
      const sub = await broker.subscribe({ topic: t, group: 'g' });
      const pending = sub.take(5);
      await sleep(100);
      await broker.publish(t, [{ value: 'late' }]);
      const got = await pending;
      expect(values(got)).toEqual(['late']);
      await got[0]!.ack();
      await sub.close();
    });

    it('take returns nothing after its timeout or when aborted', async () => {
      const t = topic();
      const sub = await broker.subscribe({ topic: t, group: 'g' });
      expect(await sub.take(1, { timeoutMs: 50 })).toEqual([]);
      const controller = new AbortController();
      const pending = sub.take(1, { signal: controller.signal });
      controller.abort();
      expect(await pending).toEqual([]);
      await sub.close();
    });

    it('close ends a waiting take with nothing, and a take after close rejects', async () => {
      const t = topic();
      const sub = await broker.subscribe({ topic: t, group: 'g' });
      const waiting = sub.take(1);
      await sleep(50);
      await sub.close();
      expect(await waiting).toEqual([]);
      // Not []: a reader loop that outlived its subscription would spin on empty takes.
      await expect(sub.take(1)).rejects.toBeInstanceOf(SubscriptionClosedError);
      await expect(sub.take(1, { timeoutMs: 0 })).rejects.toBeInstanceOf(SubscriptionClosedError);
    });

    it('gives every group its own copy of the stream', async () => {
      const t = topic();
      const a = await broker.subscribe({ topic: t, group: 'a' });
      const b = await broker.subscribe({ topic: t, group: 'b' });
      await broker.publish(t, [{ value: '1' }, { value: '2' }, { value: '3' }]);
      const fromA = await takeAll(a, 3);
      const fromB = await takeAll(b, 3);
      expect(values(fromA).sort()).toEqual(['1', '2', '3']);
      expect(values(fromB).sort()).toEqual(['1', '2', '3']);
      await Promise.all([...fromA, ...fromB].map((d) => d.ack()));
      await Promise.all([a.close(), b.close()]);
    });

    it('shares a group between subscribers: each message goes to one of them', async () => {
      const t = topic();
      const count = 200;
      await broker.publish(
        t,
        Array.from({ length: count }, (_, i) => ({ key: String(i % 8), value: String(i) })),
      );
      const subs = await Promise.all([1, 2, 3].map(() => broker.subscribe({ topic: t, group: 'shared' })));
      const seen: string[] = [];
      // Everyone keeps taking until all are seen: on Kafka, members join one by one and the
      // partitions move between them meanwhile.
      const deadline = Date.now() + 30_000;
      await Promise.all(
        subs.map(async (sub) => {
          while (seen.length < count && Date.now() < deadline) {
            const got = await sub.take(7, { timeoutMs: 500 });
            seen.push(...values(got));
            await Promise.all(got.map((d) => d.ack()));
          }
        }),
      );
      expect(seen.length).toBe(count);
      expect(new Set(seen).size).toBe(count);
      await Promise.all(subs.map((s) => s.close()));
    });

    it('starts a new group at the end of the topic when asked for latest', async () => {
      const t = topic();
      await broker.publish(t, [{ value: 'old' }]);
      const sub = await broker.subscribe({ topic: t, group: 'late', from: 'latest' });
      await broker.publish(t, [{ value: 'new' }]);
      const got = await takeAll(sub, 1);
      expect(values(got)).toEqual(['new']);
      expect(await sub.take(1, { timeoutMs: 200 })).toEqual([]);
      await got[0]!.ack();
      await sub.close();
    });

    it('an ephemeral group reads from now on, redelivers what it nacks, and stops at ack', async () => {
      const t = topic();
      await broker.publish(t, [{ value: 'before' }]);
      const sub = await broker.subscribe({ topic: t, group: `eph-${randomUUID()}`, from: 'latest', ephemeral: true });
      await broker.publish(t, [{ value: 'after' }]);
      const [first] = await takeAll(sub, 1);
      expect(first).toMatchObject({ value: 'after', attempt: 1 });
      await first!.nack();
      const [again] = await takeAll(sub, 1);
      expect(again).toMatchObject({ value: 'after', attempt: 2 });
      await again!.ack();
      expect(await sub.take(1, { timeoutMs: 100 })).toEqual([]);
      await sub.close();
    });

    it('a sole reader redelivers what it nacks and, once reopened, resumes after what it acked', async () => {
      const t = topic();
      const group = `sole-${randomUUID()}`;
      await broker.publish(t, ['a', 'b', 'c'].map((value) => ({ key: 'k', value })));
      const first = await broker.subscribe({ topic: t, group, soleReader: true });
      const taken = await takeAll(first, 3);
      expect(values(taken)).toEqual(['a', 'b', 'c']);
      await taken[2]!.nack();
      const [again] = await takeAll(first, 1);
      expect(again).toMatchObject({ value: 'c', attempt: 2 });
      await taken[0]!.ack();
      await again!.ack();
      // b is still taken and not acked when the reader stops: the next one must see it again.
      await first.close();
      await broker.publish(t, [{ key: 'k', value: 'd' }]);
      const second = await broker.subscribe({ topic: t, group, soleReader: true });
      // What came after b may come again (at least once): c is allowed, a is not, b and d must come.
      const resumed: Delivery[] = [];
      const deadline = Date.now() + 10_000;
      while (!(values(resumed).includes('b') && values(resumed).includes('d')) && Date.now() < deadline) {
        resumed.push(...(await second.take(10, { timeoutMs: 1000 })));
      }
      expect(values(resumed)).toContain('b');
      expect(values(resumed)).toContain('d');
      for (const v of values(resumed)) expect(['b', 'c', 'd']).toContain(v);
      await Promise.all(resumed.map((d) => d.ack()));
      await second.close();
    });

    it('a sole reader group keeps messages it has not read while other groups ack them', async () => {
      const t = topic();
      const group = `sole-${randomUUID()}`;
      const sole = await broker.subscribe({ topic: t, group, soleReader: true });
      await sole.close();
      await broker.publish(t, [{ value: 'kept' }]);
      const other = await broker.subscribe({ topic: t, group: 'g' });
      const [d] = await takeAll(other, 1);
      await d!.ack();
      await other.close();
      const reopened = await broker.subscribe({ topic: t, group, soleReader: true });
      expect(values(await takeAll(reopened, 1))).toEqual(['kept']);
      await reopened.close();
    });

    it('an acked message is not delivered again, even after the lease would have run out', async () => {
      const t = topic();
      await broker.publish(t, [{ value: 'once' }]);
      const sub = await broker.subscribe({ topic: t, group: 'g', leaseMs: h.leaseMs });
      const [d] = await sub.take(1);
      await d!.ack();
      expect(await sub.take(1, { timeoutMs: h.leaseMs * 2 })).toEqual([]);
      await sub.close();
    });

    it("a worker's hand-off publishes its results and acks the requests they answer, and no other", async () => {
      const requests = topic();
      const results = topic();
      await broker.publish(requests, [{ value: 'r1' }, { value: 'r2' }, { value: 'r3' }]);
      const sub = await broker.subscribe({ topic: requests, group: 'workers', leaseMs: h.leaseMs });
      const taken = await takeAll(sub, 3);
      expect(values(taken)).toEqual(['r1', 'r2', 'r3']);
      await broker.publishAndAck(results, [{ key: 'a', value: 'done r1' }, { value: 'done r2' }], taken.slice(0, 2));
      const reader = await broker.subscribe({ topic: results, group: 'readers' });
      expect((await takeAll(reader, 2)).map((d) => [d.key, d.value])).toEqual([['a', 'done r1'], [undefined, 'done r2']]);
      await reader.close();
      // r3 was neither acked nor handed off: the next subscriber of the group gets it, and only it.
      await sub.close();
      const next = await broker.subscribe({ topic: requests, group: 'workers', leaseMs: h.leaseMs });
      const [again] = await takeAll(next, 1);
      expect(again).toMatchObject({ value: 'r3', attempt: 2 });
      // A hand-off with no results (a step that only handed work on) still acks.
      await broker.publishAndAck(results, [], [again!]);
      expect(await next.take(1, { timeoutMs: h.leaseMs * 2 })).toEqual([]);
      expect(await broker.backlog(requests, 'workers')).toBe(0);
      await next.close();
    });

    it('keeps the order a client asked for across publishes and hand-offs not awaited in between', async () => {
      // A worker publishes a `running` record without waiting, then its result: they must land in that order.
      const t = topic();
      const requests = topic();
      await broker.publish(requests, [{ value: 'r' }]);
      const sub = await broker.subscribe({ topic: requests, group: 'workers' });
      const taken = await takeAll(sub, 1);
      const same = { key: 'one-id' };
      await Promise.all([
        broker.publish(t, [{ ...same, value: 'running' }]),
        broker.publishAndAck(t, [{ ...same, value: 'succeeded' }], taken),
        broker.publish(t, [{ ...same, value: 'after 1' }, { ...same, value: 'after 2' }]),
        broker.publish(t, [{ ...same, value: 'last' }]),
      ]);
      const reader = await broker.subscribe({ topic: t, group: 'readers' });
      expect(values(await takeAll(reader, 5))).toEqual(['running', 'succeeded', 'after 1', 'after 2', 'last']);
      await reader.close();
      await sub.close();
    });

    it("a sole reader's delivery can be handed off too", async () => {
      const t = topic();
      const results = topic();
      const group = `sole-${randomUUID()}`;
      await broker.publish(t, [{ value: 'a' }, { value: 'b' }]);
      const sole = await broker.subscribe({ topic: t, group, soleReader: true });
      const [a, b] = await takeAll(sole, 2);
      await broker.publishAndAck(results, [{ value: 'from a' }], [a!]);
      await b!.ack();
      await sole.close();
      const reopened = await broker.subscribe({ topic: t, group, soleReader: true });
      expect(await reopened.take(1, { timeoutMs: 300 })).toEqual([]);
      await reopened.close();
      const reader = await broker.subscribe({ topic: results, group: 'readers' });
      expect(values(await takeAll(reader, 1))).toEqual(['from a']);
      await reader.close();
    });

    it('a nacked message comes back with the next attempt number, not before its delay', async () => {
      const t = topic();
      await broker.publish(t, [{ value: 'retry' }]);
      const sub = await broker.subscribe({ topic: t, group: 'g' });
      const [first] = await sub.take(1);
      expect(first!.attempt).toBe(1);
      const nackedAt = Date.now();
      await first!.nack(300);
      const [second] = await takeAll(sub, 1);
      expect(Date.now() - nackedAt).toBeGreaterThanOrEqual(250);
      expect(second).toMatchObject({ value: 'retry', attempt: 2, position: first!.position });
      await second!.nack();
      const [third] = await takeAll(sub, 1);
      expect(third!.attempt).toBe(3);
      await third!.ack();
      await sub.close();
    });

    it('messages a closed subscriber held go back to its group', async () => {
      const t = topic();
      await broker.publish(t, [{ value: 'held' }]);
      const first = await broker.subscribe({ topic: t, group: 'g' });
      expect(values(await first.take(1))).toEqual(['held']);
      await first.close();
      const second = await broker.subscribe({ topic: t, group: 'g' });
      const [again] = await takeAll(second, 1);
      expect(again).toMatchObject({ value: 'held', attempt: 2 });
      await again!.ack();
      await second.close();
    });

    it('work held by a process that dies returns to the group once its lease runs out', async () => {
      const t = topic();
      await broker.publish(t, [{ value: 'w1' }, { value: 'w2' }]);
      const child = spawn(process.execPath, [fixture, h.url, h.dataDir, t, 'g', String(h.leaseMs), '2'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      expect((JSON.parse(line.toString()) as string[]).sort()).toEqual(['w1', 'w2']);
      child.kill('SIGKILL');
      await once(child, 'exit');
      const sub = await broker.subscribe({ topic: t, group: 'g', leaseMs: h.leaseMs });
      const again = await takeAll(sub, 2, h.leaseMs * 10);
      expect(values(again).sort()).toEqual(['w1', 'w2']);
      // Whether a crash counts as an attempt is the adapter's to say (Kafka's classic groups
      // cannot know); the embedded broker's own tests check that it does.
      expect(again.every((d) => d.attempt >= 1)).toBe(true);
      await Promise.all(again.map((d) => d.ack()));
      await sub.close();
    });

    it('counts a group backlog as waiting plus leased, and acks shrink it', async () => {
      const t = topic();
      await broker.publish(t, [{ value: '1' }, { value: '2' }, { value: '3' }]);
      expect(await broker.backlog(t, 'g')).toBe(3);
      const sub = await broker.subscribe({ topic: t, group: 'g' });
      const got = await takeAll(sub, 2);
      expect(await broker.backlog(t, 'g')).toBe(3);
      await Promise.all(got.map((d) => d.ack()));
      expect(await broker.backlog(t, 'g')).toBe(1);
      await sub.close();
    });

    it('splits a group backlog into waiting and leased, with the publish time of the oldest waiting message', async () => {
      const t = topic();
      // A broker that cannot tell taken from waiting reports leased as null and counts both as waiting.
      const split = async () => {
        const s = await broker.queueStats(t, 'g');
        expect(s.waiting + (s.leased ?? 0)).toBe(await broker.backlog(t, 'g'));
        return s;
      };
      expect(await broker.queueStats(t, 'g')).toMatchObject({ waiting: 0, oldestWaitingPublishedAt: null });
      const before = Date.now();
      await broker.publish(t, [{ key: 'k', value: 'a' }]);
      const afterA = Date.now();
      await sleep(30);
      await broker.publish(t, [{ key: 'k', value: 'b' }, { key: 'k', value: 'c' }]);
      const unread = await split();
      expect(unread.waiting).toBe(3);
      expect(unread.leased ?? 0).toBe(0);
      // Broker clocks may differ from this process's by a little (Kafka, Redis on the same host: not at all).
      expect(unread.oldestWaitingPublishedAt).toBeGreaterThanOrEqual(before - 1000);
      expect(unread.oldestWaitingPublishedAt).toBeLessThanOrEqual(afterA + 1000);

      const sub = await broker.subscribe({ topic: t, group: 'g' });
      const [a] = await takeAll(sub, 1);
      expect(a!.value).toBe('a');
      const taken = await split();
      if (taken.leased !== null) expect(taken).toMatchObject({ waiting: 2, leased: 1 });
      await a!.ack();
      const rest = await takeAll(sub, 2);
      expect(values(rest)).toEqual(['b', 'c']);
      const afterAck = await split();
      // The oldest message still counted as waiting is b: taken and not acked, where leases cannot be seen.
      if (afterAck.leased === null) expect(afterAck).toEqual({ waiting: 2, leased: null, oldestWaitingPublishedAt: rest[0]!.publishedAt });
      else expect(afterAck).toEqual({ waiting: 0, leased: 2, oldestWaitingPublishedAt: null });
      await rest[1]!.nack();
      const nacked = await split();
      if (nacked.leased !== null) expect(nacked).toEqual({ waiting: 1, leased: 1, oldestWaitingPublishedAt: rest[1]!.publishedAt });
      const [again] = await takeAll(sub, 1);
      await Promise.all([rest[0]!.ack(), again!.ack()]);
      const drained = await split();
      expect(drained.waiting).toBe(0);
      expect(drained.leased ?? 0).toBe(0);
      expect(drained.oldestWaitingPublishedAt).toBeNull();
      await sub.close();
    });

    it('publish answers each position, and positionOf counts what waits ahead of it', async () => {
      const t = topic();
      await broker.ensureTopic(t);
      // One key: one partition on Kafka, where the count can be estimated only within a partition.
      const [pa, pb] = await broker.publish(t, [{ key: 'k', value: 'a' }, { key: 'k', value: 'b' }]);
      const [pc] = await broker.publish(t, [{ key: 'k', value: 'c' }]);
      const positions = [pa, pb, pc];
      expect(positions.every((p) => p !== undefined)).toBe(true);
      expect(new Set(positions).size).toBe(3);
      const aheadOf = async (position: string | undefined) => (await broker.positionOf(t, 'g', position!))?.ahead ?? null;
      const all = async () => Promise.all(positions.map(aheadOf));
      // Nobody in the group has read the topic yet: all three wait, in publishing order.
      expect(await all()).toEqual([0, 1, 2]);
      expect(await broker.positionOf(t, 'g', 'not-a-position')).toBeNull();

      const sub = await broker.subscribe({ topic: t, group: 'g' });
      const [a] = await takeAll(sub, 1);
      expect(a).toMatchObject({ value: 'a', position: pa });
      const place = (await broker.positionOf(t, 'g', pc!)) as QueuePlace;
      // An exact broker sees that a is held; one that cannot (Kafka) still counts it ahead.
      if (place.exact) expect(await all()).toEqual([null, 0, 1]);
      else expect(place.ahead).toBeGreaterThanOrEqual(1);
      await a!.ack();
      // Once acked, a has no place; where acks are committed in the background, soon.
      await until('a acked out of the queue', async () => ((await all()).join() === ',0,1' ? true : undefined));

      const [b] = await takeAll(sub, 1);
      expect(b).toMatchObject({ value: 'b', position: pb });
      if (place.exact) {
        expect(await all()).toEqual([null, null, 0]);
        // Nacked, b waits again, ahead of c.
        await b!.nack();
        expect(await all()).toEqual([null, 0, 1]);
        // Which of the two comes first is the adapter's choice: redelivery order is not promised.
        const rest = await takeAll(sub, 2);
        expect(values(rest).sort()).toEqual(['b', 'c']);
        await Promise.all(rest.map((d) => d.ack()));
      } else {
        await b!.ack();
        const [c] = await takeAll(sub, 1);
        await c!.ack();
      }
      await until('everything acked out of the queue', async () => ((await all()).every((n) => n === null) ? true : undefined));
      await sub.close();
    });

    it('the positions publish answers are those the deliveries carry, across keys and concurrent publishes', async () => {
      const t = topic();
      await broker.ensureTopic(t);
      const published = await Promise.all([
        broker.publish(t, Array.from({ length: 12 }, (_, i) => ({ key: `k${i % 7}`, value: `x${i}` }))),
        broker.publish(t, [{ value: 'keyless-1' }, { value: 'keyless-2' }]),
        broker.publish(t, [{ key: 'k3', value: 'y' }]),
      ]);
      const sent = [...Array.from({ length: 12 }, (_, i) => `x${i}`), 'keyless-1', 'keyless-2', 'y'];
      const expected = new Map(published.flat().map((position, i) => [sent[i]!, position]));
      const sub = await broker.subscribe({ topic: t, group: 'g' });
      const got = await takeAll(sub, sent.length);
      expect(new Map(got.map((d) => [d.value, d.position]))).toEqual(expected);
      await Promise.all(got.map((d) => d.ack()));
      await sub.close();
    });

    it('keeps published messages across a reconnect', async () => {
      const t = topic();
      await broker.publish(t, [{ value: 'durable' }]);
      const other = await h.open();
      const sub = await other.subscribe({ topic: t, group: 'g' });
      const [d] = await takeAll(sub, 1);
      expect(d!.value).toBe('durable');
      await d!.ack();
      await other.close();
    });

    it('accepts many concurrent publishes and delivers each exactly once', async () => {
      const t = topic();
      const count = 500;
      // Spread over many event-loop turns, so publishes overlap in flight (an idempotent Kafka
      // producer that lets requests overtake each other loses messages exactly here).
      const pending: Promise<unknown>[] = [];
      for (let i = 0; i < count; i++) {
        pending.push(broker.publish(t, [{ key: String(i % 16), value: String(i) }]));
        if (i % 25 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(pending);
      const sub = await broker.subscribe({ topic: t, group: 'g' });
      const got = await takeAll(sub, count, 20_000);
      expect(new Set(values(got)).size).toBe(count);
      await Promise.all(got.map((d) => d.ack()));
      expect(await sub.take(1, { timeoutMs: 100 })).toEqual([]);
      await sub.close();
    });
  });
}
