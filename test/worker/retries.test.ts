import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { testBrokers } from '../helpers/paths.js';
import type { Delivery } from '../../src/brokers/broker.js';

describe.each(testBrokers)('on the $name broker', ({ url }) => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ models: modelRepo({ fixtures: ['flaky'] }), broker: url });
  });
  afterAll(async () => d.close());

  async function deadLetters(): Promise<{ reason: { code: string }; attempts: number; value: string }[]> {
    const sub = await d.broker.subscribe({ topic: `${d.prefix}.dlq`, group: `test-${Math.random()}`, ephemeral: true });
    const got: Delivery[] = [];
    for (let more = await sub.take(100, { timeoutMs: 3000 }); more.length > 0; more = await sub.take(100, { timeoutMs: 300 })) got.push(...more);
    await sub.close();
    return got.map((m) => JSON.parse(m.value) as { reason: { code: string }; attempts: number; value: string });
  }

  describe('model errors', () => {
    it('a retryable error is retried, and the prediction succeeds within max_attempts', async () => {
      const res = await predict(d.url, 'flaky', { key: 'a', fail_times: 2, retryable: true }, { prefer: 'wait=10' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: 'succeeded', attempts: 3, output: { calls: 3 } });
    });

    it('a non-retryable error fails at once with the error', async () => {
      const res = await predict(d.url, 'flaky', { key: 'b', fail_times: 5, retryable: false }, { prefer: 'wait=10' });
      expect(res.body).toMatchObject({
        status: 'failed',
        attempts: 1,
        error: { code: 'SPILLWAY_MODEL_FAILED', message: 'failure 1 of 5', retryable: false },
      });
    });

    it('a retryable error that never clears fails after max_attempts and is dead-lettered', async () => {
      const res = await predict(d.url, 'flaky', { key: 'c', fail_times: 99, retryable: true }, { prefer: 'wait=10' });
      expect(res.body).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'SPILLWAY_MODEL_FAILED', message: 'failure 3 of 99' } });
      const letters = await deadLetters();
      expect(letters.some((l) => l.value.includes(res.body.id) && l.attempts === 3)).toBe(true);
    });

    it('a message on a request topic that is not a request is dead-lettered and the worker carries on', async () => {
      await d.broker.publish(`${d.prefix}.requests.flaky`, [{ value: 'not json at all' }, { value: '{"v":1,"id":"x"}' }]);
      const res = await predict(d.url, 'flaky', { key: 'd', fail_times: 0 }, { prefer: 'wait=10' });
      expect(res.body.status).toBe('succeeded');
      const letters = await deadLetters();
      expect(letters.filter((l) => l.reason.code === 'SPILLWAY_UNDECODABLE_MESSAGE').map((l) => l.value)).toEqual(
        expect.arrayContaining(['not json at all', '{"v":1,"id":"x"}']),
      );
      // The one with a readable id also gets an outcome.
      expect((await waitForFinal(d.url, 'x')).status).toBe('failed');
    });
  });
});
