import { defineConfig } from 'vitest/config';

/**
 * test/hosts/: Spillway on several machines, each a network namespace (root and iproute2;
 * skipped otherwise). Every file brings up a broker, gateways and workers as real processes,
 * so one file at a time: two at once on a 2-core machine would stretch leases and rebalances
 * past the tests' patience.
 */
export default defineConfig({
  test: {
    include: ['test/hosts/**/*.test.ts'],
    pool: 'forks',
    globalSetup: ['test/helpers/run-tmpdir.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 240_000,
    hookTimeout: 240_000,
  },
});
