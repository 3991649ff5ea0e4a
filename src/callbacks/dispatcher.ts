import type { Logger } from 'pino';
import type { Broker } from '../brokers/broker.js';
import { LazySubscription } from '../brokers/lazy-subscription.js';
import { StreamReader } from '../brokers/stream-reader.js';
import { envelopeVersion, headerNames } from '../protocol/envelope.js';
import { SpanKind, endSpan, startChild, traceparentOf, type Tracer } from '../observability/tracing.js';
import { decodeRecord } from '../protocol/decode-record.js';
import type { ErrorCode } from '../protocol/errors.js';
import { isTerminal, type CallbackEventName, type PredictionRecord } from '../protocol/prediction.js';
import { callbackGroup, topicsFor } from '../protocol/topics.js';
import type { CallbackAttemptOutcome, CallbackSchedule, ClaimedCallback, NewCallbackDelivery } from '../stores/store.js';
import { secretsFor, type CallbackSettings } from './callback-settings.js';
import { backoff, deliver, type DeliveryOptions, type DeliveryOutcome } from './deliver.js';
import { checkCallbackUrl } from './egress-guard.js';
import { buildPayload, signWebhook, type CallbackEvent } from './signing.js';

export interface DispatcherOptions {
  readonly broker: Broker;
  readonly store: Pick<CallbackSchedule, 'enqueueCallbacks' | 'claimCallbacks' | 'recordCallbackAttempt'>;
  readonly prefix: string;
  readonly settings: CallbackSettings;
  readonly logger: Logger;
  /** How often the schedule is checked for due deliveries; default 200 ms. */
  readonly pollMs?: number;
  /** Deliveries claimed per pass, sent concurrently; default 16. */
  readonly batchSize?: number;
  /** For https receivers with a private CA (tests). */
  readonly ca?: DeliveryOptions['ca'];
  /** Makes a span of each delivery attempt (docs/tracing.md); none when undefined. */
  readonly tracer?: Tracer | undefined;
}

/** The callback letter on `<prefix>.dlq` (docs/messages.md). */
export interface CallbackDeadLetter {
  readonly v: typeof envelopeVersion;
  readonly kind: 'callback';
  readonly webhook_id: string;
  readonly prediction_id: string;
  readonly url: string;
  readonly attempts: number;
  readonly reason: { readonly code: ErrorCode; readonly message: string };
  readonly failed_at: string;
}

const eventTypes: Record<CallbackEventName, CallbackEvent> = {
  running: 'prediction.running',
  completed: 'prediction.completed',
};

/** The event a record stands for, if its client asked for it. */
export function callbackEventOf(record: PredictionRecord): CallbackEventName | undefined {
  const event: CallbackEventName | undefined =
    record.status === 'running' ? 'running' : isTerminal(record.status) ? 'completed' : undefined;
  return event !== undefined && record.callback?.events.includes(event) === true ? event : undefined;
}

/**
 * One id per prediction, event and replay generation: a redelivered or repeated record (a later
 * attempt's `running`, a duplicate terminal record) maps to the webhook already owed, so the
 * client gets one call, while a replay from the dead letters is news and gets its own.
 */
export function webhookIdFor(record: PredictionRecord, event: CallbackEventName): string {
  return `msg_${record.id}_${event}_${record.replay ?? 0}`;
}

/**
 * Delivers callbacks in two halves joined by the store: a reader of the response stream that
 * schedules the webhooks records ask for (acking only once they are durably scheduled), and a
 * loop that claims due deliveries under a lease, sends them and records each outcome. A crash
 * anywhere loses nothing: unacked records are read again, and a lease that runs out makes its
 * delivery due for whichever dispatcher looks next.
 */
export class CallbackDispatcher {
  private reader: StreamReader | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly topics;
  private readonly leaseMs: number;

  constructor(private readonly o: DispatcherOptions) {
    this.topics = topicsFor(o.prefix);
    // Long enough for a connect and a response of the slowest attempt, with room to record it.
    this.leaseMs = o.settings.connectTimeoutMs + o.settings.responseTimeoutMs + 30_000;
  }

  async start(): Promise<this> {
    await this.o.broker.ensureTopic(this.topics.dlq);
    // A sole reader: scheduling a delivery is idempotent (one per prediction id), so a record read
    // twice changes nothing, and the embedded broker keeps no lease row per record it reads.
    const subscription = new LazySubscription(this.o.broker, { topic: this.topics.responses, group: callbackGroup, soleReader: true });
    this.reader = new StreamReader({
      name: 'callback dispatcher',
      subscription,
      batchSize: 256,
      logger: this.o.logger,
      handle: async (deliveries) => {
        const owed = deliveries.flatMap((d) => {
          if (d.headers[headerNames.callback] === 'no') return [];
          const record = decodeRecord(d.value);
          return record === undefined ? [] : this.owed(record, d.headers[headerNames.traceparent]);
        });
        const added = await this.o.store.enqueueCallbacks(owed);
        await Promise.all(deliveries.map((d) => d.ack()));
        if (added > 0) this.wake();
      },
    }).start();
    this.schedule();
    return this;
  }

