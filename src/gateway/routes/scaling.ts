import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { SpillwayError } from '../../protocol/errors.js';
import type { GatewayContext } from '../context.js';
import { authCodes, jsonResponse, pathParamCodes, problemResponses } from '../responses.js';
import { defaultScalingTargetS, maxScalingTargetS, modelParamsSchema, scalingQuerySchema } from '../schemas.js';

export function scalingRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  app.get<{ Params: { model: string }; Querystring: { target_s?: string } }>(
    '/v1/models/:model/scaling',
    {
      // The load of every tenant together and the deployment's workers: an operator's view, as
      // /metrics (which carries the same figures) is, not one tenant's.
      config: { scope: 'admin' },
      schema: {
        summary: "A model's scaling signals (for KEDA's metrics-api scaler)",
        description: 'Backlog, in flight, oldest age, drain and arrival rates and the workers that would catch up within target_s, for the deployment as a whole (docs/autoscaling.md)',
        tags: ['operations'],
        params: modelParamsSchema,
        querystring: scalingQuerySchema,
        response: {
          200: jsonResponse('The figures', Type.Unsafe<unknown>({ $ref: 'ScalingFigures#' })),
          ...problemResponses(pathParamCodes, authCodes, ['SPILLWAY_MODEL_NOT_FOUND', 'SPILLWAY_BROKER_UNAVAILABLE']),
        },
      },
    },
    async (request) => {
      const { model } = request.params;
      const targetS = request.query.target_s === undefined ? defaultScalingTargetS : Number(request.query.target_s);
      if (!(targetS > 0 && targetS <= maxScalingTargetS)) {
        throw new SpillwayError('SPILLWAY_INVALID_REQUEST', `target_s must be more than 0 and at most ${maxScalingTargetS} seconds`, {
          details: [{ pointer: '/query/target_s', message: `${request.query.target_s} is out of range` }],
        });
      }
      if (!ctx.repository.models.has(model)) throw new SpillwayError('SPILLWAY_MODEL_NOT_FOUND', `no model named "${model}"`);
      return ctx.scaling.figures(model, targetS).catch((error: unknown) => {
        throw error instanceof SpillwayError ? error : new SpillwayError('SPILLWAY_BROKER_UNAVAILABLE', 'could not read the queue figures', { cause: error });
      });
    },
  );
}
