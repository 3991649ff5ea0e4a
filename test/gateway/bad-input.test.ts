import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Problem } from '../../src/http/problem.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { request, type Answer } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';

let d: Deployment;
beforeAll(async () => {
  // No worker: whatever gets queued stays countable.
  d = await startDeployment({ withWorker: false, models: modelRepo({ broken: true }), busyTimeoutMs: 200 });
});
afterAll(async () => d.close());

const queued = async (model: string) => d.broker.backlog(`spillway.requests.${model}`, 'workers');

function expectProblem(res: Answer<Problem>, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  expect(res.body).toMatchObject({ status, code, type: expect.stringMatching(/^urn:spillway:problem:/), title: expect.any(String), detail: expect.any(String) });
}

const post = (model: string, body: unknown) => request<Problem>(`${d.url}/v1/models/${model}/predictions`, { body });

describe('bad input gets a clear error and queues nothing', () => {
  it('malformed JSON: 400', async () => {
    const res = await request<Problem>(`${d.url}/v1/models/iris/predictions`, { raw: '{"input": [1, 2' });
    expectProblem(res, 400, 'SPILLWAY_MALFORMED_JSON');
  });

  it('an unknown model: 404', async () => {
    const res = await post('no-such-model', { input: [1] });
    expectProblem(res, 404, 'SPILLWAY_MODEL_NOT_FOUND');
    expect(res.body.detail).toContain('no-such-model');
  });

  it.each([
    ['wrong length', [5.1, 3.5, 1.4], '/input', 'expected 4 float32 values (sepal_length, sepal_width, petal_length, petal_width), got 3 values'],
    ['wrong type', [5.1, 'wide', 1.4, 0.2], '/input/1', 'expected a number, got the string "wide"'],
    ['NaN as a string', [5.1, 'NaN', 1.4, 0.2], '/input/1', 'expected a number, got the string "NaN"'],
    ['null', [5.1, null, 1.4, 0.2], '/input/1', 'expected a number, got null'],
    ['a missing feature', { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4 }, '/input/petal_width', 'missing feature'],
  ])('input with %s: 422 saying what was expected', async (_case, input, pointer, detail) => {
    const res = await post('iris', { input });
    expectProblem(res, 422, 'SPILLWAY_INVALID_INPUT');
    expect(res.body.errors).toContainEqual({ pointer, detail });
  });

  it('a body that does not match the API schema: 422 naming the field', async () => {
    const missing = await post('iris', { metadata: {} });
    expectProblem(missing, 422, 'SPILLWAY_INVALID_REQUEST');
    expect(JSON.stringify(missing.body.errors)).toContain('input');
    const typo = await post('iris', { inputs: [1, 2, 3, 4] });
    expectProblem(typo, 422, 'SPILLWAY_INVALID_REQUEST');
    expect(typo.body.errors).toContainEqual({ pointer: '', detail: 'unknown property "inputs"' });
    const badMetadata = await post('iris', { input: [1, 2, 3, 4], metadata: 'x' });
    expectProblem(badMetadata, 422, 'SPILLWAY_INVALID_REQUEST');
  });

  it('a body over the limit: 413', async () => {
    const res = await post('echo', { input: 'x'.repeat(1_100_000) });
    expectProblem(res, 413, 'SPILLWAY_BODY_TOO_LARGE');
  });

  it('a body that is not JSON: 415', async () => {
    const res = await request<Problem>(`${d.url}/v1/models/iris/predictions`, {
      raw: 'input=1',
      headers: { 'content-type': 'text/plain' },
    });
    expectProblem(res, 415, 'SPILLWAY_UNSUPPORTED_MEDIA_TYPE');
  });

  it('an unknown prediction id: 404', async () => {
    const res = await request<Problem>(`${d.url}/v1/predictions/00000000-0000-0000-0000-000000000000`);
    expectProblem(res, 404, 'SPILLWAY_PREDICTION_NOT_FOUND');
  });

  it('an unknown route: 404', async () => {
    // Not under /v2: that prefix is the Open Inference Protocol's, whose 404s are {"error"} (docs/oip-v2.md).
    expectProblem(await request<Problem>(`${d.url}/v3/nothing`), 404, 'SPILLWAY_ROUTE_NOT_FOUND');
  });

  it('none of the refused requests was queued', async () => {
    expect(await queued('iris')).toBe(0);
    expect(await queued('echo')).toBe(0);
    const ok = await post('iris', { input: [5.1, 3.5, 1.4, 0.2] });
    expect(ok.status).toBe(202);
    expect(await queued('iris')).toBe(1);
  });
});

describe('models that fail to load', () => {
  it('a model whose config is invalid is reported with its cause; the others keep serving', async () => {
    const res = await post('misconfigured', { input: 1 });
    expectProblem(res, 503, 'SPILLWAY_MODEL_LOAD_FAILED');
    expect(res.body.detail).toContain('misconfigured');
    expect(res.body.detail).toContain('runtime');
    const listed = await request<{ models: { name: string; state: string; error?: string }[] }>(`${d.url}/v1/models`);
    expect(listed.body.models.find((m) => m.name === 'misconfigured')).toMatchObject({ state: 'failed', error: expect.stringContaining('runtime') });
    expect(listed.body.models.find((m) => m.name === 'iris')?.state).toBe('ready');
  });
});

describe('when the queue cannot be written', () => {
  it('answers 503 and nothing is half-accepted', async () => {
    const before = await queued('echo');
    // Another process holding the write lock longer than the busy timeout: the write fails.
    const blocker = new Database(join(d.dataDir, 'queue.db'));
    blocker.exec('BEGIN EXCLUSIVE');
    try {
      const res = await post('echo', { input: 'blocked' });
      expectProblem(res, 503, 'SPILLWAY_BROKER_UNAVAILABLE');
      expect(res.headers.get('retry-after')).toBe('1');
      expect(res.body.retryable).toBe(true);
    } finally {
      blocker.exec('ROLLBACK');
      blocker.close();
    }
    expect(await queued('echo')).toBe(before);
    const after = await post('echo', { input: 'unblocked' });
    expect(after.status).toBe(202);
  });
});
