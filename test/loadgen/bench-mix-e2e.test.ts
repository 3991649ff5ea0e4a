import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { MixReport } from '../../src/loadgen/mix-report.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { request } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { runSpillway, spawnSpillway, type SpillwayProcess } from '../helpers/processes.js';
import { bench, expectReconciled } from './bench-run.js';
import { recordingProxy, type Exchange } from './recording-proxy.js';

/** `spillway keys create`, the real command, on the deployment's data folder: returns the key. */
async function createKey(data: string, tenant: string, scopes: string): Promise<string> {
  const made = await runSpillway(['keys', 'create', '--data', data, '--tenant', tenant, '--scopes', scopes, '--json']);
  expect(made.code, made.output).toBe(0);
  return (JSON.parse(made.output) as { key: string }).key;
}

const bearer = (key: string) => `Bearer ${key}`;
const keyId = (key: string) => key.split('_')[1];
const posts = (exchanges: readonly Exchange[]) => exchanges.filter((x) => x.method === 'POST');

describe('spillway bench with API keys, against a real spillway serve that requires them', () => {
  let data: string;
  let serve: SpillwayProcess;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let keyA: string;
  let keyB: string;
  let readOnly: string;
  // Uniform arrivals at a constant rate: exactly rate × duration requests, whatever the seed.
  const load = ['--model', 'sleep', '--duration', '1', '--arrivals', 'uniform', '--quiet'];

  beforeAll(async () => {
    data = mkdtempSync(join(tmpdir(), 'spillway-bench-keys-'));
    // Keys made before the gateway starts: it requires one from its first request.
    keyA = await createKey(data, 'A', 'predict,read');
    keyB = await createKey(data, 'B', 'predict,read');
    readOnly = await createKey(data, 'C', 'read');
    const models = modelRepo({ sleep: { per_batch_ms: 20, concurrency: 2 } });
    serve = await spawnSpillway(['serve', '--port', '0', '--data', data, '--models', models]);
    // The bench loads the gateway through a proxy that records what each request carried.
    proxy = await recordingProxy(serve.url);
  });
  afterEach(() => {
    proxy.exchanges.length = 0;
    vi.unstubAllEnvs();
  });
  afterAll(async () => {
    await proxy?.close();
    await serve?.kill('SIGTERM');
  });

  it('runs two tenants at once (--mix), each under its own key, and reports them apart', async () => {
    vi.stubEnv('SPILLWAY_TEST_B_KEY', keyB);
    const dir = mkdtempSync(join(tmpdir(), 'spillway-bench-mix-'));
    const file = join(dir, 'mix.json');
    writeFileSync(file, JSON.stringify({ tenants: [{ name: 'A', key: keyA, rate: 20 }, { name: 'B', key_env: 'SPILLWAY_TEST_B_KEY', rate: 5 }] }));
    const records = join(dir, 'records.csv');
    // Polling, so the polls' keys are checked too.
    const run = await bench<MixReport>(['--target', proxy.url, ...load, '--mix', file, '--client', 'poll', '--poll-ms', '50', '--records', records]);
    expect(run.code, run.stderr).toBe(0);

    const report = run.report!;
    expect(report).toMatchObject({ kind: 'mix', mix: file, model: 'sleep', reconciles: true });
    expect(Object.keys(report.tenants)).toEqual(['A', 'B']);
    const expected = { A: { sent: 20, key: keyA }, B: { sent: 5, key: keyB } };
    for (const [name, { sent, key }] of Object.entries(expected)) {
      const r = report.tenants[name]!;
      expectReconciled(r);
      expect(r).toMatchObject({ sent, accepted: sent, completed: sent, succeeded: sent, rejected: 0, errored: 0, lost: 0 });
      expect(r.latency_ms.count).toBe(sent);
      expect(r.settings).toMatchObject({ tenant: name, api_key: keyId(key), rate: sent });
      expect(run.stdout).toMatch(new RegExp(`^${name}  sent ${sent}  rejected 0  errored 0  completed ${sent}  lost 0  latency ms p50 \\S+  p99 \\S+$`, 'm'));
    }

    // Every request of the run carried one of the two keys: probes, samples, posts and polls.
    const { exchanges } = proxy;
    expect(exchanges.filter((x) => x.authorization !== bearer(keyA) && x.authorization !== bearer(keyB))).toEqual([]);
    expect(exchanges.some((x) => x.method === 'GET' && x.path === '/v1/models/sleep')).toBe(true);
    expect(posts(exchanges).filter((x) => x.authorization === bearer(keyA))).toHaveLength(20);
    expect(posts(exchanges).filter((x) => x.authorization === bearer(keyB))).toHaveLength(5);
    // Each prediction was followed with the key that made it.
    const owner = new Map(posts(exchanges).map((x) => [x.id, x.authorization]));
    expect(owner.size).toBe(25);
    const polls = exchanges.filter((x) => x.path.startsWith('/v1/predictions/'));
    expect(polls.length).toBeGreaterThan(0);
    for (const poll of polls) expect(poll.authorization).toBe(owner.get(poll.path.split('/').pop()));

    // And each belongs to its tenant: the other tenant cannot see it.
    for (const [id, authorization] of owner) {
      const [mine, theirs, tenant] = authorization === bearer(keyA) ? [keyA, keyB, 'A'] : [keyB, keyA, 'B'];
      const own = await request<PredictionRecord>(`${serve.url}/v1/predictions/${id}`, { headers: { authorization: bearer(mine) } });
      expect(own.status).toBe(200);
      expect(own.body.tenant).toBe(tenant);
      expect((await request(`${serve.url}/v1/predictions/${id}`, { headers: { authorization: bearer(theirs) } })).status).toBe(404);
    }

    const csv = readFileSync(records, 'utf8').trim().split('\n');
    expect(csv[0]).toMatch(/^tenant,request,/);
    expect(csv.filter((l) => l.startsWith('A,'))).toHaveLength(20);
    expect(csv.filter((l) => l.startsWith('B,'))).toHaveLength(5);
    const html = readFileSync(join(run.dir, 'report.html'), 'utf8');
    expect(html).toContain('<h2>Tenant A: steady profile</h2>');
    expect(html).toContain('<h2>Tenant B: steady profile</h2>');
    expect(html).not.toMatch(/<script|src=|url\(/i);
  });

  it('without a key, stops before the run and says how to give one', async () => {
    vi.stubEnv('SPILLWAY_API_KEY', '');
    const single = await bench(['--target', proxy.url, ...load, '--rate', '5']);
    expect(single.code).toBe(1);
    expect(single.stderr).toContain('answered 401 SPILLWAY_UNAUTHENTICATED');
    expect(single.stderr).toContain('give it with --key or SPILLWAY_API_KEY');
    expect(single.report).toBeUndefined();
    expect(posts(proxy.exchanges)).toEqual([]);

    // In a mix, the tenant without one is named.
    const file = join(mkdtempSync(join(tmpdir(), 'spillway-bench-mix-')), 'mix.json');
    writeFileSync(file, JSON.stringify({ tenants: [{ name: 'A', key: keyA, rate: 5 }, { name: 'B', rate: 5 }] }));
    const mix = await bench(['--target', proxy.url, ...load, '--mix', file]);
    expect(mix.code).toBe(1);
    expect(mix.stderr).toMatch(/tenant "B": GET \S+\/v1\/models\/sleep answered 401/);
    expect(mix.stderr).toContain('give the tenant "key" or "key_env" in the --mix file');
    expect(posts(proxy.exchanges)).toEqual([]);
  });

  it('sends --key, else SPILLWAY_API_KEY, on every request of the run', async () => {
    vi.stubEnv('SPILLWAY_API_KEY', keyA);
    const fromEnv = await bench(['--target', proxy.url, ...load, '--rate', '10']);
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(fromEnv.report).toMatchObject({ sent: 10, completed: 10, errored: 0, lost: 0 });
    expect(new Set(proxy.exchanges.map((x) => x.authorization))).toEqual(new Set([bearer(keyA)]));

    proxy.exchanges.length = 0;
    const fromFlag = await bench(['--target', proxy.url, ...load, '--rate', '10', '--client', 'poll', '--poll-ms', '50', '--key', keyB]);
    expect(fromFlag.code, fromFlag.stderr).toBe(0);
    expect(fromFlag.report).toMatchObject({ sent: 10, completed: 10, errored: 0, lost: 0 });
    expect(new Set(proxy.exchanges.map((x) => x.authorization))).toEqual(new Set([bearer(keyB)]));
    const id = posts(proxy.exchanges)[0]!.id;
    expect((await request<PredictionRecord>(`${serve.url}/v1/predictions/${id}`, { headers: { authorization: bearer(keyB) } })).body.tenant).toBe('B');
  });

  it('counts requests the gateway refuses for their key as errors, with a note', async () => {
    // A key without the predict scope passes the probe (any valid key may read a model) and
    // has every POST refused: 403.
    const run = await bench(['--target', proxy.url, ...load, '--rate', '10', '--key', readOnly]);
    expect(run.code, run.stderr).toBe(0);
    const r = run.report!;
    expectReconciled(r);
    expect(r).toMatchObject({ sent: 10, accepted: 0, rejected: 0, errored: 10, errors: { '403': 10 } });
    expect(r.notes.join(' ')).toContain('10 requests were refused for their API key');

    const refused = await bench(['--target', proxy.url, ...load, '--rate', '10', '--key', `spw_0123456789abcdef_${'x'.repeat(43)}`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('the target does not accept this API key');
    expect(refused.stderr).not.toContain('x'.repeat(43));
  });
});
