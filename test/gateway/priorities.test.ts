import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { workerGroup } from '../../src/protocol/topics.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { inBrokerLegSuite, testBrokers } from '../helpers/paths.js';

const deployments: Deployment[] = [];
afterEach(async () => {
  await Promise.all(deployments.splice(0).map((d) => d.close()));
});

/** The gate fixture (runs until its release file exists) with priorities and `extra` in its model.yaml. */
function gateRepo(extra: string): string {
  const models = modelRepo({ fixtures: ['gate'] });
  appendFileSync(join(models, 'gate', 'model.yaml'), `\npriorities: true\n${extra}`);
  return models;
}

function submit(d: Deployment, input: unknown, priority?: unknown) {
  return request<PredictionRecord & { code?: string; detail?: string }>(`${d.url}/v1/models/gate/predictions`, {
    body: { input, ...(priority === undefined ? {} : { priority }) },
  });
}

/** Queues the blocker on the one slot and waits until it runs: what comes after waits in the queue. */
async function block(d: Deployment): Promise<{ blocker: string; release: string; id: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-prio-'));
  const blocker = join(dir, 'blocker');
  const first = await submit(d, { release: blocker });
  expect(first.status).toBe(202);
  await vi.waitFor(async () => expect((await request<PredictionRecord>(`${d.url}/v1/predictions/${first.body.id}`)).body.status).toBe('running'), {
    timeout: 30_000,
    interval: 50,
  });
  return { blocker, release: join(dir, 'release'), id: first.body.id };
}

describe.each(testBrokers)('priorities on the $name broker', ({ name, url }) => {
  it('a high request overtakes a queued backlog of low ones, on topics of their own', async () => {
    const d = await startDeployment({ broker: url, models: gateRepo(''), concurrency: 1 });
    deployments.push(d);
    const { blocker, release, id: blockerId } = await block(d);
    const queued: { id: string; priority: string }[] = [];
    // Classes by name and by number (1–3 low, 7–9 high), a normal one between.
    for (let i = 0; i < 10; i++) queued.push({ id: (await submit(d, { release }, i % 2 === 0 ? 'low' : 2)).body.id, priority: 'low' });
    queued.push({ id: (await submit(d, { release })).body.id, priority: 'normal' });
    const high = await submit(d, { release }, 9);
    expect(high.status).toBe(202);
    expect(high.body.priority).toBe('high');
    queued.push({ id: high.body.id, priority: 'high' });

    const topic = (suffix: string) => `${d.prefix}.requests.gate${suffix}`;
    expect(await d.broker.backlog(topic('.low'), workerGroup)).toBe(10);
    expect(await d.broker.backlog(topic('.high'), workerGroup)).toBe(1);
    // The blocker (running) and the normal request: normal stays on the model's own topic.
    expect(await d.broker.backlog(topic(''), workerGroup)).toBe(2);
    expect((await request<{ queue_depth: number }>(`${d.url}/v1/models/gate`)).body.queue_depth).toBe(13);
    expect((await request<PredictionRecord>(`${d.url}/v1/predictions/${queued[0]!.id}`)).body.priority).toBe('low');

    writeFileSync(blocker, '');
    writeFileSync(release, '');
    const finals = await Promise.all(queued.map(async (q) => ({ ...q, record: await waitForFinal(d.url, q.id, 60_000) })));
    for (const { record } of finals) expect(record.status).toBe('succeeded');
    expect((await waitForFinal(d.url, blockerId, 60_000)).status).toBe('succeeded');
    const order = finals.sort((a, b) => (a.record.started_at ?? '').localeCompare(b.record.started_at ?? '')).map((f) => f.priority);
    if (name === 'kafka') {
      // A Kafka take sees what its consumer has fetched so far (docs/priorities.md): the high
      // request is fetched within milliseconds of its publish, long before the slot is free, but
      // that is a race, so here it need only pass most of the low backlog.
      expect(order.indexOf('high')).toBeLessThan(3);
      expect(order.slice(0, 3)).toContain('normal');
      return;
    }
    expect(order).toEqual(['high', 'normal', ...Array<string>(10).fill('low')]);
  });

  it("hands a pipeline's next step to the next model's topic of the same class", async () => {
    const models = modelRepo({ fixtures: ['words', 'count'] });
    appendFileSync(join(models, 'count', 'model.yaml'), '\npriorities: true\n');
    mkdirSync(join(models, 'wordcount'));
    writeFileSync(join(models, 'wordcount', 'pipeline.yaml'), 'steps:\n  - model: words\n  - model: count\n');
    const d = await startDeployment({ broker: url, models });
    deployments.push(d);
    // A probe group on the second step's high topic, from its start: the step's request shows up there.
    const probe = await d.broker.subscribe({ topic: `${d.prefix}.requests.count.high`, group: 'probe', from: 'earliest', ephemeral: true });
    const submitted = await request<PredictionRecord>(`${d.url}/v1/models/wordcount/predictions`, { body: { input: { text: 'first things first' }, priority: 'high' } });
    expect(submitted.status).toBe(202);
    expect(await waitForFinal(d.url, submitted.body.id, 60_000)).toMatchObject({ status: 'succeeded', priority: 'high' });
    const [handedOver] = await probe.take(1, { timeoutMs: 30_000 });
    expect(handedOver?.key).toBe(submitted.body.id);
    await probe.close();
    // Without a priority the same pipeline stays on the topics it always used.
    expect((await waitForFinal(d.url, (await predict(d.url, 'wordcount', { text: 'plain' })).body.id, 60_000)).status).toBe('succeeded');
  });
});

