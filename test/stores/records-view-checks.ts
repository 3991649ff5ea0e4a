import pino from 'pino';
import type { Broker, Delivery } from '../../src/brokers/broker.js';
import { headerNames } from '../../src/protocol/envelope.js';
import { startStoreWriter } from '../../src/stores/store-writer.js';
import type { PredictionRecords } from '../../src/stores/store.js';

/** Each delivery's prediction id and its `stored` mark (set by a records view). */
export const storedMarks = (deliveries: readonly Delivery[]) => deliveries.map((d) => [d.headers[headerNames.id], d.headers[headerNames.stored]]);

/** A store writer on `responses` that keeps the ids of the records it puts. */
export async function countingStoreWriter(broker: Broker, store: Pick<PredictionRecords, 'put' | 'announceStored'>, responses: string) {
  const put: string[] = [];
  const writer = await startStoreWriter({
    broker,
    store: { put: (records) => (put.push(...records.map((r) => r.id)), store.put(records)), announceStored: (records) => store.announceStored(records) },
    responsesTopic: responses,
    logger: pino({ level: 'silent' }),
  });
  return { put, stop: () => writer.stop() };
}
