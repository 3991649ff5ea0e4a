import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { pngBase64, pngSamples, type TopClass } from '../helpers/digits-image.js';
import { predict, request } from '../helpers/http.js';
import { modelsDir } from '../helpers/paths.js';

/**
 * The shipped digits-image pipeline, served from the real models/ folder: every sample PNG goes
 * through the gateway and three stream steps, and must come out as the chained models say.
 */
describe('the digits-image demo pipeline', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ models: modelsDir });
  });
  afterAll(async () => d.close());

  it('is listed as a pipeline of its three models', async () => {
    const res = await request(`${d.url}/v1/models/digits-image`);
    expect(res.body).toMatchObject({ kind: 'pipeline', steps: ['digits-preprocess', 'digits', 'digits-top3'] });
  });

  it('classifies the sample PNGs through its three steps, as accurately as the models chained by hand', async () => {
    const answers = await Promise.all(pngSamples.map((s) => predict(d.url, 'digits-image', { image: pngBase64(s) }, { prefer: 'wait=30' })));
    const records = answers.map((a) => a.body as PredictionRecord & { output: { top: TopClass[] } });
    for (const r of records) {
      expect(r).toMatchObject({ status: 'succeeded', model: 'digits-image', step: 'digits-top3' });
      expect(r.steps?.map((s) => `${s.model}:${s.status}`)).toEqual(['digits-preprocess:succeeded', 'digits:succeeded', 'digits-top3:succeeded']);
      expect(r.output.top).toHaveLength(3);
    }
    const top1 = records.filter((r, i) => r.output.top[0]?.label === String(pngSamples[i]!.label)).length;
    const top3 = records.filter((r, i) => r.output.top.some((t) => t.label === String(pngSamples[i]!.label))).length;
    // The same floors as test/runtimes/digits-image.test.ts, which measures 18 and 19 of 20.
    expect(top1 / records.length).toBeGreaterThanOrEqual(0.8);
    expect(top3 / records.length).toBeGreaterThanOrEqual(0.9);
  });

  it('refuses a body without an image at submit, and fails a step on a picture that is not a PNG, naming the step', async () => {
    const refused = await predict(d.url, 'digits-image', { picture: 'x' }, { prefer: 'wait=10' });
    expect(refused.status).toBe(422);
    const failed = await predict(d.url, 'digits-image', { image: Buffer.from('not a png at all').toString('base64') }, { prefer: 'wait=20' });
    expect(failed.body).toMatchObject({ status: 'failed', step: 'digits-preprocess', error: { code: 'SPILLWAY_MODEL_FAILED' } });
    expect(failed.body.error?.message).toMatch(/invalid image/);
  });
});
