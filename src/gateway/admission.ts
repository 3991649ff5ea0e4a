import type { FastifyBaseLogger } from 'fastify';
import type { RequestEnvelope } from '../protocol/envelope.js';
import type { PredictionRecord } from '../protocol/prediction.js';
import type { QueueSlot } from './backpressure.js';
import type { GatewayContext } from './context.js';
import { claimIdempotencyKey, type KeyClaim } from './idempotency.js';
import type { Caller } from './tenancy/authenticator.js';
import type { HeldPlace } from './tenancy/tenant-limits.js';
import type { Waiter } from './waiters.js';

/** What admission needs of the gateway: the store holds keys, backpressure slots, waiters clients. */
export type AdmissionContext = Pick<GatewayContext, 'store' | 'backpressure' | 'waiters' | 'limits'>;

/** What admission needs of the request. */
export interface AdmissionRequest {
  /** Every Idempotency-Key header the request sent, unmerged (`headersDistinct`). */
  readonly keyHeaders: readonly string[] | undefined;
  /** The body as sent, fingerprinted with the key. */
  readonly body: unknown;
  readonly log: FastifyBaseLogger;
}

/**
 * What a submission holds while the queue has not yet accepted it: its Idempotency-Key, its
 * place in the model's queue, its place among its tenant's open predictions and its waiting
 * client (with its place among the tenant's held connections). `accepted()` keeps them for good; until
 * then `release()` gives back everything taken so far, once, whichever step failed, so that a
 * refused request leaves no trace and the client may retry with the same key.
 */
export class Admission {
  private slot: QueueSlot | undefined;
  private openPlace: HeldPlace | undefined;
  private held: Waiter | undefined;
  private waitingPlace: HeldPlace | undefined;
  private settled = false;

  private constructor(
    private readonly ctx: AdmissionContext,
    private readonly envelope: RequestEnvelope,
    private readonly key: KeyClaim,
  ) {}

  /**
   * Holds the request's Idempotency-Key for `envelope`'s prediction. If the key already stands
   * for a prediction, `original` is that prediction and nothing is held.
   */
  static async claim(ctx: AdmissionContext, envelope: RequestEnvelope, request: AdmissionRequest): Promise<Admission> {
    return new Admission(ctx, envelope, await claimIdempotencyKey(ctx.store, request.keyHeaders, envelope, request.body, request.log));
  }

  /** The prediction an earlier request with this Idempotency-Key created, to answer instead. */
  get original(): PredictionRecord | undefined {
    return this.key.original;
  }

  /** The client's place among the waiters, if it asked to wait and there was room. */
  get waiter(): Waiter | undefined {
    return this.held;
  }

  /**
   * A place in the model's queue; 429 SPILLWAY_QUEUE_FULL when it is at its max_queue_depth,
   * SPILLWAY_PRIORITY_QUEUE_FULL when at the share of it the request's class may fill.
   */
  async takeSlot(): Promise<void> {
    this.slot = await this.ctx.backpressure.admit(this.envelope.model, this.envelope.priority);
  }

  /** A place among the caller's open predictions; 429 SPILLWAY_TENANT_QUEUE_FULL when it has its max_queued. */
  async takeTenantPlace(caller: Caller): Promise<void> {
    this.openPlace = await this.ctx.limits.openPlace(caller, this.envelope.id, this.envelope.deadline);
  }

  /** Registered before publishing: the result may arrive before publish() returns. */
  holdWaiter(waitS: number): void {
    if (waitS > 0) this.held = this.ctx.waiters.tryAdd(this.envelope.id);
  }

  /**
   * holdWaiter for a caller with limits: one at its cap of held connections (or a gateway at
   * its max_waiters) gets no waiter, and is answered 202 at once.
   */
  async holdCappedWaiter(caller: Caller, waitS: number): Promise<void> {
    if (waitS <= 0) return;
    const place = await this.ctx.limits.waitingPlace(caller, this.envelope.id, waitS * 1000);
    if (place === undefined) return;
    this.held = this.ctx.waiters.tryAdd(this.envelope.id);
    if (place !== 'unlimited') {
      if (this.held === undefined) await place.release();
      else this.waitingPlace = place;
    }
  }

  /** The client is answered: its held connection's place is free again. */
  async waitEnded(): Promise<void> {
    const place = this.waitingPlace;
    this.waitingPlace = undefined;
    await place?.release();
  }

  /** The queue (or a sync worker) has the request: what is held stays held. */
  accepted(): void {
    this.settled = true;
    this.slot?.accepted();
  }

  /** Gives back whatever was not accepted; a no-op once accepted or released. */
  async release(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    this.held?.cancel();
    this.slot?.abandoned();
    await Promise.all([this.key.release(), this.openPlace?.release(), this.waitEnded()]);
  }
}
