// One client library's cost on one Redis, in a process of its own (so one client's garbage and
// JIT state never bill another): bench/redis-clients.ts runs it and reads one JSON line.
// Usage: node redis-client-probe.mjs <client folder> <client> <redis url> <concurrency> <ops>
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [folder, client, url, concurrencyArg, opsArg] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const ops = Number(opsArg);
const require = createRequire(join(folder, 'node_modules', 'index.js'));
// A request envelope of the size the echo benchmark sends.
const value = JSON.stringify({ v: 1, id: '01JD5Y3Z8Q9R2S4T6V8W0X1Y2Z', model: 'echo', input: { text: 'The quick brown fox', values: Array.from({ length: 16 }, (_, i) => 2 ** i) } });
const stream = `clients:${client}:${process.pid}`;

async function open() {
  if (client === 'node-redis') {
    const { createClient } = require('redis');
    const c = createClient({ url });
    await c.connect();
    return { xadd: () => c.xAdd(stream, '*', { v: value }), set: (k) => c.set(k, value, { PX: 60_000 }), get: (k) => c.get(k), close: () => c.quit() };
  }
  const { Redis } = require(client);
  const c = new Redis(url);
  await c.ping();
  return { xadd: () => c.xadd(stream, '*', 'v', value), set: (k) => c.set(k, value, 'PX', 60_000), get: (k) => c.get(k), close: () => c.quit() };
}

async function measure(op) {
  let issued = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (issued < ops) {
      issued += 1;
      await op(`clients:${client}:k${issued % 1000}`);
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  return { ops_per_s: ops / seconds, client_cpu_us_per_op: (used.user + used.system) / ops };
}

const c = await open();
await measure(c.set); // warm-up: JIT and connection
const result = { xadd: await measure(c.xadd), set: await measure(c.set), get: await measure(c.get) };
await c.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
