import type { Logger } from 'pino';
import type { Broker } from '../brokers/broker.js';
import { LazySubscription } from '../brokers/lazy-subscription.js';
import { StreamReader } from '../brokers/stream-reader.js';
import { decodeRecord } from '../protocol/decode-record.js';
import { isTerminal } from '../protocol/prediction.js';
import type { StoredNotices } from './stored-notices.js';
import type { ResultStore } from './store.js';

/** The consumer group that copies the response stream into the result store. */
export const storeWriterGroup = 'store';

/**
 * Copies every record on the response stream into the store, in batches, then announces the
 * final ones. It is one shared group, so however many processes run it, each record is
 * written (and counted) about once.
 */
export async function startStoreWriter(o: {
  broker: Broker;
  store: ResultStore;
  responsesTopic: string;
  notices: StoredNotices;
  logger: Logger;
}): Promise<StreamReader> {
  const subscription = new LazySubscription(o.broker, { topic: o.responsesTopic, group: storeWriterGroup });
  return new StreamReader({
    name: 'store writer',
    subscription,
    batchSize: 512,
    logger: o.logger,
    handle: async (deliveries) => {
      const records = deliveries.map((d) => decodeRecord(d.value)).filter((r) => r !== undefined);
      await o.store.put(records);
      o.notices.announce(records.filter((r) => isTerminal(r.status)));
      await Promise.all(deliveries.map((d) => d.ack()));
    },
  }).start();
}
