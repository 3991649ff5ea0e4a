import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { predict, request } from '../helpers/http.js';
import { runSpillway, spawnSpillway, type SpillwayProcess } from '../helpers/processes.js';
import { suiteRedis, type SuiteRedis } from './redis-server.js';

let server: SuiteRedis;
const running: SpillwayProcess[] = [];

beforeAll(async () => {
  server = await suiteRedis();
});

afterAll(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill('SIGKILL')));
  await server?.release();
});

it('two gateway processes on one Redis store share the keys, the isolation and the rate limits', async () => {
  const data = mkdtempSync(join(tmpdir(), 'spillway-redis-tenancy-'));
  const prefix = `t${randomUUID().slice(0, 8)}`;
  const config = join(data, 'spillway.yaml');
  writeFileSync(config, 'tenants:\n  acme:\n    rate_per_s: 0.05\n    burst: 3\n');
  const storeFlags = ['--config', config, '--data', data, '--store', server.url, '--prefix', prefix];
  const common = [...storeFlags, '--broker', server.url];
  const key = async (tenant: string) => {
    const made = await runSpillway(['keys', 'create', ...storeFlags, '--tenant', tenant, '--scopes', 'predict,read,cancel', '--json']);
    expect(made.code, made.output).toBe(0);
    return { authorization: `Bearer ${(JSON.parse(made.output) as { key: string }).key}` };
  };
  const acme = await key('acme');
  const globex = await key('globex');
  const env = { SPILLWAY_WORKER_HEARTBEAT_MS: '200' };
  const [a, b] = await Promise.all([spawnSpillway(['gateway', ...common, '--port', '0'], env), spawnSpillway(['gateway', ...common, '--port', '0'], env)]);
  running.push(a, b);

  // Keys made before the gateways started: required at once, on both.
  expect((await predict(a.url, 'echo', 1)).status).toBe(401);
  expect((await predict(b.url, 'echo', 1)).status).toBe(401);

  // acme's bucket of 3 is shared by both gateways.
  const answers = [await predict(a.url, 'echo', 1, acme), await predict(b.url, 'echo', 2, acme), await predict(a.url, 'echo', 3, acme), await predict(b.url, 'echo', 4, acme)];
  expect(answers.map((r) => r.status)).toEqual([202, 202, 202, 429]);
  expect((answers[3]!.body as unknown as { code: string }).code).toBe('SPILLWAY_RATE_LIMITED');

  // A prediction of acme's, accepted on A, is acme's alone on B.
  const id = answers[0]!.body.id;
  expect((await request<PredictionRecord>(`${b.url}/v1/predictions/${id}`, { headers: acme })).body).toMatchObject({ id, tenant: 'acme' });
  expect((await request(`${b.url}/v1/predictions/${id}`, { headers: globex })).status).toBe(404);
  expect((await request(`${b.url}/v1/predictions/${id}/cancel`, { method: 'POST', headers: globex })).status).toBe(404);
  expect((await predict(b.url, 'echo', 5, globex)).status).toBe(202);
}, 120_000);
