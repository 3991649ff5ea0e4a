import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Broker, Delivery } from '../brokers/broker.js';
import type { InputValidator } from '../models/input-validator.js';
import type { ModelSpec } from '../models/model-config.js';
import { nextStepModel, nextStepRequest } from '../pipelines/step-route.js';
import { decodeRequest } from '../protocol/decode.js';
import { envelopeVersion, requestMessage, responseMessage, type RequestEnvelope } from '../protocol/envelope.js';
import { SpillwayError, describeError, type ErrorBody, type ErrorDetail } from '../protocol/errors.js';
import type { OutgoingMessage } from '../protocol/message.js';
import type { PredictionRecord } from '../protocol/prediction.js';
import { expiredOutcome, finishedRecord, handedOverRecord, runningRecord, unstartedRecord, type Attempt, type FinalOutcome } from '../protocol/prediction-records.js';
import type { Topics } from '../protocol/topics.js';
import type { ModelRuntime, Outcome } from '../runtimes/runtime.js';
import { StepStopwatch, stepTimings } from '../runtimes/step-stopwatch.js';
import type { Tracer } from '../observability/tracing.js';
import { BatchTrace } from './batch-trace.js';
import type { CanceledIds } from './canceled-ids.js';

export interface BatchRunnerOptions {
  readonly spec: ModelSpec;
  readonly runtime: ModelRuntime;
  readonly broker: Broker;
  readonly topics: Topics;
  readonly workerId: string;
  readonly logger: Logger;
  /** A batch still running after this long announces `running` on the response stream. */
  readonly runningEventDelayMs: number;
  /** Predictions clients have canceled: not started when taken, aborted while running. */
  readonly canceled: CanceledIds;
  /** The declared input of a model a pipeline step hands its output to (undefined: none to check). */
  readonly stepInput?: (model: string) => InputValidator | undefined;
  /** Makes each request's queue, run and publish spans (docs/tracing.md); none when undefined. */
  readonly tracer?: Tracer | undefined;
}

interface Job {
  readonly delivery: Delivery;
  readonly request: RequestEnvelope;
}

/**
 * Runs one batch: decode, run the model, publish one result per request, and only then ack (in
 * the same transaction where the broker can: `publishAndAck`). A failure to publish leaves the
 * requests unacked, so they are delivered again.
 */
export class BatchRunner {
  constructor(private readonly o: BatchRunnerOptions) {}

  async run(deliveries: readonly Delivery[]): Promise<void> {
    const jobs: Job[] = [];
    const settled: Promise<void>[] = [];
    let decodeMs = 0;
    for (const delivery of deliveries) {
      const t = performance.now();
      const decoded = decodeRequest(delivery.value);
      decodeMs += performance.now() - t;
      if (!decoded.ok) {
        const error = new SpillwayError('SPILLWAY_UNDECODABLE_MESSAGE', decoded.reason).toBody();
        // With a readable id, whoever waits for that id still learns the outcome.
        const record = decoded.id === undefined ? undefined : this.undecodableRecord(decoded.id, delivery, error);
        settled.push(this.deadLetter(delivery, error, record));
      } else if (this.o.canceled.has(decoded.value.id)) {
        // The gateway has stored and published the canceled record; this copy only matters if it could not.
        settled.push(this.skipCanceled(delivery, decoded.value));
      } else if (decoded.value.deadline !== undefined && Date.parse(decoded.value.deadline) <= Date.now()) {
        // Never started past its deadline: the client no longer wants it.
        settled.push(this.expire(delivery, decoded.value));
      } else if (delivery.attempt > this.o.spec.config.max_attempts) {
        const error = new SpillwayError('SPILLWAY_ATTEMPTS_EXHAUSTED', `gave up after ${delivery.attempt - 1} attempts`).toBody();
        settled.push(this.fail(delivery, decoded.value, error, Date.now()));
      } else {
        jobs.push({ delivery, request: decoded.value });
      }
    }
    if (jobs.length > 0) settled.push(this.runJobs(jobs, decodeMs));
    await Promise.all(settled);
  }

