import type { PredictionRecord } from '../protocol/prediction.js';

/**
 * id → prediction record, kept for a retention period. Poll, waiters and (later) SSE and
 * idempotency read from it. Every adapter keeps the same rule: a record is stored only if it
 * supersedes the stored one (status moves forward, the first terminal record wins), so writers
 * may deliver the same record twice or out of order.
 */
export interface ResultStore {
  /** Resolves once the records that supersede their stored versions are durably written. */
  put(records: readonly PredictionRecord[]): Promise<void>;
  get(id: string): Promise<PredictionRecord | undefined>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
