import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { SpillwayError } from '../../protocol/errors.js';
import type { GatewayContext } from '../context.js';
import { defaultDashboardWindowS, dashboardQuerySchema } from '../dashboard/dashboard-schema.js';
import type { DashboardState } from '../dashboard/dashboard-state.js';
import { dashboardAssets, dashboardContentSecurityPolicy, dashboardPath, readAsset } from '../dashboard/page-assets.js';
import { maxOutcomeWindowS } from '../dashboard/recent-outcomes.js';
import { authCodes, jsonResponse, problemResponses } from '../responses.js';

/**
 * The live dashboard (docs/dashboard.md): a page, its files, and the one JSON snapshot it polls.
 *
 * The page polls GET /v1/dashboard about once a second rather than holding an event stream: a
 * browser's EventSource cannot send an Authorization header, which the snapshot needs once keys
 * are in use, and a poll that fails (a gateway restarting, a key refused) just shows as a gap
 * and recovers on the next tick, with no reconnect logic on either side.
 */
export function dashboardRoutes(app: FastifyInstance, ctx: Pick<GatewayContext, 'isClosing'>, state: DashboardState): void {
  // The page itself is public: it holds no data, and asks for a key when the snapshot wants one.
  const serve = (path: string, name: string) =>
    app.get(path, { schema: { hide: true } }, async (_request, reply) => {
      const asset = dashboardAssets[name]!;
      const bytes = await readAsset(asset).catch((error: unknown) => {
        throw new SpillwayError('SPILLWAY_INTERNAL', `the dashboard file ${name} cannot be read`, { cause: error });
      });
      reply.type(asset.type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
      if (name === 'index.html') reply.header('content-security-policy', dashboardContentSecurityPolicy);
      return reply.send(bytes);
    });
  serve(dashboardPath, 'index.html');
  serve(`${dashboardPath}/`, 'index.html');
  for (const name of Object.keys(dashboardAssets)) if (name !== 'index.html') serve(`${dashboardPath}/${name}`, name);

  app.get<{ Querystring: { window_s?: string } }>(
    '/v1/dashboard',
    {
      // Every tenant's load and the deployment's workers: an operator's view, as the scaling route.
      config: { scope: 'admin' },
      schema: {
        summary: 'The live dashboard\'s data: every model of the deployment at this moment',
        description:
          'Backlog, in flight, arrival and completion rates, latency quantiles split into queue wait and inference, worker slots and utilisation, dead letters and recent failures, for the deployment as a whole (docs/dashboard.md). The page at /dashboard polls it.',
        tags: ['operations'],
        querystring: dashboardQuerySchema,
        response: {
          200: jsonResponse('The snapshot', Type.Unsafe<unknown>({ $ref: 'Dashboard#' })),
          ...problemResponses(authCodes, ['SPILLWAY_INVALID_REQUEST', 'SPILLWAY_BROKER_UNAVAILABLE', 'SPILLWAY_SHUTTING_DOWN']),
        },
      },
    },
    async (request) => {
      const raw = request.query.window_s;
      const windowS = raw === undefined ? defaultDashboardWindowS : Number(raw);
      if (!(Number.isInteger(windowS) && windowS >= 1 && windowS <= maxOutcomeWindowS)) {
        throw new SpillwayError('SPILLWAY_INVALID_REQUEST', `window_s must be a whole number of seconds from 1 to ${maxOutcomeWindowS}`, {
          details: [{ pointer: '/query/window_s', message: `${raw} is out of range` }],
        });
      }
      if (ctx.isClosing()) throw new SpillwayError('SPILLWAY_SHUTTING_DOWN');
      return state.snapshot(windowS).catch((error: unknown) => {
        throw error instanceof SpillwayError ? error : new SpillwayError('SPILLWAY_BROKER_UNAVAILABLE', 'could not read the deployment\'s figures', { cause: error });
      });
    },
  );
}
