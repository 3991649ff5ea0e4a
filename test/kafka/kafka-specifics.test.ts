import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Problem } from '../../src/http/problem.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request } from '../helpers/http.js';
import { testKafkaUrl as kafka } from '../helpers/paths.js';

let d: Deployment;
beforeAll(async () => {
  // No worker: requests stay on the topic where the test can read them.
  d = await startDeployment({ broker: kafka, withWorker: false });
});
afterAll(async () => d.close());

it('request records carry the prediction id and the W3C traceparent as Kafka headers', async () => {
  const topic = `${d.prefix}.requests.echo`;
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const res = await predict(d.url, 'echo', { hello: 'kafka' }, { traceparent });
  expect(res.status).toBe(202);
  const sub = await d.broker.subscribe({ topic, group: 'header-check', ephemeral: true });
  const [record] = await sub.take(1, { timeoutMs: 10_000 });
  await sub.close();
  expect(record?.key).toBe(res.body.id);
  expect(record?.headers).toMatchObject({ 'spillway-id': res.body.id, 'spillway-model': 'echo', traceparent });
  expect(JSON.parse(record!.value)).toMatchObject({ v: 1, id: res.body.id, model: 'echo', input: { hello: 'kafka' }, traceparent });
});

it("a request over the broker's message limit is refused with 413, not lost in the producer", async () => {
  const before = await d.broker.backlog(`${d.prefix}.requests.echo`, 'workers');
  // Under the gateway's 1 MiB body limit, over Kafka's ~1 MB message limit.
  const res = await request<Problem>(`${d.url}/v1/models/echo/predictions`, { body: { input: 'x'.repeat(1_010_000) } });
  expect(res.status).toBe(413);
  expect(res.body.code).toBe('SPILLWAY_BODY_TOO_LARGE');
  expect(res.body.detail).toContain("queue's message limit");
  expect(await d.broker.backlog(`${d.prefix}.requests.echo`, 'workers')).toBe(before);
});
