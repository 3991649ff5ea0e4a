import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const modelsDir = fileURLToPath(new URL('../../models', import.meta.url));
export const cliPath = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface Sample {
  readonly input: number[];
  readonly label: number;
  readonly label_name: string;
}

export function samples(model: 'iris' | 'digits' | 'digits-wide'): Sample[] {
  return JSON.parse(readFileSync(`${modelsDir}/${model}/samples.json`, 'utf8')) as Sample[];
}

/** The Kafka the Kafka suite runs on: the one scripts/test started (or scripts/kafka up). */
export const testKafkaUrl = process.env['SPILLWAY_TEST_KAFKA'] ?? 'kafka://127.0.0.1:9092';

/**
 * True in the Kafka suite (vitest.kafka.config.ts). It runs every file that uses `testBrokers`
 * again, on Kafka; a test in such a file that is not about the broker skips there, having run in
 * the default suite.
 */
export const inKafkaSuite = process.env['SPILLWAY_TEST_SUITE'] === 'kafka';

/** True in the Redis suite (vitest.redis.config.ts), as `inKafkaSuite` is in the Kafka suite. */
export const inRedisSuite = process.env['SPILLWAY_TEST_SUITE'] === 'redis';

/**
 * The Redis the Redis suite runs on (and the Kafka suite, for its Redis-store combinations): the
 * one scripts/test started, or `scripts/redis up` (port 6390, not Redis's usual 6379).
 */
export const testRedisUrl = process.env['SPILLWAY_TEST_REDIS'] ?? 'redis://127.0.0.1:6390';

/**
 * The brokers the end-to-end suites run on: the embedded queue in the default suite, which
 * therefore needs no Kafka, Kafka in the Kafka suite and Redis Streams in the Redis suite.
 */
export const testBrokers: readonly { readonly name: string; readonly url: string }[] = inKafkaSuite
  ? [{ name: 'kafka', url: testKafkaUrl }]
  : inRedisSuite
    ? [{ name: 'redis', url: testRedisUrl }]
    : [{ name: 'embedded', url: 'embedded' }];

/**
 * True in a suite that runs the every-broker files again on another broker (Kafka, Redis): their
 * tests that are not about the broker skip there, having run in the default suite.
 */
export const inBrokerLegSuite = inKafkaSuite || inRedisSuite;

