import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { spawnSpillway, type SpillwayProcess } from '../helpers/processes.js';
import { testRedis, type TestRedis } from './test-redis.js';

let server: TestRedis;
const running: SpillwayProcess[] = [];

beforeAll(async () => {
  server = await testRedis();
});

afterAll(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill('SIGKILL')));
  await server?.stop();
});

it('two gateways on one Redis store: a result stored by either is read, waited for and replayed on both', async () => {
  // A prefix of its own: the shared test server may hold other tests' deployments.
  const data = mkdtempSync(join(tmpdir(), 'spillway-redis-gw-'));
  const prefix = `t${randomUUID().slice(0, 8)}`;
  // One data folder for the embedded queue the processes share; the records are in Redis only.
  const common = ['--data', data, '--store', server.url, '--prefix', prefix];
  const env = { SPILLWAY_WORKER_HEARTBEAT_MS: '200' };
  const [a, b] = await Promise.all([spawnSpillway(['gateway', ...common, '--port', '0'], env), spawnSpillway(['gateway', ...common, '--port', '0'], env)]);
  running.push(a, b);
  running.push(await spawnSpillway(['worker', ...common], env));
  expect((await request(`${a.url}/readyz`)).status).toBe(200);

  // Both gateways run a store writer, so each result is stored by one of them, and a waiter on
  // the other hears of it through the store (its notice, or its fallback read).
  for (let i = 0; i < 6; i++) {
    const [here, there] = i % 2 === 0 ? [a, b] : [b, a];
    const waited = await predict(here.url, 'echo', { n: i }, { prefer: 'wait=20' });
    expect(waited.status).toBe(200);
    expect(waited.body.status).toBe('succeeded');
    expect(await waitForFinal(there.url, waited.body.id)).toEqual(waited.body);
  }

  // One Idempotency-Key across gateways: the second is a replay of the first, nothing new is queued.
  const first = await predict(a.url, 'echo', { n: 'once' }, { 'idempotency-key': 'shared-key', prefer: 'wait=20' });
  expect(first.status).toBe(200);
  const again = await predict(b.url, 'echo', { n: 'once' }, { 'idempotency-key': 'shared-key' });
  expect(again.headers.get('idempotent-replayed')).toBe('true');
  expect(again.body.id).toBe(first.body.id);

  expect(existsSync(join(data, 'results.db'))).toBe(false);
  const inspector = new Redis(server.url);
  try {
    expect(await inspector.keys(`${prefix}:prediction:*`)).toHaveLength(7);
    expect(await inspector.exists(`${prefix}:idempotency:shared-key`)).toBe(1);
  } finally {
    await inspector.quit();
  }
}, 120_000);
