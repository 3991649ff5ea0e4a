import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { Problem } from '../../src/http/problem.js';
import { request } from '../helpers/http.js';
import { closedPort } from '../helpers/ports.js';
import { spawnSpillway, type SpillwayProcess } from '../helpers/processes.js';

let gateway: SpillwayProcess | undefined;
afterAll(async () => gateway?.kill('SIGKILL'));

it('Redis store unreachable at start: a clear error, and the gateway answers 503, never 500, while it retries', async () => {
  const url = `redis://127.0.0.1:${await closedPort()}`;
  gateway = await spawnSpillway(['gateway', '--store', url, '--port', '0', '--data', mkdtempSync(join(tmpdir(), 'spillway-store-down-'))]);
  const read = await request<Problem>(`${gateway.url}/v1/predictions/3f1b9d4e-0000-4000-8000-000000000000`);
  expect(read.status).toBe(503);
  expect(read.body.code).toBe('SPILLWAY_STORE_UNAVAILABLE');
  expect(read.headers.get('retry-after')).not.toBeNull();
  const ready = await request<Problem>(`${gateway.url}/readyz`);
  expect(ready.status).toBe(503);
  expect(gateway.logs.join('\n')).toContain(`cannot reach the result store at ${url}`);
  // A write that needs the store first (an idempotency claim) is refused too, and nothing is queued.
  const claim = await request<Problem>(`${gateway.url}/v1/models/echo/predictions`, {
    headers: { 'idempotency-key': 'k-1' },
    body: { input: 1 },
  });
  expect(claim.status).toBe(503);
  expect(claim.body.code).toBe('SPILLWAY_STORE_UNAVAILABLE');
  // Still answering (and still refusing) a while later: it keeps retrying, it does not exit.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect((await request<Problem>(`${gateway.url}/v1/predictions/3f1b9d4e-0000-4000-8000-000000000000`)).status).toBe(503);
});
