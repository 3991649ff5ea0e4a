import type { CallbackSettings } from '../callbacks/callback-settings.js';
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Broker } from '../brokers/broker.js';
import type { StreamReader } from '../brokers/stream-reader.js';
import { answerClientError, problemSchema, sendProblem } from '../http/problem.js';
import { createInputValidator } from '../models/input-validator.js';
import { prioritizedModels } from '../models/model-config.js';
import type { ModelRepository } from '../models/model-repository.js';
import { createGatewayMetrics } from '../observability/metrics.js';
import { SpillwayError } from '../protocol/errors.js';
import type { Tracer } from '../observability/tracing.js';
import { topicsFor, workerGroup, type LaneWeights } from '../protocol/topics.js';
import { startStoreWriter } from '../stores/store-writer.js';
import { answerError } from './accepted.js';
import { registerApiDocs } from './api-docs.js';
import { dashboardSchema } from './dashboard/dashboard-schema.js';
import { dashboardRateWindowMs, DashboardState } from './dashboard/dashboard-state.js';
import { Backpressure } from './backpressure.js';
import type { GatewayContext, GatewayStore } from './context.js';
import { parseJsonBody } from './json-body.js';
import { RecordListeners } from './record-listeners.js';
import { startResponseReader } from './response-reader.js';
import { oipRoutes } from './oip/oip-routes.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { messageSchemaRoutes } from './routes/message-schemas.js';
import { modelRoutes } from './routes/models.js';
import { operationRoutes } from './routes/operations.js';
import { predictionControlRoutes } from './routes/prediction-control.js';
import { predictionRoutes } from './routes/predictions.js';
import { predictionRecordSchema, type PredictionRecord } from '../protocol/prediction.js';
import { defaultScalingTargetS, modelSummarySchema, scalingFiguresSchema } from './schemas.js';
import { QueuePlaces, startRate } from './queue-places.js';
import { ScalingSignals } from './scaling/scaling-signals.js';
import { scalingRoutes } from './routes/scaling.js';
import { SyncDispatcher } from './sync-dispatcher.js';
import { registerAuthentication, securityScheme, securitySchemeName } from './tenancy/auth-hook.js';
import { Authenticator, type AuthMode } from './tenancy/authenticator.js';
import { TenantLimits, type LimitSettings, type TenantSettings } from './tenancy/tenant-limits.js';
import { Waiters } from './waiters.js';
import { WorkerRegistry } from './worker-registry.js';

export interface GatewayOptions {
  readonly broker: Broker;
  readonly store: GatewayStore;
  readonly repository: ModelRepository;
  readonly prefix: string;
  /** Tenants with a queue lane of their own (queuing: fair); default none. */
  readonly laneWeights?: LaneWeights;
  readonly logger: Logger;
  readonly bodyLimitBytes: number;
  readonly maxWaitS: number;
  readonly maxWaiters: number;
  readonly heartbeatMs: number;
  /** Run the store writer in this gateway (false when another thread of the process runs it). */
  readonly runStoreWriter: boolean;
  /** Cap on open `GET /v1/predictions/{id}/events` streams; default 1000. */
  readonly maxEventStreams?: number;
  /** Egress policy and secrets for submitted callbacks; without secrets a callback is refused. */
  readonly callbacks?: Pick<CallbackSettings, 'policy' | 'secrets' | 'tenantSecrets'>;
  /** When requests need an API key (docs/tenants.md); default `auto`. */
  readonly auth?: AuthMode;
  /** Every tenant's limits, and each configured tenant's own; default none. */
  readonly limits?: LimitSettings;
  readonly tenants?: Readonly<Record<string, TenantSettings>>;
  /** The store's record retention: how long an open prediction may hold its tenant's place. */
  readonly retentionMs?: number;
  /** The deployment's `worker.sync_secret`, sent to workers on sync calls; without it none is made. */
  readonly syncSecret?: string;
  /** Makes spans of each submission (docs/tracing.md); none when undefined. */
  readonly tracer?: Tracer | undefined;
}

export interface Gateway {
  readonly app: FastifyInstance;
  listen(host: string, port: number): Promise<string>;
  /** Refuse new work, answer held connections with 202, stop the readers. */
  close(): Promise<void>;
}

/** How long gateway close lets requests in flight finish before it ends their connections. */
const closeGraceMs = 5000;