describe.skipIf(inBrokerLegSuite)('priority limits', () => {
  it("refuses a class past its share of max_queue_depth with 429 and Retry-After, and keeps room for more urgent ones", async () => {
    const d = await startDeployment({ models: gateRepo('max_queue_depth: 4\npriority_limits: { low: 0.5, normal: 0.75 }\n'), concurrency: 1 });
    deployments.push(d);
    const { blocker, release } = await block(d);
    // Depth 1 (the blocker): low is accepted below 2, normal below 3, high below 4.
    expect((await submit(d, { release }, 'low')).status).toBe(202);
    const low = await submit(d, { release }, 'low');
    expect(low.status).toBe(429);
    expect(low.headers.get('content-type')).toContain('application/problem+json');
    expect(low.body.code).toBe('SPILLWAY_PRIORITY_QUEUE_FULL');
    expect(Number(low.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await d.broker.backlog(`${d.prefix}.requests.gate.low`, workerGroup)).toBe(1);
    expect((await submit(d, { release })).status).toBe(202);
    expect((await submit(d, { release })).body.code).toBe('SPILLWAY_PRIORITY_QUEUE_FULL');
    expect((await submit(d, { release }, 'high')).status).toBe(202);
    // The whole limit is every class's.
    expect((await submit(d, { release }, 'high')).body.code).toBe('SPILLWAY_QUEUE_FULL');
    writeFileSync(blocker, '');
    writeFileSync(release, '');
  });

  it('refuses a priority outside the stated range or classes with 422, and a model without priorities serves it in arrival order', async () => {
    const d = await startDeployment({ models: modelRepo({ fixtures: ['gate'] }), concurrency: 1 });
    deployments.push(d);
    for (const priority of [0, 10, 5.5, 'urgent']) expect((await submit(d, { release: 'x' }, priority)).status).toBe(422);
    const { blocker, release } = await block(d);
    const high = await submit(d, { release }, 'high');
    expect(high.body.priority).toBe('high');
    // Without priorities: true the model has its one topic, and the request waits in it.
    expect(await d.broker.backlog(`${d.prefix}.requests.gate`, workerGroup)).toBe(2);
    writeFileSync(blocker, '');
    writeFileSync(release, '');
    expect((await waitForFinal(d.url, high.body.id, 60_000)).priority).toBe('high');
  });
});
