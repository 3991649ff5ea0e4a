import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './paths.js';

const run = promisify(execFile);

/**
 * Fault tests stop and start brokers, so they run their own clusters (own ports, own state
 * folder) and never disturb the Kafka other suites share.
 */
export const faultClusterEnv = {
  KAFKA_PORT: '9492',
  SPILLWAY_KAFKA_DIR: join(tmpdir(), 'spillway-fault-kafka'),
};

/** Runs scripts/kafka and returns its last line of output (`up` prints the bootstrap servers). */
export async function kafkaScript(args: readonly string[], env: Record<string, string> = faultClusterEnv): Promise<string> {
  const { stdout } = await run('bash', [`${repoRoot}/scripts/kafka`, ...args], {
    timeout: 180_000,
    env: { ...process.env, ...env },
  });
  return stdout.trim().split('\n').at(-1) ?? '';
}
