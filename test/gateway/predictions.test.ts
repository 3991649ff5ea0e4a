import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { samples, testBrokers } from '../helpers/paths.js';

interface Classification {
  label: string;
  class_index: number;
  probabilities: Record<string, number>;
}

describe.each(testBrokers)('on the $name broker', ({ url }) => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ models: modelRepo({ sleep: { per_batch_ms: 400 } }), maxWaitS: 30, broker: url });
  });
  afterAll(async () => d.close());

  function expectFinished(record: PredictionRecord) {
    expect(record.status).toBe('succeeded');
    for (const key of ['created_at', 'started_at', 'completed_at'] as const) {
      expect(Number.isNaN(Date.parse(record[key] ?? ''))).toBe(false);
    }
    expect(record.metrics.queue_ms).toBeGreaterThanOrEqual(0);
    expect(record.metrics.inference_ms).toBeGreaterThanOrEqual(0);
    expect(record.metrics.total_ms).toBeGreaterThanOrEqual(record.metrics.queue_ms ?? 0);
  }

  describe.each(['iris', 'digits'] as const)('%s end to end', (model) => {
    it('Prefer: wait answers 200 with the right class for every known sample', async () => {
      for (const sample of samples(model)) {
        const res = await predict(d.url, model, sample.input, { prefer: 'wait=10' });
        expect(res.status).toBe(200);
        expect(res.headers.get('preference-applied')).toBe('wait=10');
        expect(res.headers.get('location')).toBe(`/v1/predictions/${res.body.id}`);
        expectFinished(res.body);
        const output = res.body.output as Classification;
        expect(output.label).toBe(sample.label_name);
        expect(output.class_index).toBe(sample.label);
        expect(Object.keys(output.probabilities)).toHaveLength(model === 'iris' ? 3 : 10);
        // What the client was told is what a poll says.
        const polled = await request<PredictionRecord>(`${d.url}${res.headers.get('location')}`);
        expect(polled.body).toEqual(res.body);
      }
    });

    it('without Prefer answers 202 at once; polling gives the result', async () => {
      const [sample] = samples(model);
      const res = await predict(d.url, model, sample!.input);
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ model, status: 'queued', attempts: 0 });
      expect(res.headers.get('location')).toBe(`/v1/predictions/${res.body.id}`);
      const final = await waitForFinal(d.url, res.body.id);
      expectFinished(final);
      expect((final.output as Classification).label).toBe(sample!.label_name);
    });
  });

  describe('answer modes', () => {
    it('answers 202 with Location when the wait runs out, and the prediction still completes', async () => {
      const res = await predict(d.url, 'sleep', { n: 1 }, { prefer: 'wait=0.1' });
      expect(res.status).toBe(202);
      expect(['queued', 'running']).toContain(res.body.status);
      const final = await waitForFinal(d.url, res.body.id);
      expect(final.output).toEqual({ input: { n: 1 }, batch_size: 1, service_ms: 400 });
    });

    it('shows running while the model works', async () => {
      const res = await predict(d.url, 'sleep', { n: 2 });
      let seen: string | undefined;
      for (let i = 0; i < 100 && seen !== 'running'; i++) {
        seen = (await request<PredictionRecord>(`${d.url}/v1/predictions/${res.body.id}`)).body.status;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(seen).toBe('running');
      await waitForFinal(d.url, res.body.id);
    });

    it('caps the wait at the configured maximum and honours respond-async', async () => {
      const capped = await predict(d.url, 'echo', 1, { prefer: 'wait=999' });
      expect(capped.status).toBe(200);
      expect(capped.headers.get('preference-applied')).toBe('wait=30');
      const async = await predict(d.url, 'echo', 1, { prefer: 'respond-async, wait=10' });
      expect(async.status).toBe(202);
    });

    it('keeps metadata and takes the raw named-tensor form', async () => {
      const res = await request<PredictionRecord>(`${d.url}/v1/models/iris/predictions`, {
        body: {
          input: { inputs: [{ name: 'float_input', datatype: 'FP32', shape: [2, 4], data: [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3] }] },
          metadata: { customer: 'c-42' },
        },
        headers: { prefer: 'wait=10' },
      });
      expect(res.status).toBe(200);
      expect(res.body.metadata).toEqual({ customer: 'c-42' });
      const outputs = (res.body.output as { outputs: { name: string; shape: number[]; data: number[] }[] }).outputs;
      expect(outputs.find((o) => o.name === 'label')).toMatchObject({ shape: [2], data: [0, 2] });
    });

    it('echoes any JSON through the echo handler', async () => {
      const input = { nested: { list: [1, 'two', null, true] } };
      const res = await predict(d.url, 'echo', input, { prefer: 'wait=10' });
      expect(res.body.output).toEqual(input);
    });
  });

  describe('models, health, metrics and the API description', () => {
    it('lists models with their config, queue depth and the workers seen', async () => {
      const res = await request<{ models: { name: string; state: string; queue_depth: number; workers: { state: string }[] }[] }>(
        `${d.url}/v1/models`,
      );
      expect(res.status).toBe(200);
      expect(res.body.models.map((m) => m.name).sort()).toEqual(['digits', 'echo', 'iris', 'sleep']);
      const iris = await request<Record<string, unknown>>(`${d.url}/v1/models/iris`);
      expect(iris.body).toMatchObject({
        name: 'iris',
        state: 'ready',
        runtime: 'onnx',
        features: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'],
        labels: ['setosa', 'versicolor', 'virginica'],
        inputs: [{ name: 'float_input', dtype: 'float32', shape: [-1, 4] }],
        queue_depth: 0,
        workers: [{ worker: 'test-worker', state: 'ready' }],
      });
    });

    it('answers the probes', async () => {
      expect((await request(`${d.url}/healthz`)).status).toBe(200);
      expect((await request(`${d.url}/readyz`)).body).toEqual({ status: 'ready' });
    });

    it('exports Prometheus metrics for requests, outcomes, queue depth and latency', async () => {
      await predict(d.url, 'echo', 'metrics', { prefer: 'wait=10' });
      const res = await request<string>(`${d.url}/metrics`);
      expect(res.headers.get('content-type')).toContain('text/plain');
      for (const line of [
        'spillway_requests_total{model="echo",code="200"}',
        'spillway_predictions_total{model="echo",status="succeeded"}',
        'spillway_queue_depth{model="iris"} 0',
        'spillway_prediction_duration_seconds_bucket',
        'spillway_queue_wait_seconds_bucket',
        'spillway_inference_duration_seconds_bucket',
        // prom-client's default metrics, under our prefix once.
        'spillway_process_cpu_user_seconds_total',
        'spillway_nodejs_eventloop_lag_seconds',
      ]) {
        expect(res.body).toContain(line);
      }
      expect(res.body).not.toContain('spillway_process_process_');
    });

    it('describes itself as OpenAPI 3.1 generated from the route schemas', async () => {
      const res = await request<{ openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } }>(
        `${d.url}/openapi.json`,
      );
      expect(res.body.openapi).toBe('3.1.0');
      expect(Object.keys(res.body.paths)).toEqual(
        expect.arrayContaining(['/v1/models/{model}/predictions', '/v1/predictions/{id}', '/v1/models', '/v1/models/{model}', '/healthz', '/readyz', '/metrics']),
      );
      expect(Object.keys(res.body.components.schemas)).toEqual(expect.arrayContaining(['PredictionRecord', 'Problem', 'ModelSummary']));
    });
  });
});
