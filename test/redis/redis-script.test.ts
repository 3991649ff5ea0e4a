import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { redisCommands, testRedis, type RespReply } from '../helpers/redis-script.js';

// One server for the file, in its own folder on a port picked free: the tests run in order on it.
const redis = testRedis();
afterAll(() => redis.destroy());

async function statusCode(): Promise<number> {
  try {
    await redis.run(['status']);
    return 0;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    throw error;
  }
}

async function one(url: string, ...command: (string | number)[]): Promise<RespReply> {
  const [reply] = await redisCommands(url, [command]);
  return reply!;
}

/** Redis's run_id changes on every start: the same one means the same process. */
async function runId(url: string): Promise<string> {
  const info = await one(url, 'INFO', 'server');
  const match = /^run_id:(\w+)/m.exec(String(info));
  if (match === null) throw new Error(`no run_id in INFO: ${String(info)}`);
  return match[1]!;
}

it('up prints the URL last, with the durable settings; a second up finds the same server', async () => {
  const url = await redis.up();
  expect(url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
  expect(url).not.toBe('redis://127.0.0.1:6379');
  expect(await redis.run(['url'])).toBe(url);
  expect(await one(url, 'CONFIG', 'GET', 'appendfsync')).toEqual(['appendfsync', 'always']);
  expect(await one(url, 'CONFIG', 'GET', 'appendonly')).toEqual(['appendonly', 'yes']);
  expect(await one(url, 'CONFIG', 'GET', 'save')).toEqual(['save', '']);
  expect(await one(url, 'CONFIG', 'GET', 'bind')).toEqual(['bind', '127.0.0.1']);
  const first = await runId(url);

  expect(await redis.up()).toBe(url);
  expect(await runId(url)).toBe(first);
  expect(await statusCode()).toBe(0);
});

it('every write acknowledged before a SIGKILL is there after start', async () => {
  const url = await redis.up();
  const entries = 500;
  const acks = await redisCommands(url, [
    ...Array.from({ length: entries }, (_, i) => ['XADD', 'spillway-test', '*', 'n', i]),
    ['SET', 'last-word', 'acknowledged'],
  ]);
  const ids = acks.slice(0, entries);
  for (const id of ids) expect(id).toMatch(/^\d+-\d+$/);
  expect(acks[entries]).toBe('OK');

  await redis.kill();
  expect(await statusCode()).toBe(1);
  expect(await redis.start()).toBe(url);

  // start resolved only once the AOF was loaded: these would be LOADING errors otherwise.
  expect(await one(url, 'XLEN', 'spillway-test')).toBe(entries);
  const range = await one(url, 'XRANGE', 'spillway-test', '-', '+');
  expect((range as [string, string[]][]).map(([id]) => id)).toEqual(ids);
  expect(await one(url, 'GET', 'last-word')).toBe('acknowledged');
  expect(await statusCode()).toBe(0);
});

it('down keeps the data for the next start; down --wipe deletes it', async () => {
  const url = await redis.up();
  await one(url, 'SET', 'kept', 'yes');
  await redis.run(['down']);
  expect(await statusCode()).toBe(1);
  expect(await redis.start()).toBe(url);
  expect(await one(url, 'GET', 'kept')).toBe('yes');

  await redis.run(['down', '--wipe']);
  expect(await statusCode()).toBe(1);
  expect(existsSync(join(redis.dir, 'data'))).toBe(false);
  const fresh = await redis.up();
  expect(await one(fresh, 'DBSIZE')).toBe(0);
});
