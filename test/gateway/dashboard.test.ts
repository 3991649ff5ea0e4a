import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { DashboardSnapshot, ModelDashboard } from '../../src/gateway/dashboard/dashboard-schema.js';
import { DeadLetterTally } from '../../src/gateway/dashboard/dead-letter-tally.js';
import { quantiles, RecentOutcomes } from '../../src/gateway/dashboard/recent-outcomes.js';
import { SlotUtilisation } from '../../src/gateway/dashboard/slot-utilisation.js';
import type { ScalingFigures } from '../../src/gateway/schemas.js';
import type { WorkerSighting } from '../../src/gateway/worker-registry.js';
import type { Broker } from '../../src/brokers/broker.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { addKey } from '../helpers/api-keys.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { until } from '../helpers/until.js';

const deployments: Deployment[] = [];
afterEach(async () => {
  await Promise.all(deployments.splice(0).map((d) => d.close()));
});

async function snapshot(base: string, headers: Record<string, string> = {}): Promise<DashboardSnapshot> {
  const res = await request<DashboardSnapshot>(`${base}/v1/dashboard`, { headers });
  expect(res.status).toBe(200);
  return res.body;
}

async function modelOf(base: string, model: string, headers: Record<string, string> = {}): Promise<ModelDashboard> {
  const found = (await snapshot(base, headers)).models.find((m) => m.model === model);
  expect(found).toBeDefined();
  return found!;
}

