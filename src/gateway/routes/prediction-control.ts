import type { FastifyInstance } from 'fastify';
import { cancelPrediction } from '../cancel.js';
import type { GatewayContext } from '../context.js';
import { openEventStream } from '../event-stream.js';
import { authCodes, jsonBodyCodes, jsonResponse, pathParamCodes, problemResponses } from '../responses.js';
import { callerOf } from '../tenancy/auth-hook.js';
import { predictionStatuses } from '../../protocol/prediction.js';
import { predictionParamsSchema } from '../schemas.js';
import { expireIfOverdue } from '../expire-overdue.js';

const record = { $ref: 'PredictionRecord#' };

/**
 * One Server-Sent Event as OpenAPI 3.2 describes a sequential media type (`itemSchema`); the
 * `schema` beside it is for 3.1 readers, which see the stream as one string.
 */
const eventSchema = {
  type: 'object',
  required: ['id', 'event', 'data'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: '^[1-9][0-9]*$', description: 'Sequence number of the event on this stream, from 1' },
    event: {
      type: 'string',
      enum: [...predictionStatuses, 'position'],
      description: 'The status the record has, or `position`: still queued, and its place in line (`queue`) moved',
    },
    data: { type: 'string', contentMediaType: 'application/json', contentSchema: record, description: 'The whole record, as JSON' },
  },
} as const;

/** Steering and watching one prediction: cancel it, follow its status as it changes. */
export function predictionControlRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  app.post<{ Params: { id: string } }>(
    '/v1/predictions/:id/cancel',
    {
      config: { scope: 'cancel' },
      schema: {
        summary: 'Cancel a prediction',
        description:
          'A queued prediction is never run; a running one is aborted (its batch stops if every request in it ' +
          'is canceled, otherwise its result is discarded). Answers the canceled record. Takes no body (one sent must be JSON). 409 ' +
          '`SPILLWAY_PREDICTION_FINAL` when the prediction is already final.',
        tags: ['predictions'],
        params: predictionParamsSchema,
        response: {
          200: jsonResponse('The canceled record', record),
          ...problemResponses(pathParamCodes, jsonBodyCodes, authCodes, [
            'SPILLWAY_PREDICTION_NOT_FOUND',
            'SPILLWAY_PREDICTION_FINAL',
            'SPILLWAY_BROKER_UNAVAILABLE',
            'SPILLWAY_STORE_UNAVAILABLE',
          ]),
        },
      },
    },
    async (request) => cancelPrediction(ctx, callerOf(request), request.params.id, request.log),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/predictions/:id/events',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Follow a prediction',
        description:
          'Server-Sent Events: first the current record, then one event per status it is recorded in until the ' +
          'final one, which always comes; then the stream ends. `running` is recorded only for runs still going ' +
          'after the worker\'s `running_after_ms` (100 ms by default); shorter ones go from `queued` to final. Each event is named after the status (`event: running`), `id` is a ' +
          'sequence number and `data` the whole prediction record as JSON. While it is queued, a `position` event (the ' +
          'record with its new `queue`) follows each move of its place in line, checked every second. A comment line every 15 s keeps ' +
          'idle connections open. 503 `SPILLWAY_TOO_MANY_STREAMS` when the gateway serves its maximum of streams.',
        tags: ['predictions'],
        params: predictionParamsSchema,
        response: {
          200: {
            description: 'A stream of `text/event-stream` events, each with a PredictionRecord as data',
            content: {
              'text/event-stream': {
                schema: { type: 'string', description: 'Server-Sent Events; comment lines (`: keep-alive`) between them' },
                itemSchema: eventSchema,
              },
            },
          },
          // Problems come before the stream starts; once it has, the status is 200 whatever happens.
          ...problemResponses(pathParamCodes, authCodes, [
            'SPILLWAY_PREDICTION_NOT_FOUND',
            'SPILLWAY_STORE_UNAVAILABLE',
            'SPILLWAY_SHUTTING_DOWN',
            'SPILLWAY_TOO_MANY_STREAMS',
          ]),
        },
      },
    },
    async (request, reply) => {
      await openEventStream(ctx, callerOf(request), request.params.id, reply, request.log, (r) => expireIfOverdue(ctx, r, request.log));
    },
  );
}
