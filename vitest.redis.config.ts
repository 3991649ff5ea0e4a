import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const testDir = fileURLToPath(new URL('./test/', import.meta.url));

/**
 * The files outside test/redis/ that run on every test broker (`describe.each(testBrokers)`),
 * for their Redis leg; found by what they import, as vitest.kafka.config.ts finds its own.
 */
const everyBrokerFiles = readdirSync(testDir, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.test.ts') && !f.startsWith('kafka/') && !f.startsWith('redis/') && !f.startsWith('hosts/'))
  .filter((f) => readFileSync(testDir + f, 'utf8').includes('testBrokers'))
  .map((f) => `test/${f}`);

/**
 * Everything that needs a real Redis: test/redis/ (scripts/redis, the Redis broker's and store's
 * own tests, Redis faults) and the Redis leg of the every-broker files, on the server
 * SPILLWAY_TEST_REDIS names. One file at a time, apart from the default suite, as the Kafka
 * suite runs: tests here kill and restart servers. scripts/test runs both.
 */
export default defineConfig({
  test: {
    include: ['test/redis/**/*.test.ts', ...everyBrokerFiles],
    env: { SPILLWAY_TEST_SUITE: 'redis' },
    pool: 'forks',
    globalSetup: ['test/helpers/run-tmpdir.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
