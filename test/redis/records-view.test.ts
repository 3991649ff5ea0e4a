import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery, Subscription } from '../../src/brokers/broker.js';
import { openBroker } from '../../src/brokers/open-broker.js';
import { headerNames, responseMessage } from '../../src/protocol/envelope.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { openStore } from '../../src/stores/open-store.js';
import type { StoredNotice } from '../../src/stores/store.js';
import { record } from '../stores/conformance.js';
import { countingStoreWriter, storedMarks } from '../stores/records-view-checks.js';
import { suiteRedis, type SuiteRedis } from './redis-server.js';

let server: SuiteRedis;
let redis: Redis;
beforeAll(async () => {
  server = await suiteRedis();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis.disconnect();
  await server.release();
});

const opened: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of opened.splice(0)) await close();
});

const succeeded = (id: string): PredictionRecord =>
  record(id, { status: 'succeeded', attempts: 1, output: { echo: id }, completed_at: '2026-01-01T00:00:01.000Z' });

async function takeAll(sub: Subscription, count: number): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const deadline = Date.now() + 10_000;
  while (out.length < count && Date.now() < deadline) out.push(...(await sub.take(count - out.length, { timeoutMs: deadline - Date.now() })));
  return out;
}

/** A store, a broker on the same server that writes into it, and what the store announced. */
async function openPair(brokerUrl = server.url) {
  const responses = `responses.${randomUUID()}`;
  const keyPrefix = `test-${randomUUID()}:`;
  const store = await openStore({ kind: 'redis', url: server.url, keyPrefix, retentionMs: 60_000 });
  const broker = await openBroker({ url: brokerUrl, dataDir: '', leaseMs: 5000, views: [store.recordsView!(responses)] });
  const notices: StoredNotice[] = [];
  store.onStored((notice) => notices.push(notice));
  opened.push(async () => {
    await broker.close();
    await store.close();
  });
  const announced = () => notices.flatMap((n) => n.records.map((r) => `${r.id}:${r.status}`));
  return { responses, keyPrefix, store, broker, announced };
}

async function takeRequest(broker: Awaited<ReturnType<typeof openPair>>['broker']) {
  const requests = `requests.${randomUUID()}`;
  await broker.publish(requests, [{ value: 'p1' }]);
  const sub = await broker.subscribe({ topic: requests, group: 'workers' });
  opened.push(() => sub.close());
  const [request] = await takeAll(sub, 1);
  return { requests, request: request! };
}

const pending = async (topic: string) => ((await redis.call('XPENDING', `spillway:stream:${topic}`, 'workers')) as [number])[0];

describe('Redis store beside a Redis broker on the same server', () => {
  it('is written by the script that hands a result off: stored and acked in one step, announced after', async () => {
    const { responses, store, broker, announced } = await openPair();
    const { requests, request } = await takeRequest(broker);
    await broker.publishAndAck(responses, [responseMessage(succeeded('p1'))], [request]);
    // No store writer runs here: the record went in with the result.
    expect(await store.get('p1')).toEqual(succeeded('p1'));
    expect(await pending(requests)).toBe(0);
    await expect.poll(announced).toEqual(['p1:succeeded']);
  });

  it('keeps the store rule: a later final record of the same prediction changes nothing and is not announced', async () => {
    const { responses, store, broker, announced } = await openPair();
    const canceled = record('p1', { status: 'canceled', completed_at: '2026-01-01T00:00:00.500Z' });
    await broker.publish(responses, [responseMessage(record('p1', { status: 'running', attempts: 1 })), responseMessage(canceled)]);
    await broker.publish(responses, [responseMessage(succeeded('p1'))]);
    expect(await store.get('p1')).toEqual(canceled);
    await broker.publish(responses, [responseMessage(succeeded('p2'))]);
    await expect.poll(announced).toEqual(['p1:canceled', 'p2:succeeded']);
  });

  it('adds, acks and announces nothing when the store part fails, and the request comes back', async () => {
    const { responses, keyPrefix, store, broker, announced } = await openPair();
    const { requests, request } = await takeRequest(broker);
    // A key of the wrong type where the record goes: the view's chunk fails before any XADD.
    await redis.hset(`${keyPrefix}prediction:p1`, 'not', 'a record');
    await expect(broker.publishAndAck(responses, [responseMessage(succeeded('p1'))], [request])).rejects.toMatchObject({ code: 'SPILLWAY_BROKER_UNAVAILABLE' });
    expect(await redis.exists(`spillway:stream:${responses}`)).toBe(0);
    expect(await pending(requests)).toBe(1);
    await redis.del(`${keyPrefix}prediction:p1`);
    await broker.publishAndAck(responses, [responseMessage(succeeded('p1'))], [request]);
    expect(await store.get('p1')).toEqual(succeeded('p1'));
    await expect.poll(announced).toEqual(['p1:succeeded']);
  });

  it('marks what it stored, so the store writer passes it over and still stores what a broker without the view published', async () => {
    const { responses, store, broker } = await openPair();
    const plain = await openBroker({ url: server.url, dataDir: '', leaseMs: 5000 });
    opened.push(() => plain.close());
    await broker.publish(responses, [responseMessage(succeeded('viewed'))]);
    await plain.publish(responses, [responseMessage(succeeded('plain'))]);
    const reader = await broker.subscribe({ topic: responses, group: 'look', from: 'earliest' });
    opened.push(() => reader.close());
    const seen = await takeAll(reader, 2);
    expect(storedMarks(seen)).toEqual([
      ['viewed', 'yes'],
      ['plain', undefined],
    ]);

    const writer = await countingStoreWriter(broker, store, responses);
    opened.push(() => writer.stop());
    await expect.poll(() => store.get('plain')).toEqual(succeeded('plain'));
    expect(writer.put).toEqual(['plain']);
  });

  it('is passed over by a broker on another database of the server, whose messages the store writer then copies', async () => {
    const other = new URL(server.url);
    other.pathname = '/1';
    const { responses, store, broker } = await openPair(other.toString());
    await broker.publish(responses, [responseMessage(succeeded('elsewhere'))]);
    expect(await store.get('elsewhere')).toBeUndefined();
    const reader = await broker.subscribe({ topic: responses, group: 'look', from: 'earliest' });
    opened.push(() => reader.close());
    const [seen] = await takeAll(reader, 1);
    expect(seen!.headers[headerNames.stored]).toBeUndefined();
  });
});

