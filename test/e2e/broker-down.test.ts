import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { Problem } from '../../src/http/problem.js';
import { predict, request } from '../helpers/http.js';
import { closedPort } from '../helpers/ports.js';
import { spawnSpillway, type SpillwayProcess } from '../helpers/processes.js';

let gateway: SpillwayProcess | undefined;
afterAll(async () => gateway?.kill('SIGKILL'));

it('Kafka unreachable at start: a clear error, the gateway serves 503 and queues nothing', async () => {
  const url = `kafka://127.0.0.1:${await closedPort()}`;
  gateway = await spawnSpillway(['gateway', '--broker', url, '--port', '0', '--data', mkdtempSync(join(tmpdir(), 'spillway-down-'))]);
  const res = await predict(gateway.url, 'iris', [5.1, 3.5, 1.4, 0.2]);
  expect(res.status).toBe(503);
  expect((res.body as unknown as Problem).code).toBe('SPILLWAY_BROKER_UNAVAILABLE');
  expect(res.headers.get('retry-after')).toBe('1');
  const ready = await request<Problem>(`${gateway.url}/readyz`);
  expect(ready.status).toBe(503);
  expect(gateway.logs.join('\n')).toContain(`cannot reach the broker at ${url}`);
  // Still answering (and still refusing) a while later: it keeps retrying, it does not exit.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect((await predict(gateway.url, 'echo', 1)).status).toBe(503);
});
