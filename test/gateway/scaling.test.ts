import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ScalingFigures } from '../../src/gateway/schemas.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { addKey } from '../helpers/api-keys.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { inBrokerLegSuite, testBrokers } from '../helpers/paths.js';
import { until } from '../helpers/until.js';

const deployments: Deployment[] = [];
afterEach(async () => {
  await Promise.all(deployments.splice(0).map((d) => d.close()));
});

const tenancy = { auth: 'keys' as const, tenants: { flood: {}, quiet: {} }, laneWeights: new Map([['flood', 1], ['quiet', 1]]) };

describe.each(testBrokers)('scaling signals on the $name broker', ({ url }) => {
  it("reports the whole deployment's lanes from a gateway that queued none of it, and the drain once released", async () => {
    const models = modelRepo({ fixtures: ['gate'] });
    const a = await startDeployment({ broker: url, models, concurrency: 1, tenancy });
    deployments.push(a);
    // A second gateway on the same queue and store, with no worker: it published nothing.
    const b = await startDeployment({ broker: url, models, withWorker: false, dataDir: a.dataDir, prefix: a.prefix, tenancy });
    deployments.push(b);
    const flood = await addKey(a.store, 'flood', ['predict', 'read']);
    const quiet = await addKey(a.store, 'quiet', ['predict', 'read']);
    const ops = await addKey(a.store, 'ops', ['admin']);
    const dir = mkdtempSync(join(tmpdir(), 'spillway-scaling-'));
    const blocker = join(dir, 'blocker');
    const release = join(dir, 'release');
    const figures = async () => {
      const res = await request<ScalingFigures>(`${b.url}/v1/models/gate/scaling?target_s=10`, { headers: ops.auth });
      expect(res.status).toBe(200);
      return res.body;
    };
    expect(await figures()).toMatchObject({ model: 'gate', backlog: 0, in_flight: 0, oldest_age_s: 0, target_s: 10, desired_workers: 0 });

    const first = await predict(a.url, 'gate', { release: blocker }, flood.auth);
    await until('the blocker to run', async () => {
      const record = await request<PredictionRecord>(`${a.url}/v1/predictions/${first.body.id}`, { headers: flood.auth });
      return record.body.status === 'running' ? true : undefined;
    }, 30_000);
    const ids: { id: string; auth: Record<string, string> }[] = [];
    for (let i = 0; i < 3; i++) ids.push({ id: (await predict(a.url, 'gate', { release }, flood.auth)).body.id, auth: flood.auth });
    for (let i = 0; i < 2; i++) ids.push({ id: (await predict(a.url, 'gate', { release }, quiet.auth)).body.id, auth: quiet.auth });

    // Five waiting over two lanes, one running; on Kafka the split comes from heartbeats, so it is waited for.
    const held = await until('the backlog split', async () => {
      const f = await figures();
      return f.backlog === 5 && f.in_flight === 1 && f.workers_seen === 1 ? f : undefined;
    }, 30_000);
    expect(held.oldest_age_s).toBeGreaterThan(0);
    expect(held.slots_per_worker).toBe(1);
    expect(held.desired_workers).toBeGreaterThanOrEqual(1);

    writeFileSync(blocker, '');
    writeFileSync(release, '');
    await waitForFinal(a.url, first.body.id, 60_000, flood.auth);
    for (const { id, auth } of ids) expect((await waitForFinal(a.url, id, 60_000, auth)).status).toBe('succeeded');
    const drained = await until('the drain to show', async () => {
      const f = await figures();
      return f.backlog === 0 && f.in_flight === 0 && f.drain_rate_per_s > 0 ? f : undefined;
    }, 30_000);
    expect(drained.oldest_age_s).toBe(0);
    // Six finished, none queued now: as many arrived as drained over the window.
    expect(drained.arrival_rate_per_s).toBeCloseTo(drained.drain_rate_per_s, 6);
  });
});

describe.skipIf(inBrokerLegSuite)('the scaling route', () => {
  it('takes an admin key, refuses bad parameters with problem+json, and shows the same figures as gauges', async () => {
    const d = await startDeployment({ models: modelRepo({ fixtures: ['gate'] }), withWorker: false, tenancy });
    deployments.push(d);
    const ops = await addKey(d.store, 'ops', ['admin']);
    const reader = await addKey(d.store, 'flood', ['predict', 'read']);
    const get = (path: string, headers: Record<string, string> = ops.auth) => request<{ code?: string }>(`${d.url}${path}`, { headers });

    expect((await get('/v1/models/gate/scaling', {})).status).toBe(401);
    expect((await get('/v1/models/gate/scaling', reader.auth)).status).toBe(403);
    for (const bad of ['0', '-1', 'abc', '1e3', '86401']) {
      const res = await get(`/v1/models/gate/scaling?target_s=${bad}`);
      expect(res.status, bad).toBe(422);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.body.code).toBe('SPILLWAY_INVALID_REQUEST');
    }
    // As on every route, a query parameter the API does not know is ignored.
    expect((await get('/v1/models/gate/scaling?target=5')).status).toBe(200);
    const missing = await get('/v1/models/nope/scaling');
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('SPILLWAY_MODEL_NOT_FOUND');

    await predict(d.url, 'gate', { release: '/nonexistent' }, reader.auth);
    const ok = await get('/v1/models/gate/scaling');
    expect(ok.body).toMatchObject({ model: 'gate', backlog: 1, in_flight: 0, target_s: 60, workers_seen: 0, slots_per_worker: 2, desired_workers: 1 });

    const metrics = await fetch(`${d.url}/metrics`, { headers: ops.auth }).then((r) => r.text());
    expect(metrics).toContain('spillway_queue_ready{model="gate"} 1');
    expect(metrics).toContain('spillway_queue_in_flight{model="gate"} 0');
    expect(metrics).toMatch(/spillway_queue_oldest_age_seconds\{model="gate"\} [0-9.]+/);
    expect(metrics).toContain('spillway_desired_workers{model="gate"} 1');
    expect(metrics).toContain('spillway_workers_seen{model="gate"} 0');
  });
});
