import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Broker } from '../brokers/broker.js';
import { StreamReader } from '../brokers/stream-reader.js';
import { decodeRecord } from '../protocol/decode-record.js';
import { isTerminal, type PredictionRecord } from '../protocol/prediction.js';
import type { ResultStore } from '../stores/store.js';
import type { Waiters } from './waiters.js';

/**
 * This gateway's own reader of the response stream (an ephemeral group, from now on): it wakes
 * the clients holding a connection here. The record is written to the store before the client
 * hears of it, so a poll right after a 200 never sees an older status.
 */
export async function startResponseReader(o: {
  broker: Broker;
  store: ResultStore;
  waiters: Waiters;
  responsesTopic: string;
  gatewayId: string;
  logger: Logger;
}): Promise<StreamReader> {
  const subscription = await o.broker.subscribe({
    topic: o.responsesTopic,
    group: `gateway.${o.gatewayId}.${randomUUID().slice(0, 8)}`,
    from: 'latest',
    ephemeral: true,
  });
  return new StreamReader({
    name: 'response reader',
    subscription,
    batchSize: 512,
    logger: o.logger,
    handle: async (deliveries) => {
      const finals: PredictionRecord[] = [];
      for (const d of deliveries) {
        const record = decodeRecord(d.value);
        if (record !== undefined && isTerminal(record.status) && o.waiters.has(record.id)) finals.push(record);
      }
      if (finals.length > 0) {
        await o.store.put(finals).catch((error: unknown) => o.logger.warn({ err: error }, 'could not store results'));
        for (const record of finals) o.waiters.resolve(record);
      }
      await Promise.all(deliveries.map((d) => d.ack()));
    },
  }).start();
}
