import type { PredictionRecord } from '../protocol/prediction.js';

/** A request to hold an idempotency key for one prediction. */
export interface IdempotencyKeyClaim {
  /** The client's Idempotency-Key. */
  readonly key: string;
  /** Identifies the request the key was sent with (a hash of model and body). */
  readonly fingerprint: string;
  /** The prediction the key will stand for if this claim wins. */
  readonly id: string;
  /** RFC 3339 acceptance time of that prediction. */
  readonly createdAt: string;
}

/** What claiming a key found: it was free and is now ours, or another claim holds it. */
export type IdempotencyClaimResult =
  | { readonly claimed: true }
  | { readonly claimed: false; readonly id: string; readonly fingerprint: string; readonly createdAt: string };

/**
 * id → prediction record, kept for a retention period. Poll, waiters and (later) SSE read from
 * it, and it holds the idempotency keys. Every adapter keeps the same rule: a record is stored
 * only if it supersedes the stored one (status moves forward, the first terminal record wins), so
 * writers may deliver the same record twice or out of order.
 */
export interface ResultStore {
  /** Resolves once the records that supersede their stored versions are durably written. */
  put(records: readonly PredictionRecord[]): Promise<void>;
  get(id: string): Promise<PredictionRecord | undefined>;
  /**
   * Holds `claim.key` for `claim.id`, atomically across every process sharing the store: of any
   * number of concurrent claims of a free key exactly one resolves `claimed`, and every other
   * claim of that key gets the holder's id, fingerprint and createdAt. A claim is durable once
   * this resolves and lasts as long as the store keeps records (its retention); after that the
   * key is free again.
   */
  claimIdempotencyKey(claim: IdempotencyKeyClaim): Promise<IdempotencyClaimResult>;
  /** Frees `key` if it is still held for `id` (that request was not accepted after all). */
  releaseIdempotencyKey(key: string, id: string): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
