import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { SpillwayError } from '../../protocol/errors.js';
import type { GatewayContext } from '../context.js';

const health = Type.Object({ status: Type.String() });

/** Probes, metrics and the API description: what operators and tools read. */
export function operationRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  app.get('/healthz', { schema: { summary: 'Liveness', tags: ['operations'], response: { 200: health } } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: the queue and the result store answer',
        tags: ['operations'],
        response: { 200: health, '5xx': { $ref: 'Problem#' } },
      },
    },
    async () => {
      if (ctx.isClosing()) throw new SpillwayError('SPILLWAY_SHUTTING_DOWN');
      await ctx.broker.ping().catch((error: unknown) => {
        throw new SpillwayError('SPILLWAY_BROKER_UNAVAILABLE', 'the queue does not answer', { cause: error });
      });
      await ctx.store.ping().catch((error: unknown) => {
        throw new SpillwayError('SPILLWAY_STORE_UNAVAILABLE', 'the result store does not answer', { cause: error });
      });
      return { status: 'ready' };
    },
  );

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['operations'] } }, async (_request, reply) => {
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });

  app.get('/openapi.json', { schema: { summary: 'This API as OpenAPI 3.1', tags: ['operations'] } }, async () => app.swagger());
}
