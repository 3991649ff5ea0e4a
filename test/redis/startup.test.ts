import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { request } from '../helpers/http.js';
import { runSpillway, spawnSpillway, type SpillwayProcess } from '../helpers/processes.js';
import { startOwnRedis } from './redis-server.js';

const running: SpillwayProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill('SIGKILL')));
});

const dataDir = () => mkdtempSync(join(tmpdir(), 'spillway-redis-start-'));

it('a malformed redis:// broker fails at start, naming broker and the problem', async () => {
  const { code, output } = await runSpillway(['gateway', '--broker', 'redis://cache:99999', '--data', dataDir(), '--port', '0']);
  expect(code).not.toBe(0);
  expect(output).toContain('broker');
  expect(output).toContain('port 99999 is out of range');
});

it('an unreachable Redis at start is logged clearly, the gateway keeps running and answers 503, and serves once Redis is up', async () => {
  const redis = await startOwnRedis();
  redis.stop();
  const gateway = await spawnSpillway(['gateway', '--broker', redis.url, '--data', dataDir(), '--port', '0']);
  running.push(gateway);
  try {
    const deadline = Date.now() + 10_000;
    while (!gateway.logs.some((l) => l.includes('cannot reach the broker')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const line = gateway.logs.find((l) => l.includes('cannot reach the broker')) ?? '';
    expect(line).toContain(`Redis at 127.0.0.1:${redis.port}`);
    expect(line).toContain('retrying with backoff');
    const down = await request<{ code: string }>(`${gateway.url}/v1/models/echo/predictions`, { body: { input: 1 } });
    expect(down.status).toBe(503);
    expect(down.body.code).toBe('SPILLWAY_BROKER_UNAVAILABLE');

    await redis.start();
    let status = 0;
    for (let i = 0; i < 60 && status !== 202; i++) {
      status = (await request(`${gateway.url}/v1/models/echo/predictions`, { body: { input: 1 } })).status;
      if (status !== 202) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(202);
  } finally {
    redis.stop();
  }
});
