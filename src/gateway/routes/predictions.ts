import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { FastifyBaseLogger } from 'fastify';
import { envelopeVersion, headerNames, responseMessage, type RequestEnvelope } from '../../protocol/envelope.js';
import { SpillwayError } from '../../protocol/errors.js';
import type { PredictionRecord } from '../../protocol/prediction.js';
import { validateCallback } from '../../callbacks/callback-settings.js';
import { markAccepted } from '../accepted.js';
import type { GatewayContext } from '../context.js';
import { overdue, resolveDeadline } from '../deadline.js';
import { claimIdempotencyKey, idempotencyKeyHeader, idempotencyKeySchema, replayedHeader, replayPrediction } from '../idempotency.js';
import { parsePrefer, preferSchema } from '../prefer.js';
import { jsonResponse, jsonBodyCodes, pathParamCodes, problemResponses, type ResponseHeaders } from '../responses.js';
import {
  modelParamsSchema,
  predictionParamsSchema,
  predictionRequestSchema,
  type PredictionRequestBody,
} from '../schemas.js';

const record = { $ref: 'PredictionRecord#' };

const location = { type: 'string', description: 'Where to poll the prediction: /v1/predictions/{id}' } as const;
/** Headers of a submission's answer; 200 carries Location too unless the model dispatches sync (and it is no replay). */
const submissionHeaders: ResponseHeaders = {
  location,
  'preference-applied': { type: 'string', description: 'wait=N when the connection was held for the result' },
  [replayedHeader]: { type: 'string', description: '"true" when the answer repeats the prediction an earlier request with this Idempotency-Key made' },
};

