import type { Logger } from 'pino';
import { SpillwayError } from '../../protocol/errors.js';

export interface KafkaBrokerOptions {
  /** host:port pairs of the bootstrap brokers. */
  readonly bootstrap: readonly string[];
  readonly clientId: string;
  /** Partitions for the topics Spillway creates; at least the worker count of a model. */
  readonly partitions: number;
  readonly replicationFactor: number;
  /** Default consumer session timeout: how soon a dead worker's partitions move on. */
  readonly leaseMs: number;
  /** For what the adapter recovers from on its own (a stalled consumer). */
  readonly logger?: Logger;
}

/** `kafka://host:9092[,host2:9092]` → the bootstrap list. */
export function parseKafkaUrl(url: string): string[] {
  const match = /^kafka:\/\/([^/?#]+)\/?$/.exec(url);
  const hosts = match?.[1]?.split(',').map((h) => h.trim()) ?? [];
  const valid = hosts.length > 0 && hosts.every((h) => /^[^:\s]+:\d{1,5}$/.test(h));
  if (!valid) {
    throw new SpillwayError('SPILLWAY_INVALID_CONFIG', `invalid Kafka broker URL "${url}"`, {
      details: [{ pointer: 'broker', message: `"${url}" is not kafka://host:port[,host:port]` }],
    });
  }
  return hosts;
}

/**
 * Spillway's groups are per topic (as in the embedded broker); a Kafka group spans topics and
 * rebalances all of them together, so each (group, topic) pair gets a Kafka group of its own.
 * A new model's workers joining then never pauses the other models.
 */
export function kafkaGroupId(group: string, topic: string): string {
  return `${group}.${topic}`;
}
