import type { FastifyInstance } from 'fastify';
import { cancelPrediction } from '../cancel.js';
import type { GatewayContext } from '../context.js';
import { openEventStream } from '../event-stream.js';
import { predictionParamsSchema } from '../schemas.js';
import { expireIfOverdue } from './predictions.js';

const record = { $ref: 'PredictionRecord#' };
const problem = { $ref: 'Problem#' };

/** Steering and watching one prediction: cancel it, follow its status as it changes. */
export function predictionControlRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  app.post<{ Params: { id: string } }>(
    '/v1/predictions/:id/cancel',
    {
      schema: {
        summary: 'Cancel a prediction',
        description:
          'A queued prediction is never run; a running one is aborted (its batch stops if every request in it ' +
          'is canceled, otherwise its result is discarded). Answers the canceled record. 409 ' +
          '`SPILLWAY_PREDICTION_FINAL` when the prediction is already final.',
        tags: ['predictions'],
        params: predictionParamsSchema,
        response: { 200: record, '4xx': problem, '5xx': problem },
      },
    },
    async (request) => cancelPrediction(ctx, request.params.id, request.log),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/predictions/:id/events',
    {
      schema: {
        summary: 'Follow a prediction',
        description:
          'Server-Sent Events: first the current record, then one event per status it is recorded in until the ' +
          'final one, which always comes; then the stream ends. `running` is recorded only for runs still going ' +
          'after the worker\'s `running_after_ms` (100 ms by default); shorter ones go from `queued` to final. Each event is named after the status (`event: running`), `id` is a ' +
          'sequence number and `data` the whole prediction record as JSON. A comment line every 15 s keeps ' +
          'idle connections open. 503 `SPILLWAY_TOO_MANY_STREAMS` when the gateway serves its maximum of streams.',
        tags: ['predictions'],
        params: predictionParamsSchema,
        response: {
          200: {
            description: 'A stream of `text/event-stream` events, each with a PredictionRecord as data',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
          '4xx': problem,
          '5xx': problem,
        },
      },
    },
    async (request, reply) => {
      await openEventStream(ctx, request.params.id, reply, request.log, (r) => expireIfOverdue(ctx, r, request.log));
    },
  );
}