export function predictionRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  app.post<{ Params: { model: string }; Body: PredictionRequestBody }>(
    '/v1/models/:model/predictions',
    {
      schema: {
        summary: 'Submit a prediction',
        description:
          'Queues the input for the model. Answers only after the queue has durably accepted it. ' +
          'With `Prefer: wait=N` the connection is held up to N seconds (capped) for the result: 200 with the ' +
          'finished prediction, or 202 with Location if it is not done yet. Without it, 202 at once. ' +
          'A repeat with the same `Idempotency-Key` and body gets the original prediction back (`Idempotent-Replayed: true`). ' +
          "429 when the model's queue is at its `max_queue_depth`.",
        tags: ['predictions'],
        params: modelParamsSchema,
        body: predictionRequestSchema,
        headers: { type: 'object', properties: { prefer: preferSchema, [idempotencyKeyHeader]: idempotencyKeySchema } },
        response: {
          200: jsonResponse('The finished prediction: it finished within the wait, or the model dispatches sync', record, submissionHeaders),
          202: jsonResponse('Durably queued; poll Location (or follow its events) for the result', record, submissionHeaders),
          ...problemResponses(pathParamCodes, jsonBodyCodes, [
            'SPILLWAY_MODEL_NOT_FOUND',
            'SPILLWAY_INVALID_INPUT',
            'SPILLWAY_INVALID_DEADLINE',
            'SPILLWAY_INVALID_CALLBACK',
            'SPILLWAY_CALLBACK_REFUSED',
            'SPILLWAY_IDEMPOTENCY_KEY_REUSED',
            'SPILLWAY_QUEUE_FULL',
            'SPILLWAY_SATURATED',
            'SPILLWAY_WORKER_FAILED',
            'SPILLWAY_BROKER_UNAVAILABLE',
            'SPILLWAY_STORE_UNAVAILABLE',
            'SPILLWAY_SHUTTING_DOWN',
            'SPILLWAY_MODEL_LOAD_FAILED',
            'SPILLWAY_NO_WORKERS',
          ]),
        },
      },
    },
    async (request, reply) => {
      const name = request.params.model;
      const spec = ctx.repository.models.get(name);
      if (spec === undefined) {
        const failure = ctx.repository.failures.find((f) => f.name === name);
        if (failure !== undefined) {
          throw new SpillwayError('SPILLWAY_MODEL_LOAD_FAILED', failure.error.message, { details: failure.error.details });
        }
        throw new SpillwayError('SPILLWAY_MODEL_NOT_FOUND', `no model named "${name}"`);
      }
      if (ctx.isClosing()) throw new SpillwayError('SPILLWAY_SHUTTING_DOWN');
      const size = Number(request.headers['content-length'] ?? 0);
      if (size > spec.config.limits.max_input_bytes) {
        throw new SpillwayError(
          'SPILLWAY_BODY_TOO_LARGE',
          `model ${name} takes at most ${spec.config.limits.max_input_bytes} bytes per request; got ${size}`,
        );
      }
      const problems = ctx.validators.get(name)?.(request.body.input) ?? [];
      if (problems.length > 0) {
        throw new SpillwayError('SPILLWAY_INVALID_INPUT', `the input does not fit model ${name}`, { details: problems });
      }

      const callback = request.body.callback === undefined ? undefined : await validateCallback(request.body.callback, ctx.callbacks);

      const id = randomUUID();
      const now = Date.now();
      const createdAt = new Date(now).toISOString();
      const deadline = resolveDeadline(request.body, spec.config.timeout_ms, now);
      const metadata = request.body.metadata ?? {};
      const traceparent = request.headers['traceparent'];
      const envelope: RequestEnvelope = {
        v: envelopeVersion,
        id,
        model: name,
        input: request.body.input,
        metadata,
        created_at: createdAt,
        reply_to: ctx.gatewayId,
        ...(typeof traceparent === 'string' ? { traceparent } : {}),
        ...(deadline === undefined ? {} : { deadline }),
        ...(callback === undefined ? {} : { callback }),
      };
      // A repeat of a request accepted under this Idempotency-Key gets that prediction back. Past
      // this point every refusal releases the key, so the client may retry with it.
      const claim = await claimIdempotencyKey(ctx.store, request.raw.headersDistinct[idempotencyKeyHeader], envelope, request.body, request.log);
      if (claim.original !== undefined) {
        const replay = await replayPrediction(ctx, claim.original, request.headers.prefer);
        return reply.code(replay.status).headers(replay.headers).send(replay.record);
      }
      const queued: PredictionRecord = {
        id,
        model: name,
        status: 'queued',
        metadata,
        created_at: createdAt,
        attempts: 0,
        ...(deadline === undefined ? {} : { deadline }),
        ...(callback === undefined ? {} : { callback }),
        metrics: {},
      };
      if (spec.config.dispatch === 'sync') {
        const ran = await claim.guard(runSync(ctx, envelope, request.log));
        markAccepted(request, queued);
        return reply.code(200).send(ran);
      }

      const prefer = parsePrefer(request.headers.prefer);
      const waitS = prefer.respondAsync ? 0 : Math.min(prefer.wait ?? 0, ctx.maxWaitS);
      const value = JSON.stringify(envelope);
      // Checked here, so an oversized request is refused, not lost inside the broker's client.
      if (value.length > ctx.broker.maxMessageBytes / 3 && Buffer.byteLength(value) > ctx.broker.maxMessageBytes) {
        await claim.release();
        throw new SpillwayError(
          'SPILLWAY_BODY_TOO_LARGE',
          `the request is over the queue's message limit of ${ctx.broker.maxMessageBytes} bytes`,
        );
      }
      // 429 SPILLWAY_QUEUE_FULL when the model's queue is at its max_queue_depth.
      const admission = await claim.guard(ctx.backpressure.admit(name));
      // Registered before publishing: the result may arrive before publish() returns.
      const waiter = waitS > 0 ? ctx.waiters.tryAdd(id) : undefined;
      try {
        await ctx.broker.publish(ctx.topics.requests(name), [
          {
            key: id,
            headers: { [headerNames.id]: id, [headerNames.model]: name, ...(envelope.traceparent ? { traceparent: envelope.traceparent } : {}) },
            value,
          },
        ]);
      } catch (error) {
        waiter?.cancel();
        admission.abandoned();
        await claim.release();
        throw new SpillwayError('SPILLWAY_BROKER_UNAVAILABLE', 'the queue did not accept the request; nothing was queued', {
          cause: error,
        });
      }
      admission.accepted();
      markAccepted(request, queued);
      // Accepted from here on. The client learns the id only from our answer, so the queued
      // record is needed only when that answer is a 202 it will poll with; a 200 carries the
      // stored final record. If the write fails, the store writer records the prediction from
      // the response stream when it completes.
      reply.header('location', `/v1/predictions/${id}`);
      if (waiter !== undefined) {
        reply.header('preference-applied', `wait=${waitS}`);
        // A held client learns of an expiry when it happens, not only when a worker reaches the request.
        const expiresInMs = deadline === undefined ? Infinity : Date.parse(deadline) - Date.now() + expiryGraceMs;
        const expiry = expiresInMs < waitS * 1000 ? setTimeout(() => void expireIfOverdue(ctx, queued, request.log), expiresInMs) : undefined;
        const done = await waiter.wait(waitS * 1000);
        clearTimeout(expiry);
        if (done !== undefined) {
          ctx.metrics.requestAnswered(name, 200);
          return reply.code(200).send(done);
        }
      }
      await ctx.store.put([queued]).catch((error: unknown) => request.log.warn({ err: error, id }, 'could not store queued record'));
      ctx.metrics.requestAnswered(name, 202);
      const current = waiter === undefined ? queued : ((await ctx.store.get(id).catch(() => undefined)) ?? queued);
      return reply.code(202).send(current);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/predictions/:id',
    {
      schema: {
        summary: 'Get a prediction',
        tags: ['predictions'],
        params: predictionParamsSchema,
        response: {
          200: jsonResponse('The prediction as it is now', record),
          ...problemResponses(pathParamCodes, ['SPILLWAY_PREDICTION_NOT_FOUND', 'SPILLWAY_STORE_UNAVAILABLE']),
        },
      },
    },
    async (request) => {
      let found: PredictionRecord | undefined;
      try {
        found = await ctx.store.get(request.params.id);
      } catch (error) {
        throw new SpillwayError('SPILLWAY_STORE_UNAVAILABLE', undefined, { cause: error });
      }
      if (found === undefined) throw new SpillwayError('SPILLWAY_PREDICTION_NOT_FOUND', `no prediction with id "${request.params.id}"`);
      const current = (await expireIfOverdue(ctx, found, request.log)) ?? found;
      return withDeliveries(ctx, current, request.log);
    },
  );
}

