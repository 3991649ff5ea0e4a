import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Broker } from '../brokers/broker.js';
import { laneWeightsOf } from '../config/lane-weights.js';
import type { ProcessTracing } from '../observability/tracing.js';
import { openBroker } from '../brokers/open-broker.js';
import { describeError } from '../protocol/errors.js';
import type { SpillwayConfig } from '../config/schema.js';
import { callbackSettings } from '../callbacks/callback-settings.js';
import { CallbackDispatcher, type DispatcherOptions } from '../callbacks/dispatcher.js';
import type { GatewayStore } from '../gateway/context.js';
import { createGateway, type Gateway } from '../gateway/gateway.js';
import { loadModelRepository, type ModelRepository } from '../models/model-repository.js';
import { topicsFor } from '../protocol/topics.js';
import { openStore, type StoreSettings } from '../stores/open-store.js';
import { startStoreWriter } from '../stores/store-writer.js';
import type { PredictionRecords, ResultStore } from '../stores/store.js';
import { Worker } from '../worker/worker.js';

/** Wiring shared by the serve, gateway and worker commands: one place turns config into parts. */

export function createLogger(config: SpillwayConfig): Logger {
  return pino({ level: config.log_level, base: { pid: process.pid } });
}

export function loadRepository(
  config: SpillwayConfig,
  logger: Logger,
  only?: readonly string[],
  options: { quiet?: boolean } = {},
): ModelRepository {
  const repository = loadModelRepository(config.models, only);
  if (options.quiet === true) return repository;
  for (const failure of repository.failures) {
    logger.error({ model: failure.name, details: failure.error.details }, failure.error.message);
  }
  return repository;
}

/**
 * Opens the broker without waiting for it: a broker that is down at start is reported clearly,
 * and every part retries with backoff while the gateway answers 503. Given the process's store,
 * an embedded queue that shares its file writes the response stream's records into it as it
 * publishes them, and this process's handle announces them.
 */
export async function openConfiguredBroker(config: SpillwayConfig, logger?: Logger, store?: Pick<ResultStore, 'recordsView'>): Promise<Broker> {
  const view = store?.recordsView?.(topicsFor(config.prefix).responses);
  const broker = await openBroker({
    url: config.broker,
    dataDir: config.data,
    leaseMs: config.worker.lease_ms,
    busyTimeoutMs: config.embedded.busy_timeout_ms,
    pollMs: config.embedded.poll_ms,
    kafka: {
      clientId: config.kafka.client_id,
      partitions: config.kafka.partitions,
      replicationFactor: config.kafka.replication_factor,
    },
    redis: { maxMessageBytes: config.redis.max_message_bytes },
    ...(view === undefined ? {} : { views: [view] }),
    ...(logger === undefined ? {} : { logger }),
  });
  if (logger !== undefined) {
    broker.ping().catch((error: unknown) =>
      logger.error(
        { broker: config.broker, err: error },
        `cannot reach the broker at ${config.broker} (${describeError(error)}); retrying with backoff, and new requests get 503 until it answers`,
      ),
    );
  }
  return broker;
}

/**
 * What openStore opens for this config: a SQLite file in the data folder, or a Redis server.
 * Beside the embedded queue the store shares the queue's file (one transaction writes a result,
 * acks its request and stores its record), unless the folder already has the results.db of an
 * earlier Spillway, which it keeps using.
 */
export function storeSettings(config: SpillwayConfig): StoreSettings {
  const retentionMs = config.retention_s * 1000;
  if (config.store === 'sqlite') {
    const file = config.broker === 'embedded' && !existsSync(join(config.data, 'results.db')) ? 'queue.db' : 'results.db';
    return { kind: 'sqlite', dataDir: config.data, file, retentionMs, busyTimeoutMs: config.embedded.busy_timeout_ms, pollMs: config.embedded.poll_ms };
  }
  // The deployment's prefix, so deployments sharing a server keep apart as their topics do.
  return { kind: 'redis', url: config.store, keyPrefix: `${config.prefix}:`, retentionMs };
}

/**
 * Opens the store the way openConfiguredBroker opens the broker: a malformed `store` URL fails
 * here, at start, naming the setting; a Redis that is down is reported clearly while the store
 * reconnects with backoff, and requests that need it get 503 until it answers.
 */