  /** `decodeMs`: the time spent decoding the batch's messages, which its records report as decode_ms. */
  private async runJobs(jobs: readonly Job[], decodeMs: number): Promise<void> {
    const startedAt = Date.now();
    const trace = this.o.tracer === undefined ? undefined : new BatchTrace(this.o.tracer, this.o.spec.name, jobs, startedAt);
    const canceled = (job: Job) => this.o.canceled.has(job.request.id);
    // Registered before the first await, so a cancel arriving from here on reaches this batch.
    // Only a batch whose every request is canceled stops; otherwise the others' work would be lost.
    const abort = new AbortController();
    const ids = new Set(jobs.map((j) => j.request.id));
    const unwatch = this.o.canceled.watch((id) => {
      if (ids.has(id) && jobs.every(canceled)) abort.abort(new Error('every request in the batch was canceled'));
    });
    const announce = (announced: readonly Job[]) => {
      const records = announced.filter((j) => !canceled(j)).map((j) => runningRecord(j.request, this.attempt(j.delivery), startedAt));
      if (records.length === 0) return;
      this.publishRecords(records).catch((error: unknown) => this.o.logger.warn({ err: error }, 'could not publish running status'));
    };
    // A pipeline's steps are announced as they start, so its event stream shows every step; a
    // lone model only once it has run for a while, sparing quick batches an extra message.
    announce(jobs.filter((j) => j.request.pipeline !== undefined));
    const running = setTimeout(() => announce(jobs.filter((j) => j.request.pipeline === undefined)), this.o.runningEventDelayMs);
    const timer = new StepStopwatch();
    const t0 = performance.now();
    let outcomes: readonly Outcome[];
    try {
      outcomes = await this.o.runtime.predict(jobs.map((j) => j.request.input), { signal: abort.signal, timer });
    } catch (error) {
      const failure = error instanceof SpillwayError ? error : new SpillwayError('SPILLWAY_MODEL_FAILED', describeError(error), { cause: error });
      outcomes = jobs.map(() => ({ ok: false, error: failure }));
    } finally {
      unwatch();
    }
    const timings = stepTimings(decodeMs, timer.ms, performance.now() - t0);
    clearTimeout(running);
    const completedAt = Date.now();

    const records: PredictionRecord[] = [];
    const forwards = new Map<string, RequestEnvelope[]>();
    const handedOver: PredictionRecord[] = [];
    const retries: Job[] = [];
    const exhausted: { job: Job; record: PredictionRecord }[] = [];
    const maxAttempts = this.o.spec.config.max_attempts;
    for (const [i, job] of jobs.entries()) {
      const outcome = outcomes[i] ?? { ok: false, error: new SpillwayError('SPILLWAY_MODEL_FAILED', 'no output for this input') };
      const finished = (final: FinalOutcome) =>
        finishedRecord(runningRecord(job.request, this.attempt(job.delivery), startedAt), final, completedAt, timings);
      if (canceled(job)) {
        // Whatever it produced is discarded, and it is neither retried nor dead-lettered.
        records.push(finished({ status: 'canceled' }));
      } else if (outcome.ok) {
        const succeeded = finished({ status: 'succeeded', output: outcome.output });
        const next = nextStepModel(job.request);
        const misfit = next === undefined ? [] : (this.o.stepInput?.(next)?.(outcome.output) ?? []);
        if (next === undefined) records.push(succeeded);
        else if (misfit.length > 0) records.push(finished({ status: 'failed', error: misfitError(job.request, next, misfit) }));
        else {
          // Into the next step's lane of the same tenant and class: fairness and priority hold at every step.
          const topic = this.o.topics.requests(next, job.request.tenant, job.request.priority);
          const queued = forwards.get(topic) ?? [];
          const handedOn = nextStepRequest(job.request, succeeded, completedAt);
          const traceparent = trace?.traceparentFor(job.request.id);
          queued.push(traceparent === undefined ? handedOn : { ...handedOn, traceparent });
          forwards.set(topic, queued);
          handedOver.push(handedOverRecord(succeeded, next));
        }
      } else if (outcome.error.retryable && job.delivery.attempt < maxAttempts) {
        retries.push(job);
      } else {
        const record = finished({ status: 'failed', error: outcome.error.toBody() });
        // A request that kept failing goes to the dead-letter topic so it can be inspected and replayed.
        if (outcome.error.retryable) exhausted.push({ job, record });
        else records.push(record);
      }
    }
    // The next steps' requests are durable before this step's are acked: a crash in between
    // runs this step again, and the store keeps the first outcome.
    for (const [topic, requests] of forwards) await this.publishDurably(topic, requests.map(requestMessage));
    // Progress only: until the next step starts, a poll shows it queued rather than this one running.
    if (handedOver.length > 0) this.publishRecords(handedOver).catch((error: unknown) => this.o.logger.warn({ err: error }, 'could not publish step progress'));
    const backoff = this.o.spec.config.retry_backoff_ms;
    const settled = new Set([...retries, ...exhausted.map((e) => e.job)]);
    const done = jobs.filter((j) => !settled.has(j)).map((j) => j.delivery);
    const published = records.length > 0 ? trace?.publishing(records.map((r) => r.id), this.o.topics.responses) : undefined;
    const messages = records.map((r) => responseMessage(r, trace?.traceparentFor(r.id)));
    if (messages.length + done.length > 0) await this.durably(this.o.topics.responses, () => this.o.broker.publishAndAck(this.o.topics.responses, messages, done));
    published?.();
    await Promise.all([
      ...retries.map((j) => j.delivery.nack(backoff * 2 ** (j.delivery.attempt - 1))),
      ...exhausted.map(({ job, record }) => this.deadLetter(job.delivery, record.error!, record)),
    ]);
    const failed = [...records, ...exhausted.map((e) => e.record)];
    trace?.ended(new Map(failed.flatMap((r) => (r.error === undefined ? [] : [[r.id, r.error] as const]))));
  }

