import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { stepTimings } from '../../src/runtimes/step-stopwatch.js';

let d: Deployment;
beforeAll(async () => {
  d = await startDeployment({ models: modelRepo({ fixtures: ['staged'] }) });
});
afterAll(async () => d.close());

const steps = ['decode', 'preprocess', 'inference', 'postprocess'] as const;

async function succeeded(model: string, input: unknown): Promise<PredictionRecord> {
  const res = await predict(d.url, model, input, { prefer: 'wait=10' });
  expect(res.body).toMatchObject({ status: 'succeeded' });
  return res.body;
}

describe('the record times each step of serving', () => {
  it('an onnx model: decode, preprocess, inference and postprocess', async () => {
    const { metrics } = await succeeded('iris', [5.1, 3.5, 1.4, 0.2]);
    for (const step of steps) expect(metrics[`${step}_ms`]).toBeGreaterThanOrEqual(0);
  });

  it('a handler with preprocess and postprocess hooks: all four', async () => {
    const record = await succeeded('staged', { value: 21 });
    expect(record.output).toEqual({ doubled: 42, postprocessed: true });
    for (const step of steps) expect(record.metrics[`${step}_ms`]).toBeGreaterThanOrEqual(0);
  });

  it('a handler without hooks: decode and inference only', async () => {
    const { metrics } = await succeeded('echo', 'hi');
    expect(metrics.decode_ms).toBeGreaterThanOrEqual(0);
    expect(metrics.inference_ms).toBeGreaterThanOrEqual(0);
    expect(metrics).not.toHaveProperty('preprocess_ms');
    expect(metrics).not.toHaveProperty('postprocess_ms');
  });

  it('a request a hook refused fails with the steps that ran timed', async () => {
    const res = await predict(d.url, 'staged', { value: 1, fail: 'postprocess' }, { prefer: 'wait=10' });
    expect(res.body).toMatchObject({ status: 'failed', error: { code: 'SPILLWAY_MODEL_FAILED', message: 'postprocess refused it' } });
    for (const step of steps) expect((res.body).metrics[`${step}_ms`]).toBeGreaterThanOrEqual(0);
  });

  it('/metrics has a histogram per step, and keeps the inference histogram', async () => {
    await succeeded('iris', [6.7, 3.0, 5.2, 2.3]);
    const body = (await request<string>(`${d.url}/metrics`)).body;
    for (const step of steps) expect(body).toMatch(new RegExp(`^spillway_step_duration_seconds_count\\{model="iris",step="${step}"\\} [1-9]`, 'm'));
    expect(body).toMatch(/^spillway_step_duration_seconds_count\{model="echo",step="inference"\} [1-9]/m);
    expect(body).not.toContain('spillway_step_duration_seconds_count{model="echo",step="preprocess"}');
    expect(body).toMatch(/^spillway_inference_duration_seconds_count\{model="iris"\} [1-9]/m);
  });
});

describe('stepTimings', () => {
  it('takes the steps a runtime lapped, and decode from the worker', () => {
    expect(stepTimings(0.5, { preprocess: 1, inference: 2 }, 9)).toEqual({ decode_ms: 0.5, preprocess_ms: 1, inference_ms: 2, postprocess_ms: undefined });
  });

  it('counts the whole predict() as inference for a runtime that laps no steps', () => {
    expect(stepTimings(0.5, {}, 9)).toMatchObject({ decode_ms: 0.5, inference_ms: 9 });
  });
});