/** Path parameters longer than this are refused by the router with 414 before any schema check. */
const maxPathParamLength = 1024;

export async function createGateway(o: GatewayOptions): Promise<Gateway> {
  const topics = topicsFor(o.prefix, o.laneWeights, prioritizedModels(o.repository.models.values()));
  const queueDepth = async (model: string): Promise<number> => {
    const depths = await Promise.all(topics.lanes(model).map((lane) => o.broker.backlog(lane.topic, workerGroup)));
    return depths.reduce((a, b) => a + b, 0);
  };
  const gatewayId = randomUUID();
  const waiters = new Waiters(o.maxWaiters);
  const listeners = new RecordListeners(o.maxEventStreams ?? 1000);
  const shutdown = new AbortController();
  const registry = new WorkerRegistry(o.heartbeatMs * 3);
  const syncDispatcher = new SyncDispatcher(registry, { secret: o.syncSecret });
  let closing = false;
  let stopped: Promise<void> | undefined;
  const scalingOptions = {
    broker: o.broker,
    topics,
    models: () => o.repository.models.keys(),
    configuredSlots: (model: string) => o.repository.models.get(model)?.config.concurrency,
    workersFor: (model: string) => registry.workersFor(model),
    logger: o.logger,
  };
  const scaling = new ScalingSignals(scalingOptions);
  // The same signals on a shorter window, so a person watching sees a burst end within seconds.
  const dashboard = new DashboardState({
    broker: o.broker,
    topics,
    repository: o.repository,
    registry,
    scaling: new ScalingSignals({ ...scalingOptions, windowMs: dashboardRateWindowMs }),
    logger: o.logger,
  });
  const metrics = createGatewayMetrics({
    scaling: async () => Promise.all([...o.repository.models.keys()].map((model) => scaling.figures(model, defaultScalingTargetS))),
    queueDepth: async () => {
      const depths = new Map<string, number>();
      for (const name of o.repository.models.keys()) depths.set(name, await queueDepth(name));
      return depths;
    },
    modelLoadTimes: () => registry.loadTimes(),
    tenants: Object.keys(o.tenants ?? {}),
  });
  const backpressure = new Backpressure({
    limits: new Map(
      [...o.repository.models.values()].flatMap((spec) => {
        const limit = spec.config.max_queue_depth;
        return limit === undefined || spec.config.dispatch === 'sync' ? [] : [[spec.name, limit] as const];
      }),
    ),
    priorityShares: new Map(
      [...o.repository.models.values()].flatMap((spec) => (spec.config.priority_limits === undefined ? [] : [[spec.name, spec.config.priority_limits] as const])),
    ),
    backlog: queueDepth,
    workersSeen: (model) => registry.workersFor(model).filter((w) => w.state === 'ready' && !w.draining).length,
    onRefused: (model) => metrics.requestAnswered(model, 429),
  });
  const limits = new TenantLimits({ state: o.store, defaults: o.limits ?? {}, tenants: o.tenants ?? {}, retentionMs: o.retentionMs ?? 86_400_000 });
  const finished = (records: readonly PredictionRecord[]): void => {
    for (const record of records) metrics.predictionFinished(record);
    void limits.finished(records);
  };
  const ctx: GatewayContext = {
    gatewayId,
    ...(o.callbacks === undefined ? {} : { callbacks: o.callbacks }),
    broker: o.broker,
    store: o.store,
    topics,
    tracer: o.tracer,
    queueDepth,
    repository: o.repository,
    validators: new Map([...o.repository.models.values()].map((spec) => [spec.name, createInputValidator(spec)])),
    waiters,
    listeners,
    registry,
    syncDispatcher,
    backpressure,
    limits,
    finished,
    metrics,
    scaling,
    queuePlaces: new QueuePlaces({
      broker: o.broker,
      lanes: (model) => topics.lanes(model),
      startRate: async (model) => startRate(await scaling.figures(model, defaultScalingTargetS)),
      logger: o.logger,
    }),
    maxWaitS: o.maxWaitS,
    isClosing: () => closing,
    shutdown: shutdown.signal,
  };

  // Widened so the instance has Fastify's default type and routes need not carry pino's.
  const loggerInstance: FastifyBaseLogger = o.logger;
  const app = Fastify({
    loggerInstance,
    bodyLimit: o.bodyLimitBytes,
    logController: new LogController({ disableRequestLogging: true }),
    // Refuse unknown fields rather than silently dropping them (a typo must not go unnoticed).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
    // Our own check answers a problem+json SPILLWAY_SHUTTING_DOWN while closing.
    return503OnClosing: false,
    // Longer than any valid id or model name (128), so that those get a schema answer (422);
    // past it the router answers 414 itself.
    routerOptions: { maxParamLength: maxPathParamLength },
    // Errors raised before a route runs are answered like every other error.
    frameworkErrors: (error, request, reply) => {
      sendProblem(request, reply, error);
    },
    clientErrorHandler: answerClientError,
    // Node would answer a Host-less HTTP/1.1 request with a bare 400; the hook below answers it
    // as a problem instead.
    http: { requireHostHeader: false },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Spillway Service API', version: '1', description: 'Asynchronous ML serving over a durable queue' },
      tags: [{ name: 'predictions' }, { name: 'models' }, { name: 'operations' }],
      components: { securitySchemes: { [securitySchemeName]: securityScheme } },
    },
    // Components are named after each shared schema's $id, so /openapi.json reads naturally.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json['$id'] === 'string' ? json['$id'] : `def-${i}`),
    },
  });
  // A page people can read at /docs, drawn from the same document.
  await registerApiDocs(app);
  // The API speaks JSON only; anything else is a 415, not a string that fails validation.
  app.removeContentTypeParser(['text/plain', 'application/json']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as Buffer));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  for (const schema of [predictionRecordSchema, problemSchema, modelSummarySchema, scalingFiguresSchema, dashboardSchema]) app.addSchema(schema);
  app.setErrorHandler(answerError);
  // While closing, answers end their connection: a kept-alive idle socket would hold close() open.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onRequest', async (request) => {
    if (request.raw.headers.host === undefined && request.raw.httpVersion === '1.1') {
      throw new SpillwayError('SPILLWAY_MALFORMED_REQUEST', 'an HTTP/1.1 request must send a Host header (RFC 9112)');
    }
  });
  registerAuthentication(app, new Authenticator({ keys: o.store, mode: o.auth ?? 'auto' }), metrics);
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, new SpillwayError('SPILLWAY_ROUTE_NOT_FOUND', `no route ${request.method} ${request.url}`)),
  );
  predictionRoutes(app, ctx);
  predictionControlRoutes(app, ctx);
  modelRoutes(app, ctx);
  operationRoutes(app, ctx);
  scalingRoutes(app, ctx);
  dashboardRoutes(app, ctx, dashboard);
  messageSchemaRoutes(app);
  oipRoutes(app, ctx);
  await app.ready();

  // Final records, once stored, are counted by the process that stored them (each counts its
  // share) and handed to the clients waiting for them, wherever they were stored.
  const stopHearing = o.store.onStored(({ records, local }) => {
    if (local) {
      backpressure.completed(records);
      finished(records);
    }
    for (const record of records) {
      waiters.resolve(record);
      listeners.notify(record);
    }
  });
  const readers: StreamReader[] = [
    await startResponseReader({ broker: o.broker, store: o.store, waiters, listeners, finished, responsesTopic: topics.responses, gatewayId, logger: o.logger }),
  ];
  if (o.runStoreWriter) {
    readers.push(
      await startStoreWriter({ broker: o.broker, store: o.store, responsesTopic: topics.responses, logger: o.logger }),
    );
  }
  await registry.start(o.broker, topics.workers, o.logger);

  return {
    app,
    listen: (host, port) => app.listen({ host, port }),
    close: () => {
      stopped ??= (async () => {
        closing = true;
        waiters.releaseAll();
        shutdown.abort();
        // Fastify closes the connections idle when close begins; one that goes idle later (its
        // answer finishing just then) would hold close open, so idle ones keep being closed. A
        // request in flight gets a grace period to finish; a connection still open after it
        // holds nothing a client waits for (waiters were released, event streams ended), and is
        // ended so that close completes.
        const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
        const force = setTimeout(() => {
          o.logger.warn('gateway close: ending the connections still open after the grace period');
          app.server.closeAllConnections();
        }, closeGraceMs);
        await app.close().finally(() => {
          clearInterval(sweep);
          clearTimeout(force);
        });
        syncDispatcher.close();
        await Promise.all([...readers.map((r) => r.stop()), registry.stop(), scaling.stop(), dashboard.stop()]);
        stopHearing();
      })();
      return stopped;
    },
  };
}
