import type { Logger } from 'pino';
import { SpillwayError } from '../protocol/errors.js';
import type { OutgoingMessage } from '../protocol/message.js';
import type { StreamView } from '../redis/stream-view.js';
import type { TopicView } from '../sqlite/topic-view.js';
import type { Broker } from './broker.js';

export interface BrokerSettings {
  /** `embedded` (default), `kafka://host:port[,host:port…]` or `redis://host:port[/db]`. */
  readonly url: string;
  /** Folder for the embedded broker's database. */
  readonly dataDir: string;
  readonly leaseMs?: number;
  readonly busyTimeoutMs?: number;
  readonly pollMs?: number;
  readonly kafka?: { readonly clientId?: string; readonly partitions?: number; readonly replicationFactor?: number };
  readonly redis?: { readonly maxMessageBytes?: number };
  /**
   * Kept in step with a topic by the broker, in the transaction that publishes to it (a result
   * store in the same database): SQLite views by the embedded broker, Redis views on its own
   * server by the Redis broker; the others are passed over.
   */
  readonly views?: readonly (TopicView<OutgoingMessage> | StreamView<OutgoingMessage>)[];
  readonly logger?: Logger;
}

/** Adapters are imported only when chosen, so an unused one never loads its client library. */
export async function openBroker(settings: BrokerSettings): Promise<Broker> {
  const scheme = settings.url.split(':')[0];
  switch (scheme) {
    case 'embedded': {
      const { EmbeddedBroker } = await import('./embedded/embedded-broker.js');
      return EmbeddedBroker.open({
        dataDir: settings.dataDir,
        ...(settings.leaseMs === undefined ? {} : { defaultLeaseMs: settings.leaseMs }),
        ...(settings.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: settings.busyTimeoutMs }),
        ...(settings.pollMs === undefined ? {} : { pollMs: settings.pollMs }),
        views: (settings.views ?? []).filter((view) => view.kind === 'sqlite'),
      });
    }
    case 'kafka': {
      const [{ KafkaBroker }, { parseKafkaUrl }] = await Promise.all([
        import('./kafka/kafka-broker.js'),
        import('./kafka/kafka-options.js'),
      ]);
      return new KafkaBroker({
        bootstrap: parseKafkaUrl(settings.url),
        clientId: settings.kafka?.clientId ?? 'spillway',
        partitions: settings.kafka?.partitions ?? 4,
        replicationFactor: settings.kafka?.replicationFactor ?? 1,
        leaseMs: settings.leaseMs ?? 30_000,
        ...(settings.logger === undefined ? {} : { logger: settings.logger }),
      });
    }
    case 'redis':
    case 'rediss': {
      // rediss:// too, so that parseRedisUrl says what is wrong with it (TLS is not supported).
      const { openRedisBroker, defaultRedisMaxMessageBytes } = await import('./redis/redis-broker.js');
      return openRedisBroker(settings.url, {
        leaseMs: settings.leaseMs ?? 30_000,
        maxMessageBytes: settings.redis?.maxMessageBytes ?? defaultRedisMaxMessageBytes,
        views: (settings.views ?? []).filter((view) => view.kind === 'redis'),
        ...(settings.logger === undefined ? {} : { logger: settings.logger }),
      });
    }
    default:
      throw new SpillwayError('SPILLWAY_INVALID_CONFIG', `unknown broker "${settings.url}"`, {
        details: [{ pointer: 'broker', message: `unknown broker "${settings.url}"; expected "embedded" or kafka://host:port` }],
      });
  }
}
