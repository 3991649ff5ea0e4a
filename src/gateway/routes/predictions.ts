import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { PredictionRecord } from '../../protocol/prediction.js';
import type { GatewayContext } from '../context.js';
import { expireIfOverdue } from '../expire-overdue.js';
import { idempotencyKeyHeader, idempotencyKeySchema, replayedHeader } from '../idempotency.js';
import { preferSchema } from '../prefer.js';
import { readPrediction } from '../read-prediction.js';
import { authCodes, jsonResponse, jsonBodyCodes, pathParamCodes, problemResponses, type ResponseHeaders } from '../responses.js';
import { callerOf } from '../tenancy/auth-hook.js';
import { modelParamsSchema, predictionParamsSchema, predictionRequestSchema, type PredictionRequestBody } from '../schemas.js';
import { submitPrediction } from '../submit.js';

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
      config: { scope: 'predict' },
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
          ...problemResponses(pathParamCodes, jsonBodyCodes, authCodes, [
            'SPILLWAY_MODEL_NOT_FOUND',
            'SPILLWAY_INVALID_INPUT',
            'SPILLWAY_INVALID_DEADLINE',
            'SPILLWAY_INVALID_CALLBACK',
            'SPILLWAY_CALLBACK_REFUSED',
            'SPILLWAY_IDEMPOTENCY_KEY_REUSED',
            'SPILLWAY_QUEUE_FULL',
            'SPILLWAY_RATE_LIMITED',
            'SPILLWAY_TENANT_QUEUE_FULL',
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
    (request, reply) => submitPrediction(ctx, request, reply),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/predictions/:id',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Get a prediction',
        tags: ['predictions'],
        params: predictionParamsSchema,
        response: {
          200: jsonResponse('The prediction as it is now', record),
          ...problemResponses(pathParamCodes, authCodes, ['SPILLWAY_PREDICTION_NOT_FOUND', 'SPILLWAY_STORE_UNAVAILABLE']),
        },
      },
    },
    async (request) => {
      const found = await readPrediction(ctx, callerOf(request), request.params.id);
      const current = (await expireIfOverdue(ctx, found, request.log)) ?? found;
      return withDeliveries(ctx, await ctx.queuePlaces.withPlace(current), request.log);
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
