import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/kafka/**', 'test/redis/**', 'test/hosts/**', '**/node_modules/**'],
    pool: 'forks',
    globalSetup: ['test/helpers/run-tmpdir.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Suites spawn real processes and servers; two at a time suits a 2-core machine.
    maxWorkers: 2,
  },
});
