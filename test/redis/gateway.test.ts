import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Problem } from '../../src/http/problem.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { startOwnRedis, type TestRedis } from './redis-server.js';

// A server of its own: the last test stops it.
let server: TestRedis;
let d: Deployment;
beforeAll(async () => {
  server = await startOwnRedis();
  d = await startDeployment({ broker: server.url });
});
afterAll(async () => {
  await d.close();
  server.stop();
});

it('serves a prediction end to end over Redis Streams', async () => {
  const res = await predict(d.url, 'echo', { hello: 'redis' });
  expect(res.status).toBe(202);
  const final = await waitForFinal(d.url, res.body.id);
  expect(final.status).toBe('succeeded');
});

it("refuses a request over the broker's message limit with 413, and queues nothing", async () => {
  const before = await d.broker.backlog(`${d.prefix}.requests.echo`, 'workers');
  const res = await request<Problem>(`${d.url}/v1/models/echo/predictions`, { body: { input: 'x'.repeat(1_010_000) } });
  expect(res.status).toBe(413);
  expect(res.body.code).toBe('SPILLWAY_BODY_TOO_LARGE');
  expect(await d.broker.backlog(`${d.prefix}.requests.echo`, 'workers')).toBe(before);
});

it('answers 503 with Retry-After while Redis is down, without hanging, and serves again once it is back', async () => {
  server.stop();
  const started = Date.now();
  const res = await request<Problem>(`${d.url}/v1/models/echo/predictions`, { body: { input: 'down' } });
  expect(Date.now() - started).toBeLessThan(5000);
  expect(res.status).toBe(503);
  expect(res.body.code).toBe('SPILLWAY_BROKER_UNAVAILABLE');
  expect(res.headers.get('retry-after')).toMatch(/^\d+$/);

  await server.start();
  let accepted = await predict(d.url, 'echo', { hello: 'again' });
  for (let i = 0; i < 50 && accepted.status !== 202; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    accepted = await predict(d.url, 'echo', { hello: 'again' });
  }
  expect(accepted.status).toBe(202);
  expect((await waitForFinal(d.url, accepted.body.id)).status).toBe('succeeded');
});
