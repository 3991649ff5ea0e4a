import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request } from '../helpers/http.js';

/**
 * The README's cancel example on the demo models as shipped: the sleep model takes a request's
 * own `sleep_ms`, so a cancel sent a moment later finds it running and stops it.
 */
describe("the README's cancel example", () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment();
  });
  afterAll(() => d.close());

  it('cancels a long sleep request while it runs, and a second cancel answers 409', async () => {
    const submitted = await predict(d.url, 'sleep', { sleep_ms: 60_000 });
    expect(submitted.status).toBe(202);
    const id = submitted.body.id;
    for (let i = 0; i < 400; i++) {
      if ((await request<PredictionRecord>(`${d.url}/v1/predictions/${id}`)).body.status === 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const canceled = await request<PredictionRecord>(`${d.url}/v1/predictions/${id}/cancel`, { method: 'POST' });
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({ id, status: 'canceled', attempts: 1 });
    expect(canceled.body.started_at).toBeDefined();
    const again = await request<{ code: string }>(`${d.url}/v1/predictions/${id}/cancel`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('SPILLWAY_PREDICTION_FINAL');
    // Requests nobody canceled still run, at the model's own 50 ms.
    const next = await predict(d.url, 'sleep', { after: true }, { prefer: 'wait=10' });
    expect(next.body).toMatchObject({ status: 'succeeded', output: { service_ms: 50 } });
  });
});