describe('the dashboard snapshot (GET /v1/dashboard)', () => {
  it("shows the whole deployment from a gateway that took none of its requests: queue, workers, latency, failures, dead letters", async () => {
    const models = modelRepo({ fixtures: ['gate', 'flaky'] });
    const a = await startDeployment({ models, concurrency: 1 });
    deployments.push(a);
    // A second gateway on the same queue and store, with no worker: every figure it shows is the deployment's.
    const b = await startDeployment({ models, withWorker: false, dataDir: a.dataDir, prefix: a.prefix });
    deployments.push(b);
    // The first snapshot starts b's readers; what finishes from now on counts.
    const before = await modelOf(b.url, 'gate');
    expect(before).toMatchObject({ backlog: 0, in_flight: 0, completed: 0, dead_letters: { total: 0 }, failures: [] });

    const dir = mkdtempSync(join(tmpdir(), 'spillway-dashboard-'));
    const blocker = join(dir, 'blocker');
    const release = join(dir, 'release');
    const first = await predict(a.url, 'gate', { release: blocker });
    await until('the blocker to run', async () => ((await request<PredictionRecord>(`${a.url}/v1/predictions/${first.body.id}`)).body.status === 'running' ? true : undefined), 30_000);
    const ids = [first.body.id];
    for (let i = 0; i < 3; i++) ids.push((await predict(a.url, 'gate', { release })).body.id);

    const held = await until('the backlog on the other gateway', async () => {
      const m = await modelOf(b.url, 'gate');
      return m.backlog === 3 && m.in_flight === 1 && m.workers.seen === 1 ? m : undefined;
    }, 30_000);
    const scaling = await request<ScalingFigures>(`${b.url}/v1/models/gate/scaling`);
    expect(scaling.body).toMatchObject({ backlog: 3, in_flight: 1, workers_seen: 1, slots_per_worker: 1 });
    expect(held.oldest_age_s).toBeGreaterThan(0);
    expect(held.workers).toMatchObject({ seen: 1, slots: 1, slots_per_worker: 1 });
    expect(held.workers.list.map((w) => w.worker)).toEqual(['test-worker']);

    writeFileSync(blocker, '');
    writeFileSync(release, '');
    const done = await until('every request to finish, seen from the other gateway', async () => {
      const m = await modelOf(b.url, 'gate');
      return m.completed === 4 && m.backlog === 0 && m.in_flight === 0 ? m : undefined;
    }, 30_000);
    expect(done.by_status).toEqual({ succeeded: 4 });
    expect(done.latency.queue_ms.count).toBe(4);
    expect(done.latency.inference_ms.count).toBe(4);
    // Three requests waited behind the blocker, which ran the longest.
    expect(done.latency.queue_ms.p99!).toBeGreaterThan(0);
    expect(done.latency.inference_ms.p99!).toBeGreaterThanOrEqual(done.latency.inference_ms.p50!);
    expect(done.latency.total_ms.p50!).toBeGreaterThan(0);
    for (const id of ids) expect((await waitForFinal(b.url, id)).status).toBe('succeeded');

    // A request that fails every attempt (three) ends failed and in the dead letters; both link to its record.
    const failing = await predict(a.url, 'flaky', { key: 'always', fail_times: 100, retryable: true });
    const failed = await until('the failure on the other gateway', async () => {
      const m = await modelOf(b.url, 'flaky');
      return m.failures.length === 1 && m.dead_letters.total === 1 ? m : undefined;
    }, 30_000);
    const href = `/v1/predictions/${failing.body.id}`;
    expect(failed.failures[0]).toMatchObject({ id: failing.body.id, href, status: 'failed' });
    expect(failed.failures[0]!.code).toMatch(/^SPILLWAY_/);
    expect(failed.dead_letters.recent).toEqual([expect.objectContaining({ id: failing.body.id, href })]);
    expect(failed.by_status).toEqual({ failed: 1 });
    expect((await request<PredictionRecord>(`${b.url}${href}`)).body).toMatchObject({ id: failing.body.id, status: 'failed' });
  });

  it('lists every model of the repository with the slots /v1/models reports', async () => {
    const d = await startDeployment({ models: modelRepo({ sleep: { concurrency: 3 } }) });
    deployments.push(d);
    const listed = await request<{ models: { name: string; kind: string; concurrency?: number; workers: WorkerSighting[] }[] }>(`${d.url}/v1/models`);
    const models = listed.body.models.filter((m) => m.kind === 'model');
    const shown = await until('the worker on the dashboard', async () => {
      const s = await snapshot(d.url);
      return s.models.every((m) => m.workers.seen === 1) ? s : undefined;
    }, 30_000);
    expect(shown.models.map((m) => m.model).sort()).toEqual(models.map((m) => m.name).sort());
    const sleep = shown.models.find((m) => m.model === 'sleep')!;
    expect(sleep.workers).toMatchObject({ seen: 1, slots: 3, slots_per_worker: 3 });
    expect(models.find((m) => m.name === 'sleep')!.workers[0]!.concurrency).toBe(3);
    expect(shown.callback_dead_letters).toBe(0);
  });

  it('refuses a window it cannot cover, as a problem naming the parameter', async () => {
    const d = await startDeployment({ withWorker: false });
    deployments.push(d);
    for (const bad of ['0', '301', 'abc', '1.5', '-1', '9999999', '']) {
      const res = await request<{ code: string }>(`${d.url}/v1/dashboard?window_s=${encodeURIComponent(bad)}`);
      expect(res.status, bad).toBe(422);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.body.code).toBe('SPILLWAY_INVALID_REQUEST');
    }
    const ok = await request<DashboardSnapshot>(`${d.url}/v1/dashboard?window_s=300&unknown=1`);
    expect(ok.status).toBe(200);
    expect(ok.body.models.every((m) => m.latency.window_s === 300)).toBe(true);
  });

  it('wants an admin key once keys are in use; the page itself is public', async () => {
    const d = await startDeployment({ withWorker: false, tenancy: { auth: 'keys' } });
    deployments.push(d);
    const reader = await addKey(d.store, 'acme', ['predict', 'read']);
    const ops = await addKey(d.store, 'ops', ['admin']);
    const anonymous = await request<{ code: string }>(`${d.url}/v1/dashboard`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.code).toBe('SPILLWAY_UNAUTHENTICATED');
    const tenant = await request<{ code: string }>(`${d.url}/v1/dashboard`, { headers: reader.auth });
    expect(tenant.status).toBe(403);
    expect(tenant.body.code).toBe('SPILLWAY_FORBIDDEN');
    expect((await request(`${d.url}/v1/dashboard`, { headers: ops.auth })).status).toBe(200);
    expect((await request(`${d.url}/dashboard`)).status).toBe(200);
  });

  it('serves the page and uPlot from the installed package, and nothing else under /dashboard', async () => {
    const d = await startDeployment({ withWorker: false });
    deployments.push(d);
    const page = await fetch(`${d.url}/dashboard`);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await page.text();
    // Every file the page loads is the gateway's own.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).toContain('/dashboard/uPlot.iife.min.js');
    const resolve = createRequire(import.meta.url).resolve;
    for (const [name, file] of [['uPlot.iife.min.js', 'uplot/dist/uPlot.iife.min.js'], ['uPlot.min.css', 'uplot/dist/uPlot.min.css']] as const) {
      const res = await fetch(`${d.url}/dashboard/${name}`);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(resolve(file)))).toBe(true);
    }
    expect((await fetch(`${d.url}/dashboard/dashboard.js`)).headers.get('content-type')).toContain('text/javascript');
    for (const path of ['/dashboard/nope.js', '/dashboard/../package.json', '/dashboard/%2e%2e/package.json']) {
      const res = await request<{ code: string }>(`${d.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.body.code).toBe('SPILLWAY_ROUTE_NOT_FOUND');
    }
  });
});

describe('dashboard figures', () => {
  it('quantiles are nearest-rank over the values present', () => {
    expect(quantiles([])).toEqual({ count: 0, p50: null, p99: null });
    expect(quantiles([undefined, 5])).toEqual({ count: 1, p50: 5, p99: 5 });
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(quantiles(hundred)).toEqual({ count: 100, p50: 50, p99: 99 });
  });

  it('utilisation is the growth of busy slot-time over the slot-time offered, counting only growth', () => {
    let now = 0;
    const u = new SlotUtilisation(() => now);
    const worker = (busy_ms: number): WorkerSighting => ({ worker: 'w', host: 'h', pid: 1, last_seen: '', in_flight: 0, draining: false, state: 'ready', busy_ms });
    // The first report holds busy time from before: it does not count.
    expect(u.sample('m', [worker(50_000)], 2)).toBeNull();
    now = 1000;
    expect(u.sample('m', [worker(51_000)], 2)).toBe(0.5);
    now = 2000;
    expect(u.sample('m', [worker(53_000)], 2)).toBe(0.75);
    now = 20_000;
    // The window moved on: only the last stretch counts (no work in it).
    expect(u.sample('m', [worker(53_000)], 2)).toBe(0);
  });

  it('latency covers the window asked for; counts and failures cover everything since the start', () => {
    let now = 0;
    const unused = { broker: {} as Broker, responsesTopic: 'unused', logger: pino({ level: 'silent' }), now: () => now };
    const outcomes = new RecentOutcomes(unused);
    const record = (id: string, status: PredictionRecord['status'], queue_ms: number): PredictionRecord => ({
      id, model: 'm', status, metadata: {}, created_at: '2026-12-07T00:00:00.000Z', attempts: 1, metrics: { queue_ms, inference_ms: 10 },
      ...(status === 'failed' ? { error: { code: 'SPILLWAY_MODEL_FAILED' as const, message: 'boom', retryable: false } } : {}),
    });
    outcomes.add(record('old', 'succeeded', 1000));
    now = 120_000;
    outcomes.add(record('new', 'succeeded', 5));
    outcomes.add(record('bad', 'failed', 7));
    const last60 = outcomes.summary('m', 60);
    expect(last60).toMatchObject({ total: 3, by_status: { succeeded: 2, failed: 1 }, queue_ms: { count: 2, p50: 5, p99: 7 } });
    expect(last60.failures).toEqual([{ id: 'bad', status: 'failed', code: 'SPILLWAY_MODEL_FAILED', message: 'boom', completed_at: undefined }]);
    expect(outcomes.summary('m', 300).queue_ms).toEqual({ count: 3, p50: 7, p99: 1000 });
    expect(outcomes.summary('other', 60)).toMatchObject({ total: 0, queue_ms: { count: 0, p50: null } });
  });

  it('dead letters: request letters by model, webhook letters apart, anything else ignored', () => {
    const tally = new DeadLetterTally({ broker: {} as Broker, dlqTopic: 'unused', logger: pino({ level: 'silent' }) });
    tally.add(JSON.stringify({ v: 1, kind: 'callback', webhook_id: 'w', prediction_id: 'p', url: 'https://x.example', attempts: 5, reason: { code: 'SPILLWAY_CALLBACK_FAILED', message: '' }, failed_at: '' }));
    tally.add('not json');
    tally.add(JSON.stringify({ v: 1, topic: 't', position: '1', attempts: 3, reason: { code: 'X', message: '' }, failed_at: '', value: 'not a request' }));
    expect(tally.callbacks()).toBe(1);
    expect(tally.forModel('m')).toEqual({ total: 0, recent: [] });
  });
});