export async function openConfiguredStore(config: SpillwayConfig, logger?: Logger): Promise<ResultStore> {
  const store = await openStore(storeSettings(config));
  if (logger !== undefined) {
    store.ping().catch((error: unknown) =>
      logger.error(
        { store: config.store, err: error },
        `cannot reach the result store at ${config.store} (${describeError(error)}); retrying with backoff, and new requests get 503 until it answers`,
      ),
    );
  }
  return store;
}

export async function startGateway(
  config: SpillwayConfig,
  { tracing, ...parts }: { broker: Broker; store: GatewayStore; repository: ModelRepository; logger: Logger; tracing: ProcessTracing },
  options: { runStoreWriter: boolean },
): Promise<Gateway> {
  return createGateway({
    ...parts,
    ...options,
    tracer: tracing.tracerFor('gateway'),
    prefix: config.prefix,
    laneWeights: laneWeightsOf(config),
    bodyLimitBytes: config.gateway.body_limit_bytes,
    maxWaitS: config.gateway.max_wait_s,
    maxWaiters: config.gateway.max_waiters,
    heartbeatMs: config.worker.heartbeat_ms,
    callbacks: callbackSettings(config),
    auth: config.auth,
    limits: config.limits,
    tenants: config.tenants,
    retentionMs: config.retention_s * 1000,
    ...(config.worker.sync_secret === undefined ? {} : { syncSecret: config.worker.sync_secret }),
  });
}

/** The callback dispatcher: its own consumer group on the response stream, and the store's schedule. */
export async function startDispatcher(
  config: SpillwayConfig,
  { tracing, ...parts }: { broker: Broker; store: DispatcherOptions['store']; logger: Logger; tracing: ProcessTracing },
): Promise<CallbackDispatcher> {
  return new CallbackDispatcher({ ...parts, prefix: config.prefix, settings: callbackSettings(config), tracer: tracing.tracerFor('dispatcher') }).start();
}

export async function startWorker(
  config: SpillwayConfig,
  parts: { broker: Broker; repository: ModelRepository; logger: Logger; tracing: ProcessTracing },
): Promise<Worker> {
  const worker = new Worker({
    tracer: parts.tracing.tracerFor('worker'),
    broker: parts.broker,
    models: [...parts.repository.models.values()],
    prefix: config.prefix,
    laneWeights: laneWeightsOf(config),
    logger: parts.logger,
    workerId: `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`,
    leaseMs: config.worker.lease_ms,
    heartbeatMs: config.worker.heartbeat_ms,
    runningEventDelayMs: config.worker.running_after_ms,
    syncListen: {
      host: config.worker.sync_host,
      port: config.worker.sync_port,
      ...(config.worker.sync_advertise === undefined ? {} : { advertise: config.worker.sync_advertise }),
    },
    ...(config.worker.sync_secret === undefined ? {} : { syncSecret: config.worker.sync_secret }),
    ...(config.worker.concurrency === undefined ? {} : { concurrency: config.worker.concurrency }),
    // All of them, not only those this worker serves: a step hands its output to any model.
    stepModels: [...loadModelRepository(config.models).models.values()],
  });
  await worker.start();
  return worker;
}

/** A store writer for a process whose gateway does not run one (the worker thread of serve). */
export function startStoreWriterFor(
  config: SpillwayConfig,
  parts: { broker: Broker; store: Pick<PredictionRecords, 'put' | 'announceStored'>; logger: Logger },
): Promise<{ stop(): Promise<void> }> {
  return startStoreWriter({ ...parts, responsesTopic: topicsFor(config.prefix).responses });
}

/**
 * Runs `stop` on the first SIGTERM or SIGINT and exits 0 when it completes; exits 1 if it takes
 * longer than `timeoutMs` (unfinished work goes back to the queue when its lease runs out) or on
 * a second signal. Install it before the process says it is up: whoever reads that line (a
 * supervisor, a test) may send SIGTERM at once, and a signal with no handler yet kills without
 * draining.
 */
export function stopOnSignal(logger: Logger, timeoutMs: number, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing work in flight');
    const timer = setTimeout(() => {
      logger.error({ timeout_ms: timeoutMs }, 'shutdown took too long; unfinished work returns to the queue');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
