import { lazyTempDir, repoScript } from './repo-script.js';

/**
 * Runs scripts/kafka and returns its last line of output (`up` prints the bootstrap servers), or
 * all of it.
 */
export async function kafkaScript(args: readonly string[], env: Record<string, string> = {}, output: 'last' | 'all' = 'last'): Promise<string> {
  return repoScript('kafka', args, env, output, 180_000);
}

export interface TestKafkaCluster {
  /** The cluster's own state folder (SPILLWAY_KAFKA_DIR); the cluster lives in `nodes-<N>/`. */
  readonly dir: string;
  /** Starts the cluster (or the nodes of it that are down); returns the bootstrap servers. */
  up(): Promise<string>;
  /** Runs another scripts/kafka command on this cluster (`--nodes N` is added). */
  run(args: readonly string[]): Promise<string>;
  /** The environment that points scripts/kafka at this cluster (for commands without --nodes). */
  readonly env: Record<string, string>;
  /** Stops every node and deletes the state folder. */
  destroy(): Promise<void>;
}

/**
 * A Kafka cluster that one test file owns, for tests that stop and start brokers: a fresh state
 * folder, and client and controller ports that scripts/kafka picks free for every node on the
 * first start (KAFKA_PORT=auto) and keeps for later starts. Whatever ports the caller exported,
 * it never meets the Kafka other suites share, another test's cluster, or another checkout's.
 */
export function testKafkaCluster(nodes = 1): TestKafkaCluster {
  const folder = lazyTempDir('spillway-test-kafka-');
  const env = () => ({ SPILLWAY_KAFKA_DIR: folder.path, KAFKA_PORT: 'auto', KAFKA_CONTROLLER_PORT: 'auto' });
  const run = (args: readonly string[]) => kafkaScript([...args, '--nodes', String(nodes)], env());
  return {
    get dir() {
      return folder.path;
    },
    get env() {
      return env();
    },
    up: () => run(['up']),
    run,
    destroy: async () => {
      if (!folder.made) return;
      await run(['down', '--wipe']);
      folder.remove();
    },
  };
}
