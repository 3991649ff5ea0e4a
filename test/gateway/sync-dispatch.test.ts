import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/worker/worker.js';
import { startDeployment, testWorker, type Deployment } from '../helpers/deployment.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { processesOfTest, spawnSpillway } from '../helpers/processes.js';

interface Sighting {
  worker: string;
  endpoint?: string;
  concurrency?: number;
  busy_ms?: number;
}

async function waitForWorkers(url: string, model: string, count: number): Promise<Sighting[]> {
  for (let i = 0; i < 200; i++) {
    const res = await request<{ workers: Sighting[] }>(`${url}/v1/models/${model}`);
    const ready = res.body.workers.filter((w) => w.endpoint !== undefined);
    if (ready.length >= count) return ready;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`fewer than ${count} sync workers announced themselves`);
}

describe('dispatch: sync', () => {
  // Each run holds its slot for a second, so concurrent requests overlap for certain.
  const models = modelRepo({ sleep: { dispatch: 'sync', per_batch_ms: 1000, concurrency: 2 } });
  let d: Deployment;
  let second: Worker;

  beforeAll(async () => {
    d = await startDeployment({ models });
    second = testWorker({ broker: d.broker, prefix: d.prefix, models, workerId: 'second-worker' });
    await second.start();
    await waitForWorkers(d.url, 'sleep', 2);
  });
  afterAll(async () => {
    await second.drain();
    await d.close();
  });

  it('spreads requests over the workers and answers each on its connection, whatever Prefer says', async () => {
    const answers = await Promise.all([0, 1, 2, 3].map((i) => predict(d.url, 'sleep', { i }, { prefer: 'respond-async' })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    for (const [i, a] of answers.entries()) {
      expect(a.body.status).toBe('succeeded');
      expect(a.body.output).toMatchObject({ input: { i }, batch_size: 1 });
    }
    const byWorker = new Map<string, number>();
    for (const a of answers) byWorker.set(String(a.body.worker), (byWorker.get(String(a.body.worker)) ?? 0) + 1);
    expect(Object.fromEntries(byWorker)).toEqual({ 'test-worker': 2, 'second-worker': 2 });
  });

  it('refuses at once with 429 and Retry-After when every slot is busy, and runs nothing for it', async () => {
    const answers = await Promise.all([0, 1, 2, 3, 4].map((i) => predict(d.url, 'sleep', { i })));
    const refused = answers.filter((a) => a.status === 429);
    expect(refused).toHaveLength(1);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(4);
    const [no] = refused;
    expect(no?.headers.get('content-type')).toContain('application/problem+json');
    expect((no?.body as unknown as { code: string }).code).toBe('SPILLWAY_SATURATED');
    expect(Number(no?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('puts the finished record on the response stream, so it can be fetched later', async () => {
    const res = await predict(d.url, 'sleep', { later: true });
    expect(res.status).toBe(200);
    const stored = await waitForFinal(d.url, String(res.body.id));
    expect(stored).toMatchObject({ id: res.body.id, status: 'succeeded', model: 'sleep', worker: res.body.worker, output: res.body.output });
    expect(stored.metrics.inference_ms).toBe(res.body.metrics.inference_ms);
  });

  it('reports the slots each worker holds and the time they spent busy', async () => {
    const res = await request<{ dispatch: string; workers: Sighting[] }>(`${d.url}/v1/models/sleep`);
    expect(res.body.dispatch).toBe('sync');
    for (const w of res.body.workers) expect(w.concurrency).toBe(2);
    // Heartbeats come every 500 ms; the nine one-second runs above show up in the next ones
    // (a timer may fire a fraction of a millisecond early, hence the margin).
    const busy = async () => (await waitForWorkers(d.url, 'sleep', 2)).reduce((n, w) => n + (w.busy_ms ?? 0), 0);
    for (let i = 0; i < 40 && (await busy()) < 8500; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await busy()).toBeGreaterThanOrEqual(8500);
  });
});

it('a sync run times its steps on the worker, and the record carries them', async () => {
  const models = modelRepo({ fixtures: ['staged'] });
  appendFileSync(join(models, 'staged', 'model.yaml'), 'dispatch: sync\n');
  const d = await startDeployment({ models });
  try {
    await waitForWorkers(d.url, 'staged', 1);
    const res = await predict(d.url, 'staged', { value: 4 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'succeeded', output: { doubled: 8, postprocessed: true } });
    for (const step of ['preprocess_ms', 'inference_ms', 'postprocess_ms'] as const) expect(res.body.metrics[step]).toBeGreaterThanOrEqual(0);
    // The gateway decodes a sync request, not the worker: there is no queue message to read.
    expect(res.body.metrics).not.toHaveProperty('decode_ms');
  } finally {
    await d.close();
  }
});

it('answers 503 when no worker serves a sync model', async () => {
  const d = await startDeployment({ withWorker: false, models: modelRepo({ sleep: { dispatch: 'sync' } }) });
  const res = await predict(d.url, 'sleep', {});
  expect(res.status).toBe(503);
  expect((res.body as unknown as { code: string }).code).toBe('SPILLWAY_NO_WORKERS');
  await d.close();
});

it('works across processes with no configuration: `spillway serve` runs its worker in a thread, gives it and its gateway a secret of its own, and the gateway reaches it over HTTP', async () => {
  const models = modelRepo({ sleep: { dispatch: 'sync', per_batch_ms: 10 } });
  // An empty variable is an unset one: serve makes up the secret itself.
  const serve = await spawnSpillway(['serve', '--port', '0', '--data', mkdtempSync(join(tmpdir(), 'spillway-sync-')), '--models', models], {
    SPILLWAY_WORKER_SYNC_SECRET: '',
  });
  try {
    await waitForWorkers(serve.url, 'sleep', 1);
    const answers = await Promise.all([1, 2, 3].map((i) => predict(serve.url, 'sleep', { i })));
    expect(answers.map((a) => [a.status, a.body.status])).toEqual([
      [200, 'succeeded'],
      [200, 'succeeded'],
      [200, 'succeeded'],
    ]);
  } finally {
    expect(await serve.kill('SIGTERM')).toBe(0);
  }
});

describe('the sync secret', () => {
  const models = modelRepo({ sleep: { dispatch: 'sync', per_batch_ms: 10 } });
  const shared = 'a-secret-shared-by-both-processes';
  const processes = processesOfTest({ SPILLWAY_WORKER_HEARTBEAT_MS: '200', SPILLWAY_WORKER_SYNC_SECRET: shared });
  afterEach(() => processes.killAll());

  it('a gateway without one answers 503 saying so, and calls no worker', async () => {
    const d = await startDeployment({ withWorker: false, syncSecret: null, models });
    const worker = testWorker({ broker: d.broker, prefix: d.prefix, models, workerId: 'with-secret' });
    try {
      await worker.start();
      await waitForWorkers(d.url, 'sleep', 1);
      const res = await predict(d.url, 'sleep', {});
      expect(res.status).toBe(503);
      const problem = res.body as unknown as { code: string; detail: string };
      expect(problem.code).toBe('SPILLWAY_NO_WORKERS');
      for (const text of ['no sync secret', 'worker.sync_secret', 'SPILLWAY_WORKER_SYNC_SECRET', '--sync-secret']) expect(problem.detail).toContain(text);
      const [seen] = await waitForWorkers(d.url, 'sleep', 1);
      expect(seen?.busy_ms).toBe(0);
    } finally {
      await worker.drain();
      await d.close();
    }
  });

  it("a worker that refuses the gateway's secret: the client gets 502 saying so, not the worker's 401, and nothing ran", async () => {
    const d = await startDeployment({ withWorker: false, models });
    const worker = testWorker({ broker: d.broker, prefix: d.prefix, models, workerId: 'other-secret', syncSecret: 'another-deployments-secret' });
    try {
      await worker.start();
      await waitForWorkers(d.url, 'sleep', 1);
      const res = await predict(d.url, 'sleep', {});
      expect(res.status).toBe(502);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      const problem = res.body as unknown as { code: string; detail: string; retryable: boolean };
      expect(problem.code).toBe('SPILLWAY_WORKER_FAILED');
      expect(problem.detail).toContain("refused this gateway's sync secret");
      expect(problem.detail).toContain('worker.sync_secret');
      expect(problem.detail).not.toContain('another-deployments-secret');
      const [seen] = await waitForWorkers(d.url, 'sleep', 1);
      expect(seen?.busy_ms).toBe(0);
    } finally {
      await worker.drain();
      await d.close();
    }
  });

  it('`spillway gateway` and `spillway worker` in processes of their own share it through SPILLWAY_WORKER_SYNC_SECRET', async () => {
    const data = mkdtempSync(join(tmpdir(), 'spillway-sync-'));
    // The gateway first: on the embedded broker it creates the database the worker then opens.
    const gateway = await processes.start(['gateway', '--port', '0', '--data', data, '--models', models]);
    const worker = await processes.start(['worker', '--data', data, '--models', models]);
    await waitForWorkers(gateway.url, 'sleep', 1);
    const res = await predict(gateway.url, 'sleep', { apart: true });
    expect([res.status, res.body.status]).toEqual([200, 'succeeded']);
    for (const p of [gateway, worker]) expect(p.logs.join('\n')).not.toContain(shared);
  });
});