  /** Stops reading and sending; attempts in flight finish and are recorded first. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.reader?.stop();
    await this.running;
  }

  /** Check the schedule now rather than at the next tick. */
  wake(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = this.pass().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      } else {
        this.schedule();
      }
    });
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.wake(), this.o.pollMs ?? 200);
  }

  private owed(record: PredictionRecord, traceparent: string | undefined): NewCallbackDelivery[] {
    const event = callbackEventOf(record);
    if (event === undefined || record.callback === undefined) return [];
    // The record is sent without the delivery history the store adds on read.
    const { deliveries: _history, ...callback } = record.callback;
    const data: PredictionRecord = { ...record, callback };
    return [
      {
        webhookId: webhookIdFor(record, event),
        predictionId: record.id,
        ...(record.tenant === undefined ? {} : { tenant: record.tenant }),
        ...(traceparent === undefined ? {} : { traceparent }),
        event,
        url: callback.url,
        body: buildPayload(eventTypes[event], data),
      },
    ];
  }

  private async pass(): Promise<void> {
    try {
      for (;;) {
        const batchSize = this.o.batchSize ?? 16;
        const claimed = await this.o.store.claimCallbacks(batchSize, this.leaseMs);
        await Promise.all(claimed.map((c) => this.attempt(c)));
        if (claimed.length < batchSize || this.stopped) return;
      }
    } catch (error) {
      this.o.logger.error({ err: error }, 'callback dispatcher: could not read the schedule');
    }
  }

  private async attempt(c: ClaimedCallback): Promise<void> {
    const s = this.o.settings;
    const attempt = c.attempts + 1;
    const log = this.o.logger.child({ webhook_id: c.webhookId, prediction_id: c.predictionId, attempt });
    // Checked again at every attempt: the name may resolve elsewhere since the request was accepted.
    const decision = await checkCallbackUrl(c.url, s.policy);
    let outcome: DeliveryOutcome | undefined;
    let failure: { code: ErrorCode; message: string; retryable: boolean } | undefined;
    if (!decision.ok) {
      failure = { code: decision.code, message: decision.reason, retryable: decision.retryable };
    } else if (secretsFor(s, c.tenant).length === 0) {
      // Scheduled by a gateway that had a secret; wait for this process to be given one too.
      failure = { code: 'SPILLWAY_INVALID_CONFIG', message: 'no callback signing secret is configured here', retryable: true };
    } else {
      const span = this.o.tracer === undefined ? undefined : startChild(this.o.tracer, `callback ${c.event}`, c.traceparent, { kind: SpanKind.CLIENT, attributes: { 'spillway.prediction_id': c.predictionId, 'spillway.webhook_id': c.webhookId, 'spillway.attempt': attempt } });
      const traceparent = span === undefined ? undefined : traceparentOf(span);
      outcome = await deliver(decision, signWebhook(c.body, secretsFor(s, c.tenant), { id: c.webhookId }), {
        ...(traceparent === undefined ? {} : { traceparent }),
        connectTimeoutMs: s.connectTimeoutMs,
        responseTimeoutMs: s.responseTimeoutMs,
        ...(this.o.ca === undefined ? {} : { ca: this.o.ca }),
      });
      if (span !== undefined) {
        if ('status' in outcome && outcome.status !== undefined) span.setAttribute('http.response.status_code', outcome.status);
        endSpan(span, outcome.kind === 'delivered' ? undefined : { code: 'SPILLWAY_CALLBACK_FAILED', message: outcome.reason });
      }
    }
    const base = { webhookId: c.webhookId, leaseToken: c.leaseToken };
    const status = outcome !== undefined && 'status' in outcome && outcome.status !== undefined ? { status: outcome.status } : {};
    let next: CallbackAttemptOutcome;
    let deadReason: CallbackDeadLetter['reason'] | undefined;
    if (outcome?.kind === 'delivered') {
      next = { ...base, ...status, state: 'delivered' };
    } else if (outcome?.kind === 'gone') {
      next = { ...base, ...status, state: 'gone', error: outcome.reason };
    } else {
      const message = outcome?.reason ?? failure?.message ?? 'unknown failure';
      const retryable = failure === undefined || failure.retryable;
      if (!retryable || attempt >= s.maxAttempts) {
        const code: ErrorCode = failure?.code ?? 'SPILLWAY_CALLBACK_FAILED';
        deadReason = { code, message: retryable ? `gave up after ${attempt} attempts: ${message}` : message };
        next = { ...base, ...status, state: 'dead', error: message };
      } else {
        const retryAfter = outcome?.kind === 'retry' ? Math.min(outcome.retryAfterMs, s.backoffCapMs) : 0;
        const delay = Math.max(retryAfter, backoff(attempt, s.backoffBaseMs, s.backoffCapMs));
        next = { ...base, ...status, state: 'pending', error: message, nextAttemptAt: Date.now() + delay };
      }
    }
    try {
      if (deadReason !== undefined) {
        // The letter first: a crash between the two sends the attempt again rather than losing the letter.
        await this.deadLetter(c, attempt, deadReason);
      }
      const recorded = await this.o.store.recordCallbackAttempt(next);
      if (!recorded) log.warn('callback lease ran out before the attempt was recorded; another dispatcher may retry it');
      log.debug({ state: next.state, reason: next.error }, 'callback attempt');
    } catch (error) {
      // The lease runs out and the delivery becomes due again: at least once, never lost.
      log.error({ err: error }, 'could not record a callback attempt');
    }
  }

  private async deadLetter(c: ClaimedCallback, attempts: number, reason: CallbackDeadLetter['reason']): Promise<void> {
    const letter: CallbackDeadLetter = {
      v: envelopeVersion,
      kind: 'callback',
      webhook_id: c.webhookId,
      prediction_id: c.predictionId,
      url: c.url,
      attempts,
      reason,
      failed_at: new Date().toISOString(),
    };
    await this.o.broker.publish(this.topics.dlq, [{ key: c.predictionId, headers: {}, value: JSON.stringify(letter) }]);
  }
}
