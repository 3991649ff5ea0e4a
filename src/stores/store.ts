import type { OutgoingMessage } from '../protocol/message.js';
import type { CallbackDeliveryView, CallbackEventName, PredictionRecord } from '../protocol/prediction.js';
import type { StreamView } from '../redis/stream-view.js';
import type { TopicView } from '../sqlite/topic-view.js';

/** How a queue in the store's own database (a SQLite file, a Redis server) writes records into the store as it publishes them. */
export type RecordsView = TopicView<OutgoingMessage> | StreamView<OutgoingMessage>;

/** A webhook owed to a client: the exact body to send on every attempt. */
export interface NewCallbackDelivery {
  /** Stable per prediction, event and replay generation; also the `webhook-id` header. */
  readonly webhookId: string;
  readonly predictionId: string;
  /** The tenant the prediction belongs to, so the dispatcher signs with that tenant's secrets. */
  readonly tenant?: string;
  /** The W3C traceparent of the run that made the outcome: the delivery's span joins that trace. */
  readonly traceparent?: string;
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

/**
 * An API key as the store keeps it. The secret itself is never stored: only its SHA-256, which
 * the gateway compares in constant time. Keys do not expire with the record retention.
 */
export interface StoredApiKey {
  /** The public part of the key (`spw_<id>_<secret>`), by which it is looked up. */
  readonly id: string;
  readonly tenant: string;
  readonly scopes: readonly string[];
  /** Lowercase hex SHA-256 of the secret part. */
  readonly hash: string;
  /** RFC 3339. */
  readonly createdAt: string;
  /** A label for people (`ci`, `alice's laptop`). */
  readonly name?: string;
  /** RFC 3339; past it the key no longer authenticates (set on the old key of a rotation). */
  readonly expiresAt?: string;
  /** RFC 3339; set once, by revoke. */
  readonly revokedAt?: string;
  /** This key's own limits, in place of its tenant's (its own buckets and caps). */
  readonly limits?: LimitOverrides;
}

/** Limits that a key (or a tenant's configuration) sets; an absent field means "inherit". */
export interface LimitOverrides {
  /** Requests per second, refilled continuously (token bucket); at 0 the bucket never refills: `burst` requests, then none. */
  readonly ratePerS?: number;
  /** Bucket size: how many requests may come at once after a quiet spell. */
  readonly burst?: number;
  /** Predictions accepted and not yet final. */
  readonly maxQueued?: number;
  /** Connections held open waiting for a result (`Prefer: wait`). */
  readonly maxWaiting?: number;
}

/** API keys, shared by every gateway of a deployment and managed by `spillway keys`. */
export interface ApiKeys {
  /** Stores a new key, or replaces the one with the same id (a revoke, a rotation's expiry). */
  putApiKey(key: StoredApiKey): Promise<void>;
  getApiKey(id: string): Promise<StoredApiKey | undefined>;
  /** Every key ever created, revoked and expired ones included, oldest first. */
  listApiKeys(): Promise<StoredApiKey[]>;
  /**
   * Whether any key was ever created (revoked ones count: revoking the last key must not open
   * the API to everyone).
   */
  hasApiKeys(): Promise<boolean>;
}

/**
 * A token bucket: `burst` tokens at most, refilled continuously at `ratePerS`. A bucket never
 * taken from (or left alone until it refilled) is full. Its settings are given with each take,
 * not stored: a bucket taken with other settings than before keeps its tokens, clamped to the
 * new burst. A rate of 0 never refills (`burst` takes, then none); a negative or non-finite rate
 * or burst counts as 0.
 */
export interface RateBucket {
  /** Identifies the bucket across every gateway (`tenant:acme`, `tenant:acme:model:iris`). */
  readonly name: string;
  readonly ratePerS: number;
  readonly burst: number;
}

/** One bucket's state after a take (after the refusal, for one refused). */
export interface RateBucketState {
  /** Whole tokens left after this take. */
  readonly remaining: number;
  /** Ms until the bucket is full again, rounded up; at most a day (a bucket that never refills). */
  readonly resetMs: number;
}

export type RateDecision =
  | { readonly allowed: true; readonly buckets: readonly RateBucketState[] }
  | {
      readonly allowed: false;
      readonly buckets: readonly RateBucketState[];
      /** Ms until a token is there in every bucket (the longest bucket's wait), rounded up; at most a day. */
      readonly retryAfterMs: number;
    };

/**
 * The shared state behind per-tenant limits, so that they hold across every gateway: token
 * buckets for request rates, and capped sets (predictions a tenant has open, connections it
 * holds) whose members expire by themselves, so a gateway that dies holding some frees them.
 */
export interface LimitState {
  /**
   * Takes one token from every bucket, atomically across processes: from all of them, or (when
   * any has less than one) from none. `buckets` in the order of the states returned; a name given
   * twice is taken from once. Every process sharing the store measures refills on one clock (the
   * Redis server's; on SQLite, the machine's), so gateways with skewed clocks agree.
   */
  takeTokens(buckets: readonly RateBucket[]): Promise<RateDecision>;
  /**
   * Adds `member` to `set` unless the set already holds `cap` live members; atomic across
   * processes, so concurrent joins never overfill it. A member lives until `expiresAt` (epoch
   * ms, compared with the store's clock as `takeTokens` says) or until it leaves. Joining again
   * as a live member sets its expiry to the new one and succeeds, even in a full set. Resolves
   * with whether it joined and how many live members the set has now.
   */
  joinCapped(set: string, member: string, cap: number, expiresAt: number): Promise<{ readonly joined: boolean; readonly size: number }>;
  /** Removes these members; unknown ones are ignored. */
  leaveCapped(set: string, members: readonly string[]): Promise<void>;
}

export interface StoreLifecycle {
  /** Resolves if the store answers (readiness). */
  ping(): Promise<void>;
  /** Ends this handle: its listeners hear nothing more; the store's contents stay. */
  close(): Promise<void>;
  /**
   * Set on a store a queue can share: the view through which a queue in the same database (the
   * embedded queue's file, the same Redis server) writes the records published on `topic` (the
   * response stream) into the store in the same transaction, and announces the final ones once
   * it commits. The store writer then passes over them (they carry the `stored` header).
   */
  readonly recordsView?: (topic: string) => RecordsView;
}

/**
 * What a store adapter implements. Its users take only the parts they need; every process that
 * opens the same store (by the same settings) shares its records, keys and schedule.
 */
export interface ResultStore extends PredictionRecords, IdempotencyKeys, CallbackSchedule, ApiKeys, LimitState, StoreLifecycle {}
