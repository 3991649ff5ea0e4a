import type { Logger } from 'pino';
import type { Broker } from '../brokers/broker.js';
import { LazySubscription } from '../brokers/lazy-subscription.js';
import { StreamReader } from '../brokers/stream-reader.js';
import { decodeRecord } from '../protocol/decode-record.js';
import { isTerminal } from '../protocol/prediction.js';
import { storeWriterGroup } from '../protocol/topics.js';
import type { PredictionRecords } from './store.js';
import { isStored } from './viewed-records.js';

/**
 * Copies every record on the response stream into the store, in batches, then announces the
 * final ones it wrote. A prediction's final record often appears more than once on the stream
 * (a canceled request is published by the gateway and again by the worker that skips it; a
 * redelivery publishes a result twice), but the store writes only the first, so each outcome is
 * announced (and counted) once. A final record some other writer stored first (a cancel, an
 * expiry) is announced by that writer. A record the embedded queue already wrote into a store
 * in its own file (the `stored` header) is passed over: that store announced it as it committed.
 */
export async function startStoreWriter(o: {
  broker: Broker;
  store: Pick<PredictionRecords, 'put' | 'announceStored'>;
  responsesTopic: string;
  logger: Logger;
}): Promise<StreamReader> {
  // A sole reader: its writes are idempotent (the store keeps the newest record by rank), so a
  // record read twice, by a second writer or again after a restart, costs a write and changes
  // nothing; in exchange the embedded broker keeps no lease row per record (docs/stores.md).
  const subscription = new LazySubscription(o.broker, { topic: o.responsesTopic, group: storeWriterGroup, soleReader: true });
  return new StreamReader({
    name: 'store writer',
    subscription,
    batchSize: 512,
    logger: o.logger,
    handle: async (deliveries) => {
      const records = deliveries
        .filter((d) => !isStored(d.headers))
        .map((d) => decodeRecord(d.value))
        .filter((r) => r !== undefined);
      const written = await o.store.put(records);
      o.store.announceStored(written.filter((r) => isTerminal(r.status)));
      await Promise.all(deliveries.map((d) => d.ack()));
    },
  }).start();
}
