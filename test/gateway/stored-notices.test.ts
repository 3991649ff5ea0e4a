import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { headerNames } from '../../src/protocol/envelope.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request } from '../helpers/http.js';
import { RemoteStore } from '../stores/remote-store.js';

describe('final records stored by another process', () => {
  let d: Deployment;
  beforeAll(async () => {
    // No worker: only the other process below can finish the request.
    d = await startDeployment({ withWorker: false });
  });
  afterAll(() => d.close());

  it('answer a held connection here, and are counted by the process that stored them, not by this gateway', async () => {
    const held = predict(d.url, 'echo', 'x', { prefer: 'wait=20' });
    const probe = await d.broker.subscribe({ topic: `${d.prefix}.requests.echo`, group: 'probe', from: 'earliest' });
    const [message] = await probe.take(1, { timeoutMs: 20_000 });
    await probe.close();
    const id = message!.headers[headerNames.id]!;
    // The waiter was registered before the request was published, and with no worker only a
    // notice can wake it before its wait ends.
    const elsewhere = await RemoteStore.open({ kind: 'sqlite', dataDir: d.dataDir, retentionMs: 3_600_000 });
    try {
      const { created_at } = JSON.parse(message!.value) as { created_at: string };
      const done: PredictionRecord = {
        id,
        model: 'echo',
        status: 'succeeded',
        metadata: {},
        created_at,
        completed_at: new Date().toISOString(),
        attempts: 1,
        output: 'x',
        metrics: {},
      };
      expect(await elsewhere.call('put', [done])).toEqual([done]);
      await elsewhere.call('announceStored', [done]);
      const answer = await held;
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual(done);
    } finally {
      await elsewhere.close();
    }
    const metrics = (await request<string>(`${d.url}/metrics`)).body;
    expect(metrics).not.toContain('spillway_predictions_total{model="echo",status="succeeded"}');
  });
});
