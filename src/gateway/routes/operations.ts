import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { SpillwayError } from '../../protocol/errors.js';
import type { GatewayContext } from '../context.js';
import { authCodes, jsonResponse, problemResponses } from '../responses.js';

const health = (status: string) => Type.Object({ status: Type.Literal(status) }, { additionalProperties: false });

/** Probes, metrics and the API description: what operators and tools read. */
export function operationRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness', tags: ['operations'], response: { 200: jsonResponse('The process serves HTTP', health('ok')), ...problemResponses() } } },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: the queue and the result store answer',
        tags: ['operations'],
        response: {
          200: jsonResponse('The queue and the result store answer', health('ready')),
          ...problemResponses(['SPILLWAY_SHUTTING_DOWN', 'SPILLWAY_BROKER_UNAVAILABLE', 'SPILLWAY_STORE_UNAVAILABLE']),
        },
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

  // The type prom-client writes (the Prometheus text format, version 0.0.4). The answer is a
  // string, so Fastify sends it as it is; the schema is only what the document says.
  const metricsType = ctx.metrics.registry.contentType;
  app.get(
    '/metrics',
    {
      // Metrics name every tenant and model: with keys in use, only operators read them.
      config: { scope: 'admin' },
      schema: {
        summary: 'Prometheus metrics',
        tags: ['operations'],
        response: {
          200: { description: 'The Prometheus text exposition format', content: { [metricsType]: { schema: { type: 'string' } } } },
          ...problemResponses(authCodes),
        },
      },
    },
    async (_request, reply) => {
      reply.type(metricsType);
      return ctx.metrics.registry.metrics();
    },
  );

  app.get(
    '/openapi.json',
    {
      schema: {
        summary: 'This API as OpenAPI 3.1',
        tags: ['operations'],
        response: {
          // Open: the serialiser must pass the whole document through, not only declared fields.
          200: jsonResponse('This document', {
            type: 'object',
            required: ['openapi', 'info', 'paths'],
            properties: { openapi: { type: 'string', pattern: '^3\\.1\\.' }, info: { type: 'object', additionalProperties: true }, paths: { type: 'object', additionalProperties: true } },
            additionalProperties: true,
          }),
          ...problemResponses(),
        },
      },
    },
    async () => app.swagger(),
  );
}
