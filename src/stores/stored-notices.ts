import { BroadcastChannel } from 'node:worker_threads';
import type { PredictionRecord } from '../protocol/prediction.js';

/**
 * Final records a store writer has just stored, announced to every thread of this process that
 * listens on the same name. A gateway wakes its waiting clients from these, so the store writer
 * may run in another thread (as `spillway serve` does) and a client still never gets a result
 * that a poll could contradict.
 */
export class StoredNotices {
  private readonly channel: BroadcastChannel;

  constructor(name: string) {
    this.channel = new BroadcastChannel(`spillway:stored:${name}`);
    this.channel.unref();
  }

  announce(records: readonly PredictionRecord[]): void {
    if (records.length > 0) this.channel.postMessage(records);
  }

  listen(handle: (records: readonly PredictionRecord[]) => void): void {
    this.channel.onmessage = (event) => handle((event as { data: PredictionRecord[] }).data);
  }

  close(): void {
    this.channel.close();
  }
}
