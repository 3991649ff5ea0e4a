import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { expectAlive, expectAllCompleted, expectOnlyUnavailable } from '../helpers/faults.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { sendLoad } from '../helpers/load.js';
import { modelRepo } from '../helpers/model-repo.js';
import { spawnSpillway, type SpillwayProcess } from '../helpers/processes.js';
import { testRedis } from '../helpers/redis-script.js';

/**
 * Faults on Redis as both broker and store (the `redis`+`redis` deployment), with real processes
 * and a Redis of this file's own that the tests SIGKILL and restart from its append-only file
 * (appendfsync always, as scripts/redis runs it by default).
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const running: SpillwayProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill('SIGKILL')));
});

const redis = testRedis();
afterAll(async () => redis.destroy());

type SleepModel = NonNullable<Parameters<typeof modelRepo>[0]>['sleep'];
const quick: SleepModel = { per_batch_ms: 10, per_item_ms: 1, max_batch_size: 16, concurrency: 2 };

function deployment(url: string) {
  const prefix = `f${Math.random().toString(36).slice(2, 10)}`;
  const common = ['--broker', url, '--store', url, '--prefix', prefix, '--data', mkdtempSync(join(tmpdir(), 'spillway-rfaults-')), '--lease-ms', '3000'];
  const start = async (args: string[]) => {
    const p = await spawnSpillway(args, { SPILLWAY_WORKER_HEARTBEAT_MS: '500' });
    running.push(p);
    return p;
  };
  return {
    gateway: () => start(['gateway', ...common, '--models', modelRepo({ sleep: quick }), '--port', '0']),
    /** A worker whose sleep model runs as `model` says (each worker has its own copy of the repository). */
    worker: (model: SleepModel = quick) => start(['worker', ...common, '--models', modelRepo({ sleep: model })]),
  };
}

const unavailable = ['SPILLWAY_BROKER_UNAVAILABLE', 'SPILLWAY_STORE_UNAVAILABLE'] as const;

describe('Redis faults (redis broker + redis store)', () => {
  it('Redis SIGKILLed under load and restarted from its AOF: no acknowledged request is lost, each completes once', async () => {
    const url = await redis.up();
    const d = deployment(url);
    const gateway = await d.gateway();
    const worker = await d.worker();
    const load = sendLoad({ url: () => gateway.url, model: 'sleep', count: 400, concurrency: 4, intervalMs: 40, input: (i) => ({ i }) });
    await sleep(2000);
    await redis.kill();
    await sleep(2000);
    await redis.start();
    const results = await load;
    await expectAlive(gateway, 'the gateway');
    await expectAlive(worker, 'the worker');
    expectOnlyUnavailable(gateway, results, unavailable);
    const completed = await expectAllCompleted(gateway, results);
    // Enough were accepted on each side of the outage for the test to mean something.
    expect(completed).toBeGreaterThan(100);
  });

  it('while Redis is down a submit gets 503 with Retry-After at once, reads get 503, and service resumes when it is back', async () => {
    const url = await redis.up();
    const d = deployment(url);
    const gateway = await d.gateway();
    await d.worker();
    const before = await predict(gateway.url, 'sleep', { i: 0 }, { prefer: 'wait=30' });
    expect(before.status).toBe(200);
    const id = before.body.id;

    await redis.kill();
    // Nothing hangs: each answer comes well inside the client's patience (fetch's own timeout).
    const submit = await predict(gateway.url, 'sleep', { i: 1 }, { prefer: 'wait=30' });
    expect(submit.status).toBe(503);
    expect(unavailable).toContain((submit.body as unknown as { code: string }).code);
    expect(submit.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(submit.headers.get('retry-after'))).toBeGreaterThan(0);
    const poll = await request(`${gateway.url}/v1/predictions/${id}`);
    expect(poll.status).toBe(503);
    expect((poll.body as { code: string }).code).toBe('SPILLWAY_STORE_UNAVAILABLE');
    expect(poll.headers.get('retry-after')).not.toBeNull();
    expect((await request(`${gateway.url}/readyz`)).status).toBe(503);

    await redis.start();
    // The connections come back on their own; the first requests after may still see the outage.
    let after: Awaited<ReturnType<typeof predict>> | undefined;
    for (let i = 0; i < 100 && after?.status !== 200; i++) {
      if (i > 0) await sleep(200);
      after = await predict(gateway.url, 'sleep', { i: 2 }, { prefer: 'wait=30' });
    }
    expect(after?.status).toBe(200);
    expect((await request<PredictionRecord>(`${gateway.url}/v1/predictions/${id}`)).body.status).toBe('succeeded');
  });

  it('a worker SIGKILLed while holding entries: another worker takes them after the lease, as attempt 2', async () => {
    const url = await redis.up();
    const d = deployment(url);
    const gateway = await d.gateway();
    // Slow batches, so the first worker is still holding its entries when it is killed.
    const first = await d.worker({ per_batch_ms: 600_000, per_item_ms: 0, max_batch_size: 1, concurrency: 5 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await predict(gateway.url, 'sleep', { i })).body.id);
    // Wait until the first worker has taken all five: their records say running, on one worker.
    const holders = new Set<string>();
    for (const id of ids) {
      for (let t = 0; ; t++) {
        const record = (await request<PredictionRecord>(`${gateway.url}/v1/predictions/${id}`)).body;
        if (record.status === 'running' && record.worker !== undefined) {
          holders.add(record.worker);
          break;
        }
        if (t > 300) throw new Error(`${id} never started on the first worker: ${JSON.stringify(record)}`);
        await sleep(100);
      }
    }
    expect(holders.size).toBe(1);
    await first.kill('SIGKILL');
    await d.worker();
    for (const id of ids) {
      const final = await waitForFinal(gateway.url, id, 120_000);
      expect(final.status).toBe('succeeded');
      expect(holders.has(final.worker ?? '')).toBe(false);
      // The delivery count comes from the pending list: the dead worker's take was attempt 1.
      expect(final.attempts).toBe(2);
    }
  });
});
