/**
 * The BullMQ peer of bench/echo-throughput.ts, worker side: a BullMQ Worker in its own process
 * whose job returns its input, like Spillway's echo model.
 *
 * Concurrency (default 64): Spillway's echo model runs one batch at a time of up to 64 requests
 * (models/echo/model.yaml: concurrency 1, max_batch_size 64), so up to 64 requests are in its
 * handler at once. BullMQ's open-source Worker has no batches; the comparable setting is 64 jobs
 * in flight, which is what its `concurrency` means.
 *
 * It answers GET /healthz on <port> once the worker is connected, so that child-server.ts can
 * wait for it like for any server; nothing else is served there.
 *
 * Usage: node --import tsx bench/lib/bullmq-echo-worker.ts <port> <redis-url> <prefix> [concurrency]
 */
import { createServer } from 'node:http';
import { once } from 'node:events';
import { Worker } from 'bullmq';
import { closeOnSignal, peerArgs, queueName, removeOnComplete, removeOnFail } from './bullmq-settings.js';

const { port, redisUrl, prefix, concurrency } = peerArgs();
const worker = new Worker(queueName, async (job) => job.data as unknown, { connection: { url: redisUrl }, prefix, concurrency, removeOnComplete, removeOnFail });
worker.on('error', (error) => process.stderr.write(`bullmq echo worker: ${String(error)}\n`));
await worker.waitUntilReady();

const health = createServer((request, response) => {
  const ok = request.url === '/healthz' && worker.isRunning();
  response.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'not found' }));
});
health.listen(port, '127.0.0.1');
await once(health, 'listening');

closeOnSignal('bullmq echo worker', async () => {
  health.close();
  await worker.close();
});
