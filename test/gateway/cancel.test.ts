import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../src/brokers/embedded/embedded-broker.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { startDeployment, testWorker, type Deployment } from '../helpers/deployment.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { statusesOnStream } from '../helpers/stream.js';

const code = (body: unknown) => (body as { code?: string }).code;
const cancel = (url: string, id: string) => request<PredictionRecord>(`${url}/v1/predictions/${id}/cancel`, { method: 'POST' });

async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const lateWorker = (d: Deployment, models: string, workerId: string) => testWorker({ broker: d.broker, prefix: d.prefix, models, workerId });

describe('cancel a queued prediction', () => {
  const models = modelRepo({ sleep: { per_batch_ms: 100, concurrency: 1 } });
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ models, withWorker: false });
  });
  afterAll(() => d.close());

  it('answers the canceled record, and a worker started later takes the request without running it', async () => {
    const submitted = await predict(d.url, 'sleep', { never: true });
    expect(submitted.status).toBe(202);
    const canceled = await cancel(d.url, submitted.body.id);
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({ id: submitted.body.id, status: 'canceled' });
    expect(canceled.body.completed_at).toBeDefined();

    // Another reader has already passed the notice and compaction ran: a late worker must still see it.
    const probe = await d.broker.subscribe({ topic: `${d.prefix}.control`, group: 'probe', from: 'earliest' });
    for (const m of await probe.take(100, { timeoutMs: 500 })) await m.ack();
    await probe.close();
    if (d.broker instanceof EmbeddedBroker) d.broker.compact();

    const worker = lateWorker(d, models, 'late-worker');
    await worker.start();
    try {
      const topic = `${d.prefix}.requests.sleep`;
      await until(async () => (await d.broker.backlog(topic, 'workers')) === 0, 'the backlog to drain');
      expect((await waitForFinal(d.url, submitted.body.id)).status).toBe('canceled');
      const statuses = await statusesOnStream(d.broker, `${d.prefix}.responses`, submitted.body.id);
      expect(statuses.length).toBeGreaterThan(0);
      expect(statuses.every((s) => s === 'canceled')).toBe(true);
      // The worker still serves requests nobody canceled.
      const next = await predict(d.url, 'sleep', { after: true }, { prefer: 'wait=10' });
      expect(next.body.status).toBe('succeeded');
    } finally {
      await worker.drain();
    }
  });
});

describe('cancel counts each prediction once', () => {
  const models = modelRepo({ sleep: { per_batch_ms: 100 } });
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ models, withWorker: false });
  });
  afterAll(() => d.close());

  const metric = async (line: string) => {
    const text = (await request<string>(`${d.url}/metrics`)).body;
    return text.split('\n').find((l) => l.startsWith(`${line} `));
  };

  it('three canceled queued predictions are 3 in spillway_predictions_total, after a worker has skipped them too', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const submitted = await predict(d.url, 'sleep', { i });
      expect((await cancel(d.url, submitted.body.id)).status).toBe(200);
      ids.push(submitted.body.id);
    }
    // The worker publishes its own canceled record for each request it skips.
    const worker = lateWorker(d, models, 'skipping-worker');
    await worker.start();
    try {
      await until(async () => (await d.broker.backlog(`${d.prefix}.requests.sleep`, 'workers')) === 0, 'the worker to skip them');
      for (const id of ids) expect(await statusesOnStream(d.broker, `${d.prefix}.responses`, id)).toEqual(['canceled', 'canceled']);
      await until(async () => (await d.broker.backlog(`${d.prefix}.responses`, 'store')) === 0, 'the store writer to read them');
      // A later outcome, counted by the same store writer: once it shows, the copies before it were counted too.
      expect((await predict(d.url, 'echo', 'marker', { prefer: 'wait=10' })).body.status).toBe('succeeded');
      await until(async () => (await metric('spillway_predictions_total{model="echo",status="succeeded"}')) !== undefined, 'the marker to be counted');
      expect(await metric('spillway_predictions_total{model="sleep",status="canceled"}')).toBe('spillway_predictions_total{model="sleep",status="canceled"} 3');
    } finally {
      await worker.drain();
    }
  });
});

