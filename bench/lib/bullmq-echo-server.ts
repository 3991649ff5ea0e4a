/**
 * The BullMQ peer of bench/echo-throughput.ts, HTTP side: what a Node team would build instead
 * of Spillway. A fastify server (the same version as Spillway's gateway) with Spillway's echo
 * route: POST /v1/models/echo/predictions with `{input}` adds a job to a BullMQ queue and, when
 * the client sends `Prefer: wait=N`, waits for its result the way BullMQ's documentation
 * prescribes, `job.waitUntilFinished(queueEvents, ttl)` on one shared QueueEvents. The job runs in
 * bullmq-echo-worker.ts, another process. It answers 200 with a record shaped like Spillway's
 * (`id`, `model`, `status: "succeeded"`, `output`, timestamps); 202 if the wait ran out, or if
 * the client did not ask to wait.
 *
 * Usage: node --import tsx bench/lib/bullmq-echo-server.ts <port> <redis-url> <prefix>
 * (tsx only strips the types at load time; the request path runs as plain JavaScript.)
 */
import { Queue, QueueEvents } from 'bullmq';
import Fastify from 'fastify';
import { heldWaitS } from '../../src/gateway/prefer.js';
import { attempts, closeOnSignal, peerArgs, queueName } from './bullmq-settings.js';

/** Spillway's default cap on `Prefer: wait` (--max-wait-s). */
const maxWaitS = 60;

const { port, redisUrl, prefix } = peerArgs();
const connection = { url: redisUrl };
const queue = new Queue(queueName, { connection, prefix, defaultJobOptions: { attempts } });
// One QueueEvents for all waiting requests: each holds its own Redis connection reading the
// events stream, so one per request would not scale (BullMQ's docs use one per process).
const queueEvents = new QueueEvents(queueName, { connection, prefix });
// Thousands of requests wait at once, each with two listeners on queueEvents.
queueEvents.setMaxListeners(0);
await Promise.all([queue.waitUntilReady(), queueEvents.waitUntilReady()]);

const app = Fastify({ logger: false });
app.get('/healthz', async () => ({ status: 'ok' }));
app.post<{ Params: { model: string }; Body: unknown }>('/v1/models/:model/predictions', async (request, reply) => {
  if (request.params.model !== 'echo') return reply.code(404).send({ title: `no model ${request.params.model}` });
  const body = request.body;
  if (typeof body !== 'object' || body === null || !('input' in body)) return reply.code(400).send({ title: 'body must be an object with "input"' });
  const job = await queue.add(queueName, body.input);
  const id = job.id ?? '';
  const created_at = new Date(job.timestamp).toISOString();
  const waitS = heldWaitS(request.headers.prefer, maxWaitS);
  if (waitS <= 0) return reply.code(202).send({ id, model: 'echo', status: 'queued', created_at });
  try {
    const output: unknown = await job.waitUntilFinished(queueEvents, waitS * 1000);
    return { id, model: 'echo', status: 'succeeded', created_at, completed_at: new Date().toISOString(), output };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // BullMQ tells a wait that ran out from a failed job only by its message.
    if (message.includes('timed out before finishing')) return reply.code(202).send({ id, model: 'echo', status: 'queued', created_at });
    return { id, model: 'echo', status: 'failed', created_at, completed_at: new Date().toISOString(), error: { message } };
  }
});

closeOnSignal('bullmq echo server', async () => {
  await app.close();
  await Promise.all([queueEvents.close(), queue.close()]);
});

await app.listen({ host: '127.0.0.1', port });
