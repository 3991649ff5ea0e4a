/**
 * The baseline of bench/echo-throughput.ts: the same fastify as Spillway's gateway, with no
 * queue, no store and no worker. It answers POST /v1/models/:model/predictions with the JSON
 * body it was sent, and /healthz like Spillway so the harness can wait for it the same way.
 *
 * Usage: node --import tsx bench/lib/bare-echo-server.ts <port>
 * (tsx only strips the types at load time; the request path runs as plain JavaScript.)
 */
import Fastify from 'fastify';

const port = Number(process.argv[2] ?? 0);
const app = Fastify({ logger: false });

app.get('/healthz', async () => ({ status: 'ok' }));
app.post('/v1/models/:model/predictions', async (request) => request.body);

const stop = (signal: NodeJS.Signals) => {
  app.close().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`bare server: close failed on ${signal}: ${String(error)}\n`);
      process.exit(1);
    },
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

await app.listen({ host: '127.0.0.1', port });
