import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const testDir = fileURLToPath(new URL('./test/', import.meta.url));

/**
 * The files outside test/kafka/ and test/redis/ that run on every test broker (`describe.each(testBrokers)`):
 * the default suite runs them on the embedded queue, this one on Kafka (SPILLWAY_TEST_SUITE).
 * Found by what they import, so a new one cannot be forgotten here.
 */
const everyBrokerFiles = readdirSync(testDir, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.test.ts') && !f.startsWith('kafka/') && !f.startsWith('redis/'))
  .filter((f) => readFileSync(testDir + f, 'utf8').includes('testBrokers'))
  .map((f) => `test/${f}`);

/**
 * Everything that needs a real Kafka: test/kafka/ (the conformance suite's group rebalances,
 * fault injection that kills and restarts brokers, Kafka-only behaviour) and the Kafka leg of
 * the every-broker files. One file at a time, apart from the default suite, so CPU contention
 * from parallel files cannot stretch a rebalance past a test's patience. scripts/test runs both.
 */
export default defineConfig({
  test: {
    include: ['test/kafka/**/*.test.ts', ...everyBrokerFiles],
    env: { SPILLWAY_TEST_SUITE: 'kafka' },
    pool: 'forks',
    globalSetup: ['test/helpers/run-tmpdir.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 240_000,
    hookTimeout: 120_000,
  },
});
