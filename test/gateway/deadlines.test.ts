import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { statusesOnStream } from '../helpers/stream.js';
import { inBrokerLegSuite, testBrokers } from '../helpers/paths.js';

const code = (body: unknown) => (body as { code?: string }).code;

// Refused at the gateway before any broker is involved: the default suite runs these.
describe.skipIf(inBrokerLegSuite)('deadlines: bad input', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ withWorker: false });
  });
  afterAll(() => d.close());

  it.each([
    ['a deadline in the past', { deadline: '2020-01-01T00:00:00Z' }, '/deadline'],
    ['a deadline that is not RFC 3339', { deadline: 'tomorrow' }, '/deadline'],
    ['a date without a time', { deadline: '2999-01-01' }, '/deadline'],
    ['both deadline and timeout_ms', { deadline: '2999-01-01T00:00:00Z', timeout_ms: 1000 }, '/timeout_ms'],
  ])('%s: 422 SPILLWAY_INVALID_DEADLINE, nothing queued', async (_name, extra, pointer) => {
    const res = await request(`${d.url}/v1/models/echo/predictions`, { body: { input: 'x', ...extra } });
    expect(res.status).toBe(422);
    expect(code(res.body)).toBe('SPILLWAY_INVALID_DEADLINE');
    expect((res.body as { errors: { pointer: string }[] }).errors[0]?.pointer).toBe(pointer);
    expect(await d.broker.backlog(`${d.prefix}.requests.echo`, 'workers')).toBe(0);
  });

  it('timeout_ms must be a positive integer', async () => {
    const res = await request(`${d.url}/v1/models/echo/predictions`, { body: { input: 'x', timeout_ms: 0 } });
    expect(res.status).toBe(422);
    expect(code(res.body)).toBe('SPILLWAY_INVALID_REQUEST');
  });
});

describe.each(testBrokers)('a deadline expiring while the request is queued, on the $name broker', ({ url }) => {
  // One slot busy for 1.5 s: a request queued behind it with a 300 ms timeout cannot be started in time.
  const models = modelRepo({ sleep: { per_batch_ms: 1500, concurrency: 1 } });
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ models, broker: url });
  });
  afterAll(() => d.close());

  it('a held client, a poll and the response stream all see expired, and no worker starts it', async () => {
    // The slot must be busy before the late request arrives (on Kafka the worker may still be
    // joining its group, and would then be free to take the late one first).
    const blocker = await predict(d.url, 'sleep', { blocker: true }, { prefer: 'respond-async' });
    for (let i = 0; i < 400; i++) {
      const seen = await request<PredictionRecord>(`${d.url}/v1/predictions/${blocker.body.id}`);
      if (seen.body.status === 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const held = await request<PredictionRecord>(`${d.url}/v1/models/sleep/predictions`, {
      body: { input: { late: true }, timeout_ms: 300 },
      headers: { prefer: 'wait=10' },
    });
    // Answered when the deadline passed, not when the wait ran out.
    expect(held.status).toBe(200);
    expect(held.body).toMatchObject({ status: 'expired', error: { code: 'SPILLWAY_DEADLINE_EXCEEDED' } });
    expect(held.body.deadline).toBeDefined();
    expect(held.body.started_at).toBeUndefined();

    expect((await waitForFinal(d.url, blocker.body.id)).status).toBe('succeeded');
    // The worker reaches the request after the blocker, sees its deadline passed and does not run it.
    for (let i = 0; i < 100 && (await d.broker.backlog(`${d.prefix}.requests.sleep`, 'workers')) > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await d.broker.backlog(`${d.prefix}.requests.sleep`, 'workers')).toBe(0);
    const polled = await waitForFinal(d.url, held.body.id);
    expect(polled.status).toBe('expired');
    const statuses = await statusesOnStream(d.broker, `${d.prefix}.responses`, held.body.id);
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 'expired')).toBe(true);
  });

  it('a model default timeout applies when the request gives none, and a poll sees the expiry', async () => {
    const withDefault = modelRepo({ sleep: { per_batch_ms: 1500, concurrency: 1, timeout_ms: 200 } });
    const e = await startDeployment({ models: withDefault, withWorker: false, broker: url });
    try {
      const res = await predict(e.url, 'sleep', { i: 1 });
      expect(res.status).toBe(202);
      expect(res.body.deadline).toBeDefined();
      expect(Date.parse(res.body.deadline!) - Date.parse(res.body.created_at)).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 600));
      const polled = await request<PredictionRecord>(`${e.url}/v1/predictions/${res.body.id}`);
      expect(polled.body.status).toBe('expired');
    } finally {
      await e.close();
    }
  });
});
