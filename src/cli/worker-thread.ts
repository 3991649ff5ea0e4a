import { parentPort, workerData } from 'node:worker_threads';
import type { SpillwayConfig } from '../config/schema.js';
import { createLogger, loadRepository, openConfiguredBroker, startWorker } from './services.js';

/**
 * `spillway serve` runs its worker here, in a thread of its own: the model's pull loop and its
 * queue transactions then use the second core instead of competing with the HTTP gateway.
 */
export type WorkerThreadMessage = { type: 'ready' } | { type: 'drained' } | { type: 'failed'; error: string };

const port = parentPort;
if (port === null) throw new Error('worker-thread.js runs only as a worker thread');
const { config } = workerData as { config: SpillwayConfig };
const logger = createLogger(config).child({ thread: 'worker' });
try {
  // The gateway thread has already reported models whose config is invalid.
  const repository = loadRepository(config, logger, config.worker.models, { quiet: true });
  const broker = await openConfiguredBroker(config);
  const worker = await startWorker(config, { broker, repository, logger });
  port.on('message', (message: { type: 'drain' }) => {
    if (message.type !== 'drain') return;
    void worker
      .drain()
      .then(() => broker.close())
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
