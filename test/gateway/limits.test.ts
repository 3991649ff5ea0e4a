import { expect, it } from 'vitest';
import { startDeployment } from '../helpers/deployment.js';
import { predict } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';

it('past the cap on held connections, Prefer: wait gets 202 at once', async () => {
  const d = await startDeployment({ withWorker: false, maxWaiters: 0 });
  const started = Date.now();
  const res = await predict(d.url, 'echo', 'x', { prefer: 'wait=20' });
  expect(res.status).toBe(202);
  expect(res.headers.get('preference-applied')).toBeNull();
  expect(Date.now() - started).toBeLessThan(5000);
  await d.close();
});

it('a gateway shutting down answers its held connections with 202, and the work still completes', async () => {
  const d = await startDeployment({ withWorker: false, models: modelRepo({ sleep: { per_batch_ms: 100 } }) });
  const held = predict(d.url, 'sleep', 'x', { prefer: 'wait=30' });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const closing = d.gateway.close();
  const res = await held;
  expect(res.status).toBe(202);
  expect(res.body.status).toBe('queued');
  await closing;
  expect(await d.broker.backlog('spillway.requests.sleep', 'workers')).toBe(1);
  await d.close();
});
