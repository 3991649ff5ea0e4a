import { parentPort, workerData } from 'node:worker_threads';
import type { SpillwayConfig } from '../config/schema.js';
import { ProcessTracing } from '../observability/tracing.js';
import {
  createLogger,
  loadRepository,
  openConfiguredBroker,
  openConfiguredStore,
  startDispatcher,
  startStoreWriterFor,
  startWorker,
} from './services.js';

/**
 * `spillway serve` runs its worker, its store writer and its callback dispatcher here, in a thread of their own: the
 * pull loop, the model and most queue transactions then use the second core instead of
 * competing with the HTTP gateway.
 */
export type WorkerThreadMessage = { type: 'ready' } | { type: 'drained' } | { type: 'failed'; error: string };

const port = parentPort;
if (port === null) throw new Error('worker-thread.js runs only as a worker thread');
const { config } = workerData as { config: SpillwayConfig };
const logger = createLogger(config).child({ thread: 'worker' });
try {
  // The gateway thread has already reported models whose config is invalid.
  const repository = loadRepository(config, logger, config.worker.models, { quiet: true });
  const store = await openConfiguredStore(config, logger);
  const broker = await openConfiguredBroker(config, logger, store);
  const tracing = new ProcessTracing(config.tracing);
  const worker = await startWorker(config, { broker, repository, logger, tracing });
  const storeWriter = await startStoreWriterFor(config, { broker, store, logger });
  const dispatcher = await startDispatcher(config, { broker, store, logger, tracing });
  port.on('message', (message: { type: 'drain' }) => {
    if (message.type !== 'drain') return;
    void worker
      .drain()
      .then(() => Promise.all([storeWriter.stop(), dispatcher.stop()]))
      .then(() => Promise.all([broker.close(), store.close()]))
      .then(() => tracing.shutdown())
      .then(() => {
        port.postMessage({ type: 'drained' } satisfies WorkerThreadMessage);
        port.close();
      });
  });
  port.postMessage({ type: 'ready' } satisfies WorkerThreadMessage);
} catch (error) {
  port.postMessage({ type: 'failed', error: error instanceof Error ? error.message : String(error) } satisfies WorkerThreadMessage);
  port.close();
}
