import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectRedis, firstAttempt } from '../../src/redis/connect.js';
import { parseRedisUrl } from '../../src/redis/redis-url.js';
import { closedPort } from '../helpers/ports.js';
import { testRedis, type TestRedis } from './test-redis.js';

let server: TestRedis;
beforeAll(async () => {
  server = await testRedis();
});
afterAll(async () => server?.stop());

it('firstAttempt: true once a server answers, false at once when none listens, never rejecting', async () => {
  const up = connectRedis(parseRedisUrl(server.url, 'test'), { name: 'spillway-test' });
  const down = connectRedis(parseRedisUrl(`redis://127.0.0.1:${await closedPort()}`, 'test'), { name: 'spillway-test' });
  down.on('error', () => {});
  try {
    expect(await firstAttempt(up, 5000)).toBe(true);
    const started = Date.now();
    expect(await firstAttempt(down, 5000)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
    // Still retrying in the background: a command fails at once instead of waiting for it.
    await expect(down.ping()).rejects.toThrow(/enableOfflineQueue/);
  } finally {
    up.disconnect();
    down.disconnect();
  }
});
