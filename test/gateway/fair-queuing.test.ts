import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { workerGroup } from '../../src/protocol/topics.js';
import { addKey } from '../helpers/api-keys.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { testBrokers } from '../helpers/paths.js';

const deployments: Deployment[] = [];
afterEach(async () => {
  await Promise.all(deployments.splice(0).map((d) => d.close()));
});

describe.each(testBrokers)('fair queuing on the $name broker', ({ name, url }) => {
  it("puts each listed tenant's requests in a lane of its own, and a quiet tenant goes ahead of a flood", async () => {
    // One slot, held by a request that runs until the test releases it: everything after it
    // is queued before any of it is taken, so the order of takes is the scheduler's alone.
    const models = modelRepo({ fixtures: ['gate'] });
    const d = await startDeployment({
      broker: url,
      models,
      concurrency: 1,
      tenancy: { auth: 'keys', tenants: { flood: {}, quiet: {} }, laneWeights: new Map([['flood', 1], ['quiet', 1]]) },
    });
    deployments.push(d);
    const flood = await addKey(d.store, 'flood', ['predict', 'read']);
    const quiet = await addKey(d.store, 'quiet', ['predict', 'read']);
    const anonymous = await addKey(d.store, 'unlisted', ['predict', 'read']);
    const dir = mkdtempSync(join(tmpdir(), 'spillway-fair-'));
    const blocker = join(dir, 'blocker');
    const release = join(dir, 'release');

    const first = await predict(d.url, 'gate', { release: blocker }, flood.auth);
    expect(first.status).toBe(202);
    await vi.waitFor(
      async () => expect((await request<PredictionRecord>(`${d.url}/v1/predictions/${first.body.id}`, { headers: flood.auth })).body.status).toBe('running'),
      { timeout: 30_000, interval: 50 },
    );
    const ids: { id: string; tenant: string; auth: Record<string, string> }[] = [];
    for (let i = 0; i < 12; i++) ids.push({ id: (await predict(d.url, 'gate', { release }, flood.auth)).body.id, tenant: 'flood', auth: flood.auth });
    ids.push({ id: (await predict(d.url, 'gate', { release }, quiet.auth)).body.id, tenant: 'quiet', auth: quiet.auth });
    ids.push({ id: (await predict(d.url, 'gate', { release }, anonymous.auth)).body.id, tenant: 'unlisted', auth: anonymous.auth });

    // The lanes are topics of their own; a tenant not listed in the config shares the model's.
    const lane = (tenant?: string) => `${d.prefix}.requests.gate${tenant === undefined ? '' : `.lane.${tenant}`}`;
    expect(await d.broker.backlog(lane('flood'), workerGroup)).toBe(13);
    expect(await d.broker.backlog(lane('quiet'), workerGroup)).toBe(1);
    expect(await d.broker.backlog(lane(), workerGroup)).toBe(1);
    expect((await request<{ queue_depth: number }>(`${d.url}/v1/models/gate`, { headers: flood.auth })).body.queue_depth).toBe(15);

    writeFileSync(blocker, '');
    writeFileSync(release, '');
    const finals = await Promise.all(ids.map(async ({ id, tenant, auth }) => ({ tenant, record: await waitForFinal(d.url, id, 60_000, auth) })));
    for (const { record } of finals) expect(record.status).toBe('succeeded');
    for (const tenant of ['flood', 'quiet', 'unlisted']) expect(await d.broker.backlog(lane(tenant === 'unlisted' ? undefined : tenant), workerGroup)).toBe(0);

    // Kafka's takes see what its consumers have fetched so far, so which lane has work at a given
    // take depends on fetch timing there; the turn order itself is checked on the other brokers.
    if (name === 'kafka') return;
    const order = finals.sort((a, b) => (a.record.started_at ?? '').localeCompare(b.record.started_at ?? '')).map((f) => f.tenant);
    // Three lanes in turns: the quiet tenant and the unlisted one are each among the first three.
    expect(order.indexOf('quiet')).toBeLessThan(3);
    expect(order.indexOf('unlisted')).toBeLessThan(3);
  });

  it("hands a pipeline's next step to the same tenant's lane of the next model", async () => {
    const models = modelRepo({ fixtures: ['words', 'count'] });
    mkdirSync(join(models, 'wordcount'));
    writeFileSync(join(models, 'wordcount', 'pipeline.yaml'), 'steps:\n  - model: words\n  - model: count\n');
    const d = await startDeployment({ broker: url, models, tenancy: { auth: 'keys', tenants: { acme: {} }, laneWeights: new Map([['acme', 2]]) } });
    deployments.push(d);
    const acme = await addKey(d.store, 'acme', ['predict', 'read']);
    // A probe group on the second step's lane, from its start: the step's request shows up there.
    const probe = await d.broker.subscribe({ topic: `${d.prefix}.requests.count.lane.acme`, group: 'probe', from: 'earliest', ephemeral: true });
    const submitted = await predict(d.url, 'wordcount', { text: 'fair is fair' }, acme.auth);
    expect(submitted.status).toBe(202);
    const final = await waitForFinal(d.url, submitted.body.id, 60_000, acme.auth);
    expect(final).toMatchObject({ status: 'succeeded', tenant: 'acme' });
    const [handedOver] = await probe.take(1, { timeoutMs: 30_000 });
    expect(handedOver?.key).toBe(submitted.body.id);
    await probe.close();
  });
});
