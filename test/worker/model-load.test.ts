import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';

let d: Deployment;
beforeAll(async () => {
  d = await startDeployment({ models: modelRepo({ broken: true }) });
});
afterAll(async () => d.close());

it('a worker names the model it cannot load and the cause, and serves the others', async () => {
  const corrupt = await request<{ workers: { worker: string; state: string; error?: string }[] }>(`${d.url}/v1/models/corrupt`);
  expect(corrupt.body.workers).toEqual([
    expect.objectContaining({ worker: 'test-worker', state: 'failed', error: expect.stringMatching(/.+/) }),
  ]);
  const iris = await predict(d.url, 'iris', [5.1, 3.5, 1.4, 0.2], { prefer: 'wait=10' });
  expect(iris.status).toBe(200);
  expect((iris.body.output as { label: string }).label).toBe('setosa');
});