  private attempt(delivery: Delivery, started = true): Attempt {
    return { worker: this.o.workerId, attempts: started ? delivery.attempt : delivery.attempt - 1 };
  }

  /** A message with a readable id but no readable request: failed as delivered, never started. */
  private undecodableRecord(id: string, delivery: Delivery, error: ErrorBody): PredictionRecord {
    const request = { id, model: this.o.spec.name, metadata: {}, created_at: new Date(delivery.publishedAt).toISOString() };
    return unstartedRecord(request, this.attempt(delivery), { status: 'failed', error }, Date.now());
  }

  private expire(delivery: Delivery, request: RequestEnvelope): Promise<void> {
    return this.settleUnstarted(delivery, request, expiredOutcome(request.deadline));
  }

  private skipCanceled(delivery: Delivery, request: RequestEnvelope): Promise<void> {
    return this.settleUnstarted(delivery, request, { status: 'canceled' });
  }

  /** A request the client no longer wants: its final record without running it, then the ack. */
  private async settleUnstarted(delivery: Delivery, request: RequestEnvelope, outcome: FinalOutcome): Promise<void> {
    const record = unstartedRecord(request, this.attempt(delivery, false), outcome, Date.now());
    const { responses } = this.o.topics;
    await this.durably(responses, () => this.o.broker.publishAndAck(responses, [responseMessage(record)], [delivery]));
  }

  private async fail(delivery: Delivery, request: RequestEnvelope, error: ErrorBody, at: number): Promise<void> {
    const record = finishedRecord(runningRecord(request, this.attempt(delivery), at), { status: 'failed', error }, at);
    await this.deadLetter(delivery, error, record);
  }

  /** The request goes to the dead-letter topic with its reason; its outcome (if known) to the stream. */
  private async deadLetter(delivery: Delivery, reason: ErrorBody, record: PredictionRecord | undefined): Promise<void> {
    this.o.logger.warn({ model: this.o.spec.name, position: delivery.position, reason: reason.message }, 'dead-lettering a request');
    const letter = {
      v: envelopeVersion,
      topic: delivery.topic,
      position: delivery.position,
      attempts: delivery.attempt,
      reason,
      failed_at: new Date().toISOString(),
      value: delivery.value,
    };
    await this.publishDurably(this.o.topics.dlq, [{ ...(record ? { key: record.id } : {}), value: JSON.stringify(letter) }]);
    if (record !== undefined) await this.publishDurably(this.o.topics.responses, [responseMessage(record)]);
    await delivery.ack().catch((error: unknown) => this.o.logger.warn({ err: error }, 'ack failed; the request may run again'));
  }

  private async publishRecords(records: readonly PredictionRecord[]): Promise<void> {
    await this.o.broker.publish(this.o.topics.responses, records.map((r) => responseMessage(r)));
  }

  /**
   * Results are the only copy of finished work, so a broker that is down is waited out rather
   * than given up on: the slot stays busy and takes nothing new meanwhile. If the process stops
   * first, the unacked requests run again elsewhere.
   */
  private publishDurably(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    return this.durably(topic, () => this.o.broker.publish(topic, messages));
  }

  private async durably(topic: string, publish: () => Promise<unknown>): Promise<void> {
    for (let failures = 0; ; failures++) {
      try {
        await publish();
        return;
      } catch (error) {
        const delay = Math.min(5000, 100 * 2 ** failures);
        this.o.logger.warn({ err: error, topic, retry_in_ms: delay }, `could not publish to ${topic}; retrying`);
        await sleep(delay);
      }
    }
  }
}

/** A step's output that the next step would refuse: the pipeline stops at the step that made it. */
function misfitError(request: RequestEnvelope, next: string, details: readonly ErrorDetail[]): ErrorBody {
  const message = `the output of step ${request.model} does not fit the input of the next step, ${next}`;
  return new SpillwayError('SPILLWAY_STEP_OUTPUT_INVALID', message, { details: [...details] }).toBody();
}
