import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { anonymousCaller, type Authenticator, type Caller, type RouteScope } from './authenticator.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route asks of its caller; a route without it is public (probes, the API description). */
    scope?: RouteScope;
  }
}

const callers = new WeakMap<FastifyRequest, Caller>();

/** The OpenAPI security scheme of API keys (registered with the document in gateway.ts). */
export const securitySchemeName = 'apiKey';
export const securityScheme = {
  type: 'http',
  scheme: 'bearer',
  description: 'An API key from `spillway keys create` (spw_…), required once any key exists (docs/tenants.md)',
} as const;

/**
 * Authenticates every request to a route that names a `scope`, before its body is read: a
 * caller without a valid key costs the gateway no parsing or validation.
 */
export function registerAuthentication(app: FastifyInstance, auth: Authenticator, metrics: Pick<GatewayMetrics, 'tenantRequestAnswered'>): void {
  // Routes registered after this say in /openapi.json that they take a key, and which scope.
  app.addHook('onRoute', (route) => {
    const scope = route.config?.scope;
    if (scope !== undefined) route.schema = { ...route.schema, security: [{ [securitySchemeName]: scope === 'any' ? [] : [scope] }] };
  });
  // Callback hooks, not async ones: a gateway without keys passes both without a promise.
  app.addHook('onRequest', (request, _reply, done) => {
    const scope = request.routeOptions.config.scope;
    if (scope === undefined) return done();
    const authorization = request.headers.authorization;
    const anonymous = auth.anonymousNow(authorization);
    if (anonymous !== undefined) {
      callers.set(request, anonymous);
      return done();
    }
    auth.authenticate(authorization, scope).then(
      (caller) => {
        callers.set(request, caller);
        done();
      },
      (error: Error) => done(error),
    );
  });
  // Counted by the key's tenant once answered; without keys spillway_requests_total says it all.
  app.addHook('onResponse', (request, reply, done) => {
    const caller = callers.get(request);
    if (caller?.keyId !== undefined) metrics.tenantRequestAnswered(caller.tenant, reply.statusCode);
    done();
  });
}

/**
 * Who made `request`. Only a route with a scope has a caller: asking elsewhere is a bug, and
 * fails loudly rather than treating the request as the all-powerful anonymous caller.
 */
export function callerOf(request: FastifyRequest): Caller {
  const caller = callers.get(request);
  if (caller === undefined) throw new Error(`route ${request.routeOptions.url ?? request.url} has no scope, so no caller`);
  return caller;
}

/** Whether `caller` may see a prediction of `tenant` (records made without keys are the default tenant's). */
export function mayAccess(caller: Caller, tenant: string | undefined): boolean {
  return caller === anonymousCaller || (tenant ?? anonymousCaller.tenant) === caller.tenant;
}
