import { defineConfig } from 'vitest/config';

/**
 * The files outside test/redis/ that run on every test broker (`describe.each(testBrokers)`),
 * for their Redis leg. Empty until the Redis broker exists: the integrator adds the redis entry
 * to `testBrokers` and fills this in (vitest.kafka.config.ts finds its list by import).
 */
const everyBrokerFiles: string[] = [];

/**
 * Everything that needs a real Redis: test/redis/ (scripts/redis, and later the Redis broker's
 * and store's own tests) and the Redis leg of the every-broker files, on the server
 * SPILLWAY_TEST_REDIS names. One file at a time, apart from the default suite, as the Kafka
 * suite runs: tests here kill and restart servers. scripts/test runs both.
 */
export default defineConfig({
  test: {
    include: ['test/redis/**/*.test.ts', ...everyBrokerFiles],
    env: { SPILLWAY_TEST_SUITE: 'redis' },
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
