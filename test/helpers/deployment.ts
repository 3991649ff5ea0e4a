import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Broker } from '../../src/brokers/broker.js';
import { openBroker } from '../../src/brokers/open-broker.js';
import type { CallbackSettings } from '../../src/callbacks/callback-settings.js';
import { CallbackDispatcher } from '../../src/callbacks/dispatcher.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway/gateway.js';
import type { LaneWeights } from '../../src/protocol/topics.js';
import { loadModelRepository } from '../../src/models/model-repository.js';
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js';
import { Worker } from '../../src/worker/worker.js';
import { modelsDir } from './paths.js';

export interface Deployment {
  readonly url: string;
  readonly dataDir: string;
  readonly gateway: Gateway;
  readonly worker: Worker | undefined;
  readonly broker: Broker;
  /** Topic prefix: unique per deployment, so deployments sharing a Kafka never meet. */
  readonly prefix: string;
  readonly store: SqliteStore;
  /** The running callback dispatcher, when started with `callbacks`. */
  dispatcher: CallbackDispatcher | undefined;
  /**
   * Starts another dispatcher on this deployment's broker and store (after stopping the first,
   * say), with the deployment's callback settings unless others are given.
   */
  startDispatcher(settings?: CallbackSettings): Promise<CallbackDispatcher>;
  close(): Promise<void>;
}

/** The sync secret (worker.sync_secret) of the gateways and workers the tests start. */
export const testSyncSecret = 'spillway-test-sync-secret';

/**
 * A worker in this process with the settings the tests use (short leases and heartbeats), not
 * yet started: a deployment's own, or another one joining it. Its sync secret is
 * {@link testSyncSecret} unless another is given (null: none).
 */
export function testWorker(o: {
  broker: Broker;
  prefix: string;
  models: string;
  workerId: string;
  syncSecret?: string | null;
  laneWeights?: LaneWeights;
  concurrency?: number;
}): Worker {
  const syncSecret = o.syncSecret === null ? undefined : (o.syncSecret ?? testSyncSecret);
  return new Worker({
    broker: o.broker,
    models: [...loadModelRepository(o.models).models.values()],
    prefix: o.prefix,
    ...(o.laneWeights === undefined ? {} : { laneWeights: o.laneWeights }),
    ...(o.concurrency === undefined ? {} : { concurrency: o.concurrency }),
    logger: pino({ level: process.env['SPILLWAY_TEST_LOG'] ?? 'silent' }),
    workerId: o.workerId,
    leaseMs: 5000,
    heartbeatMs: 500,
    runningEventDelayMs: 25,
    syncListen: { host: '127.0.0.1', port: 0 },
    ...(syncSecret === undefined ? {} : { syncSecret }),
  });
}

/**
 * A gateway and (optionally) a worker in this process, on a fresh data folder, listening on a
 * real port: tests talk to it over real HTTP.
 */
export async function startDeployment(
  options: {
    withWorker?: boolean;
    dataDir?: string;
    models?: string;
    maxWaiters?: number;
    maxWaitS?: number;
    bodyLimitBytes?: number;
    busyTimeoutMs?: number;
    maxEventStreams?: number;
    /** Broker URL; embedded unless given (tests on Kafka pass SPILLWAY_TEST_KAFKA). */
    broker?: string;
    /** Topic prefix; a fresh one per deployment on a shared server unless given (another deployment's, to join it). */
    prefix?: string;
    /** Callback settings: the gateway checks submitted callbacks with them and a dispatcher runs. */
    callbacks?: CallbackSettings;
    /** API keys and tenant limits (docs/tenants.md); the gateway's defaults unless given. */
    tenancy?: Pick<GatewayOptions, 'auth' | 'limits' | 'tenants' | 'laneWeights'>;
    /** Overrides every model's concurrency in the deployment's worker. */
    concurrency?: number;
    /** The sync secret of the gateway (and of its worker), {@link testSyncSecret} unless given; null: none. */
    syncSecret?: string | null;
  } = {},
): Promise<Deployment> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'spillway-e2e-'));
  const logger = pino({ level: process.env['SPILLWAY_TEST_LOG'] ?? 'silent' });
  const repository = loadModelRepository(options.models ?? modelsDir);
  const busy = options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs };
  const brokerUrl = options.broker ?? 'embedded';
  // Each deployment on a shared Kafka gets topics of its own.
  const prefix = options.prefix ?? (brokerUrl === 'embedded' ? 'spillway' : `t${Math.random().toString(36).slice(2, 10)}`);
  const broker = await openBroker({ url: brokerUrl, dataDir, leaseMs: 5000, kafka: { partitions: 2 }, ...busy });
  const store = SqliteStore.open({ dataDir, retentionMs: 3600_000, ...busy });
  const syncSecret = options.syncSecret === null ? undefined : (options.syncSecret ?? testSyncSecret);
  const gateway = await createGateway({
    broker,
    store,
    repository,
    prefix,
    logger,
    bodyLimitBytes: options.bodyLimitBytes ?? 1_048_576,
    maxWaitS: options.maxWaitS ?? 60,
    maxWaiters: options.maxWaiters ?? 10_000,
    heartbeatMs: 500,
    runStoreWriter: true,
    ...(options.callbacks === undefined ? {} : { callbacks: options.callbacks }),
    ...(options.maxEventStreams === undefined ? {} : { maxEventStreams: options.maxEventStreams }),
    ...options.tenancy,
    ...(syncSecret === undefined ? {} : { syncSecret }),
  });
  let worker: Worker | undefined;
  if (options.withWorker ?? true) {
    worker = testWorker({
      broker,
      prefix,
      models: options.models ?? modelsDir,
      workerId: 'test-worker',
      syncSecret: syncSecret ?? null,
      ...(options.tenancy?.laneWeights === undefined ? {} : { laneWeights: options.tenancy.laneWeights }),
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    });
    await worker.start();
  }
  const url = await gateway.listen('127.0.0.1', 0);
  const startDispatcher = async (settings = options.callbacks) => {
    if (settings === undefined) throw new Error('startDeployment: no callbacks settings');
    return new CallbackDispatcher({ broker, store, prefix, logger, settings, pollMs: 50 }).start();
  };
  const deployment: Deployment = {
    url,
    dataDir,
    gateway,
    worker,
    broker,
    prefix,
    store,
    dispatcher: options.callbacks === undefined ? undefined : await startDispatcher(),
    startDispatcher,
    close: async () => {
      await deployment.dispatcher?.stop();
      await gateway.close();
      await worker?.drain();
      await broker.close();
      await store.close();
    },
  };
  return deployment;
}
