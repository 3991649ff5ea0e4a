import { defineConfig } from 'vitest/config';

/**
 * The suites that drive real Kafka clusters hard (the conformance suite's group rebalances, and
 * fault injection that kills and restarts brokers): one file at a time, apart from the default
 * suite, so CPU contention from parallel files cannot stretch a rebalance past a test's patience.
 * scripts/test runs both.
 */
export default defineConfig({
  test: {
    include: ['test/kafka/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 240_000,
    hookTimeout: 120_000,
  },
});