/** The record with its callback's delivery history, for a client checking on its webhooks. */
async function withDeliveries(ctx: GatewayContext, record: PredictionRecord, log: FastifyBaseLogger): Promise<PredictionRecord> {
  if (record.callback === undefined) return record;
  try {
    const deliveries = await ctx.store.callbackDeliveries(record.id);
    return { ...record, callback: { ...record.callback, deliveries } };
  } catch (error) {
    log.warn({ err: error, id: record.id }, 'could not read the callback deliveries');
    return record;
  }
}

/**
 * A worker that started a request just before its deadline announces `running` within
 * `worker.running_after_ms` (100 ms by default); waiting this long after the deadline before
 * declaring a queued request expired keeps such a request from being expired while it runs.
 */
const expiryGraceMs = 250;

/**
 * If `record` (or what the store now holds for it) is still queued past its deadline plus the
 * grace, no worker will start it: store it as expired, tell the response stream and any client
 * waiting here, and return the stored record.
 */
export async function expireIfOverdue(ctx: GatewayContext, record: PredictionRecord, log: FastifyBaseLogger): Promise<PredictionRecord | undefined> {
  try {
    const now = Date.now();
    if (record.deadline === undefined || Date.parse(record.deadline) + expiryGraceMs > now) return undefined;
    const current = (await ctx.store.get(record.id)) ?? record;
    const expired = overdue(current, now);
    if (expired === undefined) return undefined;
    const written = await ctx.store.put([expired]);
    const stored = (await ctx.store.get(record.id)) ?? expired;
    // The store writer counts only what it writes itself; this record it will find stored.
    if (written.length > 0) ctx.metrics.predictionFinished(stored);
    ctx.waiters.resolve(stored);
    ctx.broker.publish(ctx.topics.responses, [responseMessage(stored)]).catch((error: unknown) => log.warn({ err: error, id: record.id }, 'could not publish an expiry'));
    return stored;
  } catch (error) {
    log.warn({ err: error, id: record.id }, 'could not check the deadline');
    return undefined;
  }
}

/**
 * `dispatch: sync`: the request goes straight to a free worker and the client waits on the
 * connection whatever its Prefer header says; when every worker is busy it is refused (429).
 * The finished record still goes on the response stream, for the store and other subscribers.
 */
async function runSync(ctx: GatewayContext, envelope: RequestEnvelope, log: FastifyBaseLogger): Promise<PredictionRecord> {
  let ran;
  try {
    ran = await ctx.syncDispatcher.run(envelope.model, { id: envelope.id, input: envelope.input });
  } catch (error) {
    if (error instanceof SpillwayError && error.code === 'SPILLWAY_SATURATED') ctx.metrics.requestAnswered(envelope.model, 429);
    throw error;
  }
  const { worker, result } = ran;
  const createdAt = Date.parse(envelope.created_at);
  const record: PredictionRecord = {
    id: envelope.id,
    model: envelope.model,
    status: result.ok ? 'succeeded' : 'failed',
    ...(result.ok ? { output: result.output } : { error: result.error }),
    metadata: envelope.metadata,
    created_at: envelope.created_at,
    started_at: result.started_at,
    completed_at: result.completed_at,
    attempts: 1,
    worker,
    ...(envelope.callback === undefined ? {} : { callback: envelope.callback }),
    metrics: {
      queue_ms: Math.max(0, Date.parse(result.started_at) - createdAt),
      inference_ms: Math.round(result.inference_ms * 1000) / 1000,
      total_ms: Math.max(0, Date.parse(result.completed_at) - createdAt),
    },
  };
  ctx.metrics.requestAnswered(envelope.model, 200);
  ctx.broker
    .publish(ctx.topics.responses, [responseMessage(record)])
    .catch((error: unknown) => log.warn({ err: error, id: record.id }, 'could not publish a sync result to the response stream'));
  return record;
}
