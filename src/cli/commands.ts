import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Worker as Thread } from 'node:worker_threads';
import type { SpillwayConfig } from '../config/schema.js';
import { ProcessTracing } from '../observability/tracing.js';
import { checkExposure } from './exposure-check.js';
import type { WorkerThreadMessage } from './worker-thread.js';
import {
  createLogger,
  loadRepository,
  openConfiguredBroker,
  openConfiguredStore,
  startDispatcher,
  startGateway,
  startWorker,
  stopOnSignal,
} from './services.js';

/** `spillway serve`: gateway, a worker (in its own thread) and the embedded queue in one process. */
export async function serve(configured: SpillwayConfig): Promise<void> {
  // Its gateway and its worker are the only parties to its sync calls, so unless told otherwise
  // they share a secret made up for this run: nobody else on the machine can call its worker.
  const syncSecret = configured.worker.sync_secret ?? randomBytes(32).toString('base64url');
  const config: SpillwayConfig = { ...configured, worker: { ...configured.worker, sync_secret: syncSecret } };
  const logger = createLogger(config);
  const repository = loadRepository(config, logger);
  const store = await openConfiguredStore(config, logger);
  const broker = await openConfiguredBroker(config, logger, store);
  await checkExposure(config, store, logger);
  // The worker thread also runs the store writer, leaving this thread to HTTP.
  const tracing = new ProcessTracing(config.tracing);
  const gateway = await startGateway(config, { broker, store, repository, logger, tracing }, { runStoreWriter: false });
  const worker = await startWorkerThread(config);
  const url = await gateway.listen(config.gateway.host, config.gateway.port);
  stopOnSignal(logger, config.worker.drain_timeout_ms, async () => {
    await gateway.close();
    await worker.drain();
    await broker.close();
    await store.close();
    await tracing.shutdown();
  });
  logger.info({ url, broker: config.broker, models: [...repository.models.keys()] }, `Spillway serving on ${url}`);
}

async function startWorkerThread(config: SpillwayConfig): Promise<{ drain(): Promise<void> }> {
  const thread = new Thread(new URL('./worker-thread.js', import.meta.url), { workerData: { config } });
  const [first] = (await once(thread, 'message')) as [WorkerThreadMessage];
  if (first.type === 'failed') throw new Error(`the worker thread failed to start: ${first.error}`);
  return {
    drain: async () => {
      const drained = once(thread, 'message');
      thread.postMessage({ type: 'drain' });
      await drained;
      // Drained, the thread ends on its own (and writes what --cpu-prof collected); one that
      // still holds a handle open after a second is ended.
      const exited = once(thread, 'exit');
      const stuck = setTimeout(() => void thread.terminate(), 1000);
      await exited;
      clearTimeout(stuck);
    },
  };
}

/** `spillway gateway`: the HTTP API alone; workers run elsewhere against the same queue. */
export async function gateway(config: SpillwayConfig): Promise<void> {
  const logger = createLogger(config);
  const repository = loadRepository(config, logger);
  const store = await openConfiguredStore(config, logger);
  const broker = await openConfiguredBroker(config, logger, store);
  await checkExposure(config, store, logger);
  const tracing = new ProcessTracing(config.tracing);
  const gw = await startGateway(config, { broker, store, repository, logger, tracing }, { runStoreWriter: true });
  const url = await gw.listen(config.gateway.host, config.gateway.port);
  const sync = [...repository.models.values()].filter((spec) => spec.config.dispatch === 'sync').map((spec) => spec.name);
  if (sync.length > 0 && config.worker.sync_secret === undefined) {
    logger.warn(
      { models: sync },
      'no sync secret: requests to these dispatch: sync models get 503 until worker.sync_secret (SPILLWAY_WORKER_SYNC_SECRET, --sync-secret) is set to the secret of their workers',
    );
  }
  stopOnSignal(logger, config.worker.drain_timeout_ms, async () => {
    await gw.close();
    await broker.close();
    await store.close();
    await tracing.shutdown();
  });
  logger.info({ url, broker: config.broker }, `Spillway gateway on ${url}`);
}

/** `spillway worker`: pulls and runs the requests of its models. */
export async function worker(config: SpillwayConfig): Promise<void> {
  const logger = createLogger(config);
  const repository = loadRepository(config, logger, config.worker.models);
  const broker = await openConfiguredBroker(config, logger);
  const tracing = new ProcessTracing(config.tracing);
  const w = await startWorker(config, { broker, repository, logger, tracing });
  stopOnSignal(logger, config.worker.drain_timeout_ms, async () => {
    await w.drain();
    await broker.close();
    await tracing.shutdown();
  });
  logger.info({ broker: config.broker, models: [...repository.models.keys()] }, 'Spillway worker started');
}

/** `spillway dispatcher`: delivers callbacks, beside gateways and workers that share its store. */
export async function dispatcher(config: SpillwayConfig): Promise<void> {
  const logger = createLogger(config);
  const store = await openConfiguredStore(config, logger);
  const broker = await openConfiguredBroker(config, logger, store);
  const tracing = new ProcessTracing(config.tracing);
  const d = await startDispatcher(config, { broker, store, logger, tracing });
  stopOnSignal(logger, config.callbacks.connect_timeout_ms + config.callbacks.response_timeout_ms + 5000, async () => {
    await d.stop();
    await broker.close();
    await store.close();
    await tracing.shutdown();
  });
  logger.info({ broker: config.broker }, 'Spillway callback dispatcher started');
}
