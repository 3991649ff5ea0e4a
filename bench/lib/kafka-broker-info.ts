import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './spillway.js';

/**
 * The process of the Kafka broker listening on `host:port`, to count its CPU time: the owner of
 * the listening socket (ss), else the node `scripts/kafka status` reports (`env` names the
 * cluster's folder, SPILLWAY_KAFKA_DIR, for a cluster the bench started). NaN if neither works.
 */
export function brokerPid(bootstrap: string, env: NodeJS.ProcessEnv = process.env): number {
  const port = bootstrap.split(':').at(-1) ?? '9092';
  const attempts: [string, string[], RegExp][] = [
    ['ss', ['-Hltnp', `sport = :${port}`], /pid=(\d+)/],
    ['bash', [join(repoRoot, 'scripts/kafka'), 'status'], /\(pid (\d+)\)/],
  ];
  for (const [command, args, pattern] of attempts) {
    try {
      const output = execFileSync(command, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'ignore'] });
      const pid = Number(pattern.exec(output)?.[1]);
      if (Number.isInteger(pid) && pid > 0) return pid;
    } catch {
      // Try the next way.
    }
  }
  return Number.NaN;
}

/** Versions of the Kafka client as installed, of the broker (from its class path), and of Node. */
export function kafkaVersions(pid: number): Record<'@platformatic/kafka' | 'kafka_broker' | 'node', string> {
  const pkg = (name: string) => (JSON.parse(readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  let broker = 'unknown';
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    broker = /kafka-server-(\d[\w.-]*?)\.jar/.exec(cmdline)?.[1] ?? /kafka\/(\d[\w.-]*)\/libs/.exec(cmdline)?.[1] ?? 'unknown';
  } catch {
    // No broker process visible.
  }
  return { '@platformatic/kafka': pkg('@platformatic/kafka'), kafka_broker: broker, node: process.version };
}
