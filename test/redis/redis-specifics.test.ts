import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery, Subscription } from '../../src/brokers/broker.js';
import { openBroker } from '../../src/brokers/open-broker.js';
import type { RedisBroker } from '../../src/brokers/redis/redis-broker.js';
import { pruneDeadConsumers } from '../../src/brokers/redis/trimmer.js';
import { SpillwayError } from '../../src/protocol/errors.js';
import { suiteRedis, type SuiteRedis } from './redis-server.js';

const fixture = new URL('../fixtures/take-and-hang.mjs', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const values = (ds: readonly Delivery[]) => ds.map((d) => d.value);
const stream = (topic: string) => `spillway:stream:${topic}`;
/** A trim time past the grace that keeps acked entries for a while (60 s by default). */
const pastGrace = () => Date.now() + 120_000;

let server: SuiteRedis;
let redis: Redis;
let broker: RedisBroker;

async function open(): Promise<RedisBroker> {
  return (await openBroker({ url: server.url, dataDir: '', leaseMs: 1000 })) as RedisBroker;
}

async function takeAll(sub: Subscription, count: number, timeoutMs = 10_000): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) out.push(...(await sub.take(count - out.length, { timeoutMs: deadline - Date.now() })));
  return out;
}

/** Starts the take-and-hang fixture, waits until it holds its messages, then SIGKILLs it. */
async function killAfterTaking(topic: string, group: string, leaseMs: number, max: number, kind = ''): Promise<string[]> {
  const child = spawn(process.execPath, [fixture, server.url, '', topic, group, String(leaseMs), String(max), kind], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  child.kill('SIGKILL');
  await once(child, 'exit');
  return JSON.parse(line.toString()) as string[];
}

async function groupNames(topic: string): Promise<string[]> {
  const groups = (await redis.call('XINFO', 'GROUPS', stream(topic))) as unknown[][];
  return groups.map((g) => String(g[g.indexOf('name') + 1]));
}

beforeAll(async () => {
  server = await suiteRedis();
  const { port } = new URL(server.url);
  redis = new Redis({ host: '127.0.0.1', port: Number(port) });
  broker = await open();
});
afterAll(async () => {
  await broker.close();
  redis.disconnect();
  await server.release();
});

describe('redis broker', () => {
  it('XREADGROUP takes only as many entries as asked: 2 of 5 leave 2 pending and 3 waiting', async () => {
    const t = `t.${randomUUID()}`;
    await broker.publish(t, ['1', '2', '3', '4', '5'].map((value) => ({ value })));
    const sub = await broker.subscribe({ topic: t, group: 'workers' });
    const taken = await sub.take(2);
    expect(values(taken)).toEqual(['1', '2']);
    const [pending] = (await redis.call('XPENDING', stream(t), 'workers')) as [number];
    expect(pending).toBe(2);
    expect(await broker.backlog(t, 'workers')).toBe(5);
    await sub.close();
  });

  it('a killed consumer\'s entries come back after the lease, attempt 2 from the pending list', async () => {
    const t = `t.${randomUUID()}`;
    await broker.publish(t, [{ value: 'a' }, { value: 'b' }]);
    expect((await killAfterTaking(t, 'workers', 500, 2)).sort()).toEqual(['a', 'b']);
    const sub = await broker.subscribe({ topic: t, group: 'workers', leaseMs: 500 });
    const killedAt = Date.now();
    const again = await takeAll(sub, 2);
    expect(Date.now() - killedAt).toBeLessThan(5000);
    expect(values(again).sort()).toEqual(['a', 'b']);
    expect(again.map((d) => d.attempt)).toEqual([2, 2]);
    await Promise.all(again.map((d) => d.ack()));
    await sub.close();
  });

  it('a live slow holder keeps its lease: nobody else gets the entry while it renews', async () => {
    const t = `t.${randomUUID()}`;
    await broker.publish(t, [{ value: 'slow' }]);
    const holder = await broker.subscribe({ topic: t, group: 'workers', leaseMs: 300 });
    const [held] = await holder.take(1);
    const other = await broker.subscribe({ topic: t, group: 'workers', leaseMs: 300 });
    expect(await other.take(1, { timeoutMs: 1200 })).toEqual([]);
    await held!.ack();
    await Promise.all([holder.close(), other.close()]);
  });

  it('a pending entry deleted from the stream is dropped from the pending list by the next reclaim, not delivered', async () => {
    const t = `t.${randomUUID()}`;
    await broker.publish(t, [{ value: 'gone' }]);
    const sub = await broker.subscribe({ topic: t, group: 'g', leaseMs: 300 });
    const [d] = await sub.take(1);
    await redis.xdel(stream(t), d!.position);
    await d!.nack();
    expect(await sub.take(1, { timeoutMs: 300 })).toEqual([]);
    const [pending] = (await redis.call('XPENDING', stream(t), 'g')) as [number];
    expect(pending).toBe(0);
    await sub.close();
  });

  it('a nack with a delay longer than the lease comes back no sooner than the delay, attempt 2', async () => {
    const t = `t.${randomUUID()}`;
    await broker.publish(t, [{ value: 'later' }]);
    const sub = await broker.subscribe({ topic: t, group: 'g', leaseMs: 300 });
    const [first] = await sub.take(1);
    const nackedAt = Date.now();
    await first!.nack(900);
    const [again] = await takeAll(sub, 1);
    expect(Date.now() - nackedAt).toBeGreaterThanOrEqual(850);
    expect(again).toMatchObject({ value: 'later', attempt: 2 });
    await again!.ack();
    await sub.close();
  });

  it("a worker's hand-off acks nothing when a result cannot be added, so the request comes back", async () => {
    const requests = `t.${randomUUID()}`;
    const results = `t.${randomUUID()}`;
    await broker.publish(requests, [{ value: 'r1' }, { value: 'r2' }]);
    const sub = await broker.subscribe({ topic: requests, group: 'workers' });
    const [r1, r2] = await takeAll(sub, 2);
    await broker.publishAndAck(results, [{ value: 'done r1' }], [r1!]);
    // Both in one step: the result is in its stream, and r1 left the pending list.
    expect(await redis.xlen(stream(results))).toBe(1);
    expect(((await redis.call('XPENDING', stream(requests), 'workers')) as [number])[0]).toBe(1);

    // A key of the wrong type where the results go: the XADD fails inside the script, before the ack.
    const refused = `t.${randomUUID()}`;
    await redis.set(stream(refused), 'not a stream');
    await expect(broker.publishAndAck(refused, [{ value: 'done r2' }], [r2!])).rejects.toMatchObject({ code: 'SPILLWAY_BROKER_UNAVAILABLE' });
    expect(((await redis.call('XPENDING', stream(requests), 'workers')) as [number])[0]).toBe(1);
    await sub.close();
    const next = await broker.subscribe({ topic: requests, group: 'workers' });
    const [again] = await takeAll(next, 1);
    expect(again).toMatchObject({ value: 'r2', attempt: 2 });
    await broker.publishAndAck(results, [{ value: 'done r2' }], [again!]);
    expect(await broker.backlog(requests, 'workers')).toBe(0);
    expect(await redis.xlen(stream(results))).toBe(2);
    await next.close();
  });

  it('trimming (the fallback for Redis < 8.2) drops only what every group acked', async () => {
    const t = `t.${randomUUID()}`;
    await broker.publish(t, ['1', '2', '3'].map((value) => ({ value })));
    const a = await broker.subscribe({ topic: t, group: 'a' });
    const b = await broker.subscribe({ topic: t, group: 'b' });
    await Promise.all((await takeAll(a, 3)).map((d) => d.ack()));
    await broker.trim(t, pastGrace());
    expect(await redis.xlen(stream(t))).toBe(3);
    // b holds 1 unacked and has not read 2 and 3: all three stay.
    const [first] = await b.take(1);
    await broker.trim(t, pastGrace());
    expect(await redis.xlen(stream(t))).toBe(3);
    await first!.ack();
    await broker.trim(t, pastGrace());
    expect(await redis.xlen(stream(t))).toBe(2);
    expect(values(await takeAll(b, 2))).toEqual(['2', '3']);
    await Promise.all([a.close(), b.close()]);
  });

  it('trimming keeps acked entries younger than the grace, for a group that subscribes a moment later', async () => {
    const t = `t.${randomUUID()}`;
    await broker.publish(t, [{ value: 'first result' }]);
    const store = await broker.subscribe({ topic: t, group: 'store' });
    await Promise.all((await takeAll(store, 1)).map((d) => d.ack()));
    await broker.trim(t);
    const late = await broker.subscribe({ topic: t, group: 'callbacks' });
    expect(values(await takeAll(late, 1))).toEqual(['first result']);
    await Promise.all([store.close(), late.close()]);
  });

  it('trimming keeps every entry of a topic no group has read yet, and an unacked one in the middle', async () => {
    const t = `t.${randomUUID()}`;
    await broker.publish(t, ['1', '2', '3'].map((value) => ({ value })));
    await broker.trim(t, pastGrace());
    expect(await redis.xlen(stream(t))).toBe(3);
    const sub = await broker.subscribe({ topic: t, group: 'g' });
    const [one, two, three] = await takeAll(sub, 3);
    await one!.ack();
    await three!.ack();
    await broker.trim(t, pastGrace());
    expect((await redis.xrange(stream(t), '-', '+')).map(([id]) => id)).toEqual([two!.position, three!.position]);
    await two!.ack();
    await broker.trim(t, pastGrace());
    expect(await redis.xlen(stream(t))).toBe(0);
    await sub.close();
  });

  it('a retention topic drops old entries even unread, and keeps young ones even once read', async () => {
    const t = `beats.${randomUUID()}`;
    await broker.ensureTopic(t, { retentionMs: 60_000 });
    await broker.publish(t, [{ value: 'cancel' }]);
    const early = await broker.subscribe({ topic: t, group: 'early' });
    await Promise.all((await takeAll(early, 1)).map((d) => d.ack()));
    await broker.trim(t);
    const late = await broker.subscribe({ topic: t, group: 'late', from: 'earliest', ephemeral: true });
    expect(values(await takeAll(late, 1))).toEqual(['cancel']);
    await broker.trim(t, Date.now() + 120_000);
    expect(await redis.xlen(stream(t))).toBe(0);
    expect(await broker.backlog(t, 'nobody')).toBe(0);
    await Promise.all([early.close(), late.close()]);
  });

  it('an ephemeral group is destroyed on close, and a killed owner\'s by the janitor', async () => {
    const t = `t.${randomUUID()}`;
    await broker.publish(t, [{ value: 'x' }]);
    const mine = await broker.subscribe({ topic: t, group: 'gw-1', ephemeral: true });
    expect(await groupNames(t)).toEqual(['spillway-ephemeral:gw-1']);
    await mine.close();
    expect(await groupNames(t)).toEqual([]);

    await killAfterTaking(t, 'gw-2', 300, 1, 'ephemeral');
    expect(await groupNames(t)).toEqual(['spillway-ephemeral:gw-2']);
    await sleep(500);
    await broker.trim(t, pastGrace());
    expect(await groupNames(t)).toEqual([]);
    // With no group left the entry stays: trimming drops only what some group read and every group acked.
    expect(await redis.xlen(stream(t))).toBe(1);
  });

  it('prunes consumers that hold nothing and are long idle, and never one that holds entries', async () => {
    const t = `t.${randomUUID()}`;
    await broker.publish(t, [{ value: 'kept' }, { value: 'done' }]);
    await killAfterTaking(t, 'g', 60_000, 1);
    const idle = await broker.subscribe({ topic: t, group: 'g', leaseMs: 60_000 });
    await Promise.all((await idle.take(1)).map((d) => d.ack()));
    const consumers = async () => ((await redis.call('XINFO', 'CONSUMERS', stream(t), 'g')) as unknown[][]).length;
    expect(await consumers()).toBe(2);
    await sleep(50);
    expect(await pruneDeadConsumers(redis, t, 20)).toBe(1);
    expect(await consumers()).toBe(1);
    const [pending] = (await redis.call('XPENDING', stream(t), 'g')) as [number];
    expect(pending).toBe(1);
    await idle.close();
  });

  it('backlog is lag plus pending, and counts entries itself when Redis reports no lag', async () => {
    const t = `t.${randomUUID()}`;
    await broker.publish(t, ['1', '2', '3', '4', '5'].map((value) => ({ value })));
    const sub = await broker.subscribe({ topic: t, group: 'g' });
    const [first] = await sub.take(1);
    expect(await broker.backlog(t, 'g')).toBe(5);
    // Deleting an entry after the group's position leaves Redis unable to tell the lag.
    const ids = (await redis.xrange(stream(t), '-', '+')).map(([id]) => id);
    await redis.xdel(stream(t), ids[2]!);
    const groups = (await redis.call('XINFO', 'GROUPS', stream(t))) as unknown[][];
    expect(groups[0]![groups[0]!.indexOf('lag') + 1]).toBeNull();
    expect(await broker.backlog(t, 'g')).toBe(4);
    await first!.ack();
    expect(await broker.backlog(t, 'g')).toBe(3);
    await sub.close();
  });

  it('refuses a malformed redis:// URL at open, naming broker and the problem', async () => {
    const error = await openBroker({ url: 'redis://host:99999', dataDir: '' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpillwayError);
    expect((error as SpillwayError).code).toBe('SPILLWAY_INVALID_CONFIG');
    expect((error as SpillwayError).message).toMatch(/broker.*port 99999 is out of range/);
    expect((error as SpillwayError).details[0]?.pointer).toBe('broker');
  });

  it('takes its message limit from the settings and refuses larger messages', async () => {
    const small = (await openBroker({ url: server.url, dataDir: '', redis: { maxMessageBytes: 2048 } })) as RedisBroker;
    expect(small.maxMessageBytes).toBe(2048);
    const error = await small.publish(`t.${randomUUID()}`, [{ value: 'x'.repeat(4096) }]).catch((e: unknown) => e);
    expect((error as SpillwayError).code).toBe('SPILLWAY_BODY_TOO_LARGE');
    expect(broker.maxMessageBytes).toBe(1_000_000);
    await small.close();
  });
});