describe('cancel a running prediction', () => {
  const models = modelRepo({ sleep: { per_batch_ms: 5000, concurrency: 1 } });
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ models });
  });
  afterAll(() => d.close());

  const running = async (id: string) => {
    let record: PredictionRecord | undefined;
    await until(async () => {
      record = (await request<PredictionRecord>(`${d.url}/v1/predictions/${id}`)).body;
      return record.status === 'running';
    }, `${id} to run`);
    return record!;
  };

  it('aborts the run and frees the slot: the next request starts before the first would have ended', async () => {
    const first = await predict(d.url, 'sleep', { first: true });
    const started = await running(first.body.id);
    const canceled = await cancel(d.url, first.body.id);
    expect(canceled.status).toBe(200);
    expect(canceled.body.status).toBe('canceled');

    // One slot: the second request can only start once the first's run has stopped.
    const second = await predict(d.url, 'sleep', { second: true });
    const secondRunning = await running(second.body.id);
    expect(Date.parse(secondRunning.started_at!)).toBeLessThan(Date.parse(started.started_at!) + 5000);
    expect((await cancel(d.url, second.body.id)).status).toBe(200);
    await until(() => d.worker!.inFlight === 0, 'the worker to be idle');

    expect((await waitForFinal(d.url, first.body.id)).status).toBe('canceled');
    const statuses = await statusesOnStream(d.broker, `${d.prefix}.responses`, first.body.id);
    expect(statuses).not.toContain('succeeded');
    expect(statuses).not.toContain('failed');
    // Acked, not retried or dead-lettered.
    expect(await d.broker.backlog(`${d.prefix}.requests.sleep`, 'workers')).toBe(0);
    expect(await statusesOnStream(d.broker, `${d.prefix}.dlq`, first.body.id)).toEqual([]);
  });
});

describe('cancel: refusals, and across gateways', () => {
  const models = modelRepo({ sleep: { per_batch_ms: 100 } });
  let d: Deployment;
  let other: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ models, withWorker: false });
    other = await startDeployment({ models, dataDir: d.dataDir, withWorker: false });
  });
  afterAll(async () => {
    await other.close();
    await d.close();
  });

  it('an unknown id: 404 SPILLWAY_PREDICTION_NOT_FOUND', async () => {
    const res = await cancel(d.url, 'no-such-id');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(code(res.body)).toBe('SPILLWAY_PREDICTION_NOT_FOUND');
  });

  it('a prediction accepted by another gateway is canceled, and canceling it again is a 409 SPILLWAY_PREDICTION_FINAL', async () => {
    const submitted = await predict(d.url, 'sleep', { x: 1 });
    const canceled = await cancel(other.url, submitted.body.id);
    expect(canceled.status).toBe(200);
    expect(canceled.body.status).toBe('canceled');
    expect((await request<PredictionRecord>(`${d.url}/v1/predictions/${submitted.body.id}`)).body.status).toBe('canceled');
    const again = await cancel(d.url, submitted.body.id);
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toContain('application/problem+json');
    expect(code(again.body)).toBe('SPILLWAY_PREDICTION_FINAL');
  });

  it('a finished prediction: 409 SPILLWAY_PREDICTION_FINAL, and it keeps its outcome', async () => {
    const worker = lateWorker(d, models, 'worker-final');
    await worker.start();
    try {
      const done = await predict(d.url, 'sleep', { y: 1 }, { prefer: 'wait=10' });
      expect(done.body.status).toBe('succeeded');
      const res = await cancel(d.url, done.body.id);
      expect(res.status).toBe(409);
      expect(code(res.body)).toBe('SPILLWAY_PREDICTION_FINAL');
      expect((await request<PredictionRecord>(`${d.url}/v1/predictions/${done.body.id}`)).body.status).toBe('succeeded');
    } finally {
      await worker.drain();
    }
  });
});
