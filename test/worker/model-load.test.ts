import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';

let d: Deployment;
beforeAll(async () => {
  d = await startDeployment({ models: modelRepo({ broken: true }) });
});
afterAll(async () => d.close());

type Sighting = { worker: string; state: string; error?: string; load_ms?: number };

it('a worker names the model it cannot load and the cause, and serves the others', async () => {
  const corrupt = await request<{ workers: Sighting[] }>(`${d.url}/v1/models/corrupt`);
  expect(corrupt.body.workers).toEqual([
    expect.objectContaining({ worker: 'test-worker', state: 'failed', error: expect.stringMatching(/.+/) }),
  ]);
  expect(corrupt.body.workers[0]).not.toHaveProperty('load_ms');
  const iris = await predict(d.url, 'iris', [5.1, 3.5, 1.4, 0.2], { prefer: 'wait=10' });
  expect(iris.status).toBe(200);
  expect((iris.body.output as { label: string }).label).toBe('setosa');
});

it('a worker reports how long each model took to load, in the API and as a gauge', async () => {
  const iris = await request<{ workers: Sighting[] }>(`${d.url}/v1/models/iris`);
  expect(iris.body.workers).toEqual([expect.objectContaining({ worker: 'test-worker', state: 'ready', load_ms: expect.any(Number) })]);
  expect(iris.body.workers[0]!.load_ms).toBeGreaterThanOrEqual(0);
  const metrics = (await request<string>(`${d.url}/metrics`)).body;
  expect(metrics).toMatch(/^spillway_model_load_seconds\{model="iris",worker="test-worker"\} \d/m);
  expect(metrics).not.toContain('spillway_model_load_seconds{model="corrupt"');
});
