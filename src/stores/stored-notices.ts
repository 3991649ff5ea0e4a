import { hostname } from 'node:os';
import { BroadcastChannel } from 'node:worker_threads';
import type { PredictionRecord } from '../protocol/prediction.js';
import type { StoredNotice } from './store.js';

/** Names this process to its peers, the same in each of its threads (pid alone repeats across hosts). */
const processOrigin = `${hostname()}:${process.pid}`;

/** How an adapter carries notices to other processes (a table, pub/sub); it need not filter its own. */
export interface NoticeCarrier {
  /** Best effort: a notice lost only leaves waiters elsewhere to their fallback. */
  send(origin: string, records: readonly PredictionRecord[]): void;
  /**
   * Starts handing over what processes other than `origin` send from now on (what `origin` sent
   * may come too); the returned function stops it.
   */
  watch(origin: string, deliver: (origin: string, records: readonly PredictionRecord[]) => void): () => void;
}

/**
 * The notices part of a store handle: final records announced as stored, heard by every handle
 * of the same store.
 *
 * Threads of this process hear each other through a BroadcastChannel named after the store: the
 * fast path, since the gateway's waiters are woken from it (`spillway serve` runs the store
 * writer in another thread). Other processes hear through the adapter's carrier; what comes back
 * from this process that way is dropped, having arrived already.
 */
export class StoredNotices {
  private outgoing: BroadcastChannel | undefined;
  private incoming: BroadcastChannel | undefined;
  private stopWatching: (() => void) | undefined;
  private readonly listeners = new Set<(notice: StoredNotice) => void>();
  private closed = false;

  constructor(
    private readonly channelName: string,
    private readonly carrier: NoticeCarrier,
  ) {}

  announce(records: readonly PredictionRecord[]): void {
    if (records.length === 0 || this.closed) return;
    this.outgoing ??= unrefed(new BroadcastChannel(this.channelName));
    // Threads here first: the carrier's write must not delay the waiters of this process.
    this.outgoing.postMessage(records);
    this.carrier.send(processOrigin, records);
  }

  listen(listener: (notice: StoredNotice) => void): () => void {
    if (this.closed) return () => {};
    this.listeners.add(listener);
    if (this.incoming === undefined) {
      // Its own channel, not `outgoing`: a channel never hears itself, and a gateway may listen on
      // the handle its store writer announces through.
      this.incoming = unrefed(new BroadcastChannel(this.channelName));
      this.incoming.onmessage = (event) => this.deliver({ records: (event as { data: PredictionRecord[] }).data, local: true });
      this.stopWatching = this.carrier.watch(processOrigin, (origin, records) => {
        if (origin !== processOrigin) this.deliver({ records, local: false });
      });
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopListening();
    };
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
    this.stopListening();
    this.outgoing?.close();
    this.outgoing = undefined;
  }

  private deliver(notice: StoredNotice): void {
    for (const listener of [...this.listeners]) listener(notice);
  }

  private stopListening(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
    this.incoming?.close();
    this.incoming = undefined;
  }
}

function unrefed(channel: BroadcastChannel): BroadcastChannel {
  channel.unref();
  return channel;
}
