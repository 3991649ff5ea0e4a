import type { Logger } from 'pino';
import type { Broker } from '../brokers/broker.js';
import { LazySubscription } from '../brokers/lazy-subscription.js';
import { StreamReader } from '../brokers/stream-reader.js';
import { decodeRecord } from '../protocol/decode-record.js';
import { headerNames } from '../protocol/envelope.js';
import { isTerminal, type PredictionRecord } from '../protocol/prediction.js';
import { gatewayResponsesGroup } from '../protocol/topics.js';
import type { PredictionRecords } from '../stores/store.js';
import type { RecordListeners } from './record-listeners.js';
import type { Waiters } from './waiters.js';

/**
 * This gateway's own view of the response stream (an ephemeral group, from now on), for the
 * clients holding a connection here whose result another process's store writer took.
 *
 * A client must never get a result that a poll right after could contradict, so a waiter is only
 * woken with a stored terminal record. Normally this process's store writer wakes it first; this
 * reader gives it `graceMs`, and again twice as long each time while it still lags (a loaded
 * store writer runs behind the stream by more than any fixed grace, and reading and writing
 * every record here too would load the process further), up to `maxGraceMs` in all; then it
 * wakes the waiter from the store, writing the record itself if the store does not have it yet.
 *
 * Event streams listening here get the same treatment for final records; progress records
 * (`running`) are handed to them at once, since nothing a poll could contradict hangs on them.
 */
export async function startResponseReader(o: {
  broker: Broker;
  store: Pick<PredictionRecords, 'put' | 'get'>;
  waiters: Waiters;
  listeners: RecordListeners;
  /** Counts the final records this reader writes itself (see GatewayContext.finished). */
  finished: (records: readonly PredictionRecord[]) => void;
  responsesTopic: string;
  gatewayId: string;
  logger: Logger;
  graceMs?: number;
  maxGraceMs?: number;
}): Promise<StreamReader> {
  const firstGraceMs = o.graceMs ?? 20;
  const maxGraceMs = o.maxGraceMs ?? 640;
  const subscription = new LazySubscription(o.broker, {
    topic: o.responsesTopic,
    group: gatewayResponsesGroup(o.gatewayId),
    from: 'latest',
    ephemeral: true,
  });
  const interested = (id: string) => o.waiters.has(id) || o.listeners.has(id);
  const deliver = (stored: PredictionRecord) => {
    o.waiters.resolve(stored);
    o.listeners.notify(stored);
  };
  // Called a grace period after the record went by: only waiters nobody has woken remain.
  const settleAfter = (results: readonly WaitedResult[], graceMs: number, waitedMs: number) => {
    setTimeout(() => {
      // Most are woken by the store writer meanwhile: only those still waited for are kept.
      const left = results.filter(({ id }) => id === undefined || interested(id));
      if (left.length === 0) return;
      const waited = waitedMs + graceMs;
      if (waited < maxGraceMs) return settleAfter(left, Math.min(graceMs * 2, maxGraceMs - waited), waited);
      settle(left).catch((error: unknown) => o.logger.warn({ err: error }, 'could not hand results to waiting clients'));
    }, graceMs).unref();
  };
  const settle = async (results: readonly WaitedResult[]) => {
    const unstored: PredictionRecord[] = [];
    for (const { id, value } of results) {
      if (id !== undefined && !interested(id)) continue;
      const record = decodeRecord(value);
      if (record === undefined || !isTerminal(record.status) || !interested(record.id)) continue;
      const stored = await o.store.get(record.id);
      if (stored !== undefined && isTerminal(stored.status)) deliver(stored);
      else unstored.push(record);
    }
    if (unstored.length === 0) return;
    const written = new Set(await o.store.put(unstored));
    for (const record of unstored) {
      const stored = (await o.store.get(record.id)) ?? record;
      // Ours to count: the store writer counts only the final records it writes itself.
      if (written.has(record)) o.finished([stored]);
      deliver(stored);
    }
  };
  return new StreamReader({
    name: 'response reader',
    subscription,
    batchSize: 512,
    logger: o.logger,
    handle: async (deliveries) => {
      // Keep the raw text of results someone here waits for (the id header spares parsing the
      // rest); most are handed over by the store writer before the grace period ends.
      const waited: WaitedResult[] = [];
      for (const d of deliveries) {
        const id = d.headers[headerNames.id];
        if (id !== undefined) o.listeners.remember(id, d.value);
        if (id !== undefined && !interested(id)) continue;
        if (id !== undefined && o.listeners.has(id)) {
          const record = decodeRecord(d.value);
          if (record !== undefined && !isTerminal(record.status)) {
            o.listeners.notify(record);
            continue;
          }
        }
        waited.push({ id, value: d.value });
      }
      await Promise.all(deliveries.map((d) => d.ack()));
      if (waited.length > 0) settleAfter(waited, firstGraceMs, 0);
    },
  }).start();
}

/** A result someone here waited for when it went by: its id header (if any) and raw text. */
interface WaitedResult {
  readonly id: string | undefined;
  readonly value: string;
}
