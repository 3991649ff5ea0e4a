import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokerPid } from './kafka-broker-info.js';
import { repoRoot } from './spillway.js';

/** The Kafka a benchmark runs its Kafka-backed systems on. */
export interface BenchKafka {
  readonly bootstrap: readonly string[];
  /** The broker's JVM, to count its CPU time (NaN if not found). */
  readonly pid: number;
  /** `scripts/kafka` when this bench started it, `external` when it was given (--bootstrap). */
  readonly started_by: 'scripts/kafka' | 'external';
  /** Stops the cluster and deletes its folder, if this bench started it; otherwise does nothing. */
  stop(): void;
}

/** A Kafka someone else runs; stop() leaves it alone. */
export function useKafka(bootstrap: readonly string[]): BenchKafka {
  return { bootstrap, pid: brokerPid(bootstrap[0] ?? '127.0.0.1:9092'), started_by: 'external', stop: () => undefined };
}

/**
 * A fresh one-node Kafka through `scripts/kafka up`, in its own temporary folder on free ports
 * (KAFKA_PORT=auto), so a bench neither meets a cluster someone else uses nor takes 9092. The
 * jars come from the shared cache (the first start downloads them).
 */
export function startBenchKafka(): BenchKafka {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-bench-kafka-'));
  const script = join(repoRoot, 'scripts/kafka');
  const env = { ...process.env, SPILLWAY_KAFKA_DIR: dir, KAFKA_PORT: 'auto', KAFKA_CONTROLLER_PORT: 'auto' };
  const stop = () => {
    try {
      execFileSync('bash', [script, 'down', '--wipe'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    const output = execFileSync('bash', [script, 'up'], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'] });
    const last = output.trim().split('\n').at(-1)?.trim() ?? '';
    const bootstrap = last.split(',').map((s) => s.trim());
    if (bootstrap.length === 0 || !bootstrap.every((b) => /^[\w.-]+:\d+$/.test(b))) throw new Error(`scripts/kafka up did not print the bootstrap servers last:\n${output}`);
    return { bootstrap, pid: brokerPid(bootstrap[0]!, env), started_by: 'scripts/kafka', stop };
  } catch (error) {
    stop();
    throw error;
  }
}
