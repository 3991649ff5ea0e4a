import type { CallbackDeliveryView, CallbackEventName, PredictionRecord } from '../protocol/prediction.js';

/** A webhook owed to a client: the exact body to send on every attempt. */
export interface NewCallbackDelivery {
  /** Stable per prediction, event and replay generation; also the `webhook-id` header. */
  readonly webhookId: string;
  readonly predictionId: string;
  readonly event: CallbackEventName;
  readonly url: string;
  /** The payload as signed and sent, built once so retries send the same bytes. */
  readonly body: string;
}

/** A due delivery, held by one dispatcher until its lease ends or it records the outcome. */
export interface ClaimedCallback extends NewCallbackDelivery {
  /** Attempts made before this one. */
  readonly attempts: number;
  /** Proves the lease when recording the outcome; a stale holder's outcome is ignored. */
  readonly leaseToken: string;
}

/** How one attempt went, and so what the delivery becomes. */
export interface CallbackAttemptOutcome {
  readonly webhookId: string;
  readonly leaseToken: string;
  /** pending: try again at `nextAttemptAt`. */
  readonly state: 'pending' | 'delivered' | 'gone' | 'dead';
  readonly status?: number;
  readonly error?: string;
  /** Epoch ms; required when `state` is pending. */
  readonly nextAttemptAt?: number;
}

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

/** Final records some handle of the store announced as stored. */
export interface StoredNotice {
  readonly records: readonly PredictionRecord[];
  /**
   * Announced by this process (any of its threads), so counted here: whoever writes a final
   * record counts it once, and other processes only wake their waiters with it.
   */
  readonly local: boolean;
}

/**
 * id → prediction record, kept for a retention period. Poll, held connections and event streams
 * read from it. Every adapter keeps the same rule: a record is stored only if it supersedes the
 * stored one (status moves forward, the first terminal record wins, a later replay generation
 * starts over, a later attempt's running replaces an earlier one), so writers may deliver the same
 * record twice or out of order.
 */
export interface PredictionRecords {
  /**
   * Resolves once the records that supersede their stored versions are durably written, with
   * those records: a final record is written once per prediction however often it is put, so
   * whoever counts outcomes counts what this returns.
   */
  put(records: readonly PredictionRecord[]): Promise<readonly PredictionRecord[]>;
  get(id: string): Promise<PredictionRecord | undefined>;
  /**
   * Tells every handle of this store, in this process and in others, that these final records
   * are stored (the caller has put them). Best effort and never throws: a notice that does not
   * arrive only leaves a waiter to its fallback, a read of the store.
   */
  announceStored(records: readonly PredictionRecord[]): void;
  /**
   * Hears what any handle of the store announces from now on, its own included, until the
   * returned function is called. Notices from this process arrive at once; from other processes
   * soon after.
   */
  onStored(listener: (notice: StoredNotice) => void): () => void;
}

/** Idempotency-Key → the prediction it stands for, shared by every gateway of a deployment. */
export interface IdempotencyKeys {
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
}

/** The webhooks owed to clients, leased to callback dispatchers one attempt at a time. */
export interface CallbackSchedule {
  /**
   * Durably schedules webhooks, due at once. A delivery whose webhook id is already scheduled is
   * left as it is (a redelivered response message must not send twice); resolves how many were new.
   */
  enqueueCallbacks(deliveries: readonly NewCallbackDelivery[]): Promise<number>;
  /**
   * Up to `limit` pending deliveries that are due and not leased, each leased for `leaseMs` to
   * this caller alone: concurrent claims across processes never return the same delivery while
   * its lease runs.
   */
  claimCallbacks(limit: number, leaseMs: number): Promise<ClaimedCallback[]>;
  /** Records one attempt (attempts + 1) and ends the lease; false if the lease was lost meanwhile. */
  recordCallbackAttempt(outcome: CallbackAttemptOutcome): Promise<boolean>;
  /** The webhooks owed for a prediction and their state, oldest first. */
  callbackDeliveries(predictionId: string): Promise<CallbackDeliveryView[]>;
  /**
   * Sends a dead webhook again (an operator's replay): pending and due at once, with a fresh
   * budget of attempts and the same webhook id. False if it is not dead (or unknown).
   */
  resendCallback(webhookId: string): Promise<boolean>;
}

export interface StoreLifecycle {
  /** Resolves if the store answers (readiness). */
  ping(): Promise<void>;
  /** Ends this handle: its listeners hear nothing more; the store's contents stay. */
  close(): Promise<void>;
}

/**
 * What a store adapter implements. Its users take only the parts they need; every process that
 * opens the same store (by the same settings) shares its records, keys and schedule.
 */
export interface ResultStore extends PredictionRecords, IdempotencyKeys, CallbackSchedule, StoreLifecycle {}
