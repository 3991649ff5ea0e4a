import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import diagnostics from 'node:diagnostics_channel';
import { createServer, type ClientRequest, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Worker } from 'node:worker_threads';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { backoff, deliver, parseRetryAfter, type DeliveryTarget } from '../../src/callbacks/deliver.js';
import { checkCallbackUrl, parseEgressPolicy, type CheckOptions } from '../../src/callbacks/egress-guard.js';
import { buildPayload, generateSecret, parseSecret, signWebhook } from '../../src/callbacks/signing.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';

interface Received {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface Receiver {
  readonly port: number;
  readonly received: Received[];
  close(): Promise<void>;
}

const open: Receiver[] = [];

/** A real HTTP receiver on 127.0.0.1 that records each request and answers with `answer`. */
async function receiver(answer: (res: ServerResponse) => void): Promise<Receiver> {
  const received: Received[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      answer(res);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const r: Receiver = {
    port: (server.address() as AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  open.push(r);
  return r;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

const policy = parseEgressPolicy({ allow: ['127.0.0.1'] });
const secret = generateSecret();
const record: PredictionRecord = {
  id: 'pred_42',
  model: 'iris',
  status: 'succeeded',
  output: { label: 'setosa' },
  // Multi-byte characters: content-length must count bytes, not characters.
  metadata: { note: 'ünïcode ✓' },
  created_at: '2026-11-28T12:00:00.000Z',
  completed_at: '2026-11-28T12:00:01.000Z',
  attempts: 1,
  metrics: {},
};

async function target(url: string, options: CheckOptions = {}, allow = policy): Promise<DeliveryTarget> {
  const decision = await checkCallbackUrl(url, allow, options);
  if (!decision.ok) throw new Error(decision.reason);
  return decision;
}

function webhook() {
  return signWebhook(buildPayload('prediction.completed', record), [parseSecret(secret)]);
}

describe('one delivery attempt against real receivers', () => {
  it('200: delivered; the receiver gets the signed body, the same webhook-id and a valid signature', async () => {
    const r = await receiver((res) => res.writeHead(200).end('ok'));
    const w = webhook();
    const outcome = await deliver(await target(`http://127.0.0.1:${r.port}/hooks/in?tenant=a`), w);
    expect(outcome).toMatchObject({ kind: 'delivered', status: 200 });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(0);
    expect(r.received).toHaveLength(1);
    const got = r.received[0]!;
    expect(got.method).toBe('POST');
    expect(got.url).toBe('/hooks/in?tenant=a');
    expect(got.body).toBe(w.body);
    expect(got.headers['webhook-id']).toBe(w.id);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['user-agent']).toMatch(/^Spillway/);
    expect(got.headers.host).toBe(`127.0.0.1:${r.port}`);
    const verified = new Webhook(secret).verify(got.body, got.headers as Record<string, string>);
    expect(verified).toMatchObject({ type: 'prediction.completed', data: { id: 'pred_42' } });
  });

  it('connects to the address the guard resolved, keeping the original name in Host', async () => {
    const r = await receiver((res) => res.writeHead(204).end());
    // hooks.invalid resolves nowhere; only the checked address can be where the request lands.
    const resolve: CheckOptions['resolve'] = async () => [{ address: '127.0.0.1', family: 4 }];
    const t = await target(`http://hooks.invalid:${r.port}/`, { resolve });
    expect(await deliver(t, webhook())).toMatchObject({ kind: 'delivered', status: 204 });
    expect(r.received[0]?.headers.host).toBe(`hooks.invalid:${r.port}`);
  });

  it('500: failed, with the status and a snippet of what the receiver said', async () => {
    const r = await receiver((res) => res.writeHead(500).end('database on fire'));
    const outcome = await deliver(await target(`http://127.0.0.1:${r.port}/`), webhook());
    expect(outcome).toMatchObject({ kind: 'failed', status: 500 });
    expect(outcome.reason).toContain('database on fire');
  });

  it('reads at most maxResponseBytes of a large answer', async () => {
    const r = await receiver((res) => res.writeHead(500).end('x'.repeat(1_000_000)));
    const outcome = await deliver(await target(`http://127.0.0.1:${r.port}/`), webhook(), { maxResponseBytes: 64 });
    expect(outcome).toMatchObject({ kind: 'failed', status: 500 });
    expect(outcome.reason.length).toBeLessThan(200);
  });

  it('429 with Retry-After: 7 → retry after 7 s', async () => {
    const r = await receiver((res) => res.writeHead(429, { 'retry-after': '7' }).end());
    const outcome = await deliver(await target(`http://127.0.0.1:${r.port}/`), webhook());
    expect(outcome).toMatchObject({ kind: 'retry', status: 429, retryAfterMs: 7000 });
  });

  it('503 with an HTTP-date Retry-After → retry until that date', async () => {
    const now = Date.UTC(2026, 10, 28, 12, 0, 0);
    const at = new Date(now + 90_000).toUTCString();
    const r = await receiver((res) => res.writeHead(503, { 'retry-after': at }).end());
    const outcome = await deliver(await target(`http://127.0.0.1:${r.port}/`), webhook(), { now: () => now });
    expect(outcome).toMatchObject({ kind: 'retry', status: 503, retryAfterMs: 90_000 });
  });

  it('503 without Retry-After → failed (the caller backs off)', async () => {
    const r = await receiver((res) => res.writeHead(503).end());
    expect(await deliver(await target(`http://127.0.0.1:${r.port}/`), webhook())).toMatchObject({
      kind: 'failed',
      status: 503,
    });
  });

  it('410 → gone', async () => {
    const r = await receiver((res) => res.writeHead(410).end());
    expect(await deliver(await target(`http://127.0.0.1:${r.port}/`), webhook())).toMatchObject({
      kind: 'gone',
      status: 410,
    });
  });

  it('302 → failed, and the redirect is not followed', async () => {
    const elsewhere = await receiver((res) => res.writeHead(200).end());
    const r = await receiver((res) =>
      res.writeHead(302, { location: `http://127.0.0.1:${elsewhere.port}/stolen` }).end(),
    );
    const outcome = await deliver(await target(`http://127.0.0.1:${r.port}/`), webhook());
    expect(outcome).toMatchObject({ kind: 'failed', status: 302 });
    expect(outcome.reason).toContain('not followed');
    expect(r.received).toHaveLength(1);
    expect(elsewhere.received).toHaveLength(0);
  });

  it('a receiver that never answers → failed by the response timeout', async () => {
    const r = await receiver(() => {
      // Keep the request open and say nothing.
    });
    const outcome = await deliver(await target(`http://127.0.0.1:${r.port}/`), webhook(), { responseTimeoutMs: 200 });
    expect(outcome).toMatchObject({ kind: 'failed' });
    expect(outcome).not.toHaveProperty('status');
    expect(outcome.reason).toBe('no response within 200 ms');
  });

  it('a 2xx whose body never finishes is still delivered when the timeout stops the reading', async () => {
    const r = await receiver((res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('partial');
    });
    const outcome = await deliver(await target(`http://127.0.0.1:${r.port}/`), webhook(), { responseTimeoutMs: 200 });
    expect(outcome).toMatchObject({ kind: 'delivered', status: 200 });
  });

  it('an answer that arrived in time is delivered even when a busy event loop sees the timeout come due first', async () => {
    // The receiver runs in a thread of its own, so it answers while this thread is blocked.
    const answered = new Int32Array(new SharedArrayBuffer(4));
    const thread = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const flag = new Int32Array(workerData);
       const server = require('node:http').createServer((req, res) => {
         req.resume();
         req.on('end', () => res.writeHead(204).end(() => { Atomics.store(flag, 0, 1); Atomics.notify(flag, 0); }));
       });
       server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));`,
      { eval: true, workerData: answered.buffer },
    );
    // Blocks this thread once the request is on the wire, until the answer is in the socket and
    // past the response timeout, like a long synchronous commit would.
    let blocked = false;
    const block = () => {
      blocked = true;
      Atomics.wait(answered, 0, 0, 10_000);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
    };
    // The channel reports the request with its socket already assigned, usually still connecting.
    const onRequest = (message: unknown) => {
      const { socket } = (message as { request: ClientRequest }).request;
      if (socket?.connecting === true) socket.once('connect', () => setImmediate(block));
      else setImmediate(block);
    };
    try {
      const port = await new Promise<number>((resolve) => thread.once('message', resolve));
      diagnostics.subscribe('http.client.request.start', onRequest);
      const outcome = await deliver(await target(`http://127.0.0.1:${port}/`), webhook(), { responseTimeoutMs: 200 });
      expect(blocked).toBe(true);
      expect(outcome).toMatchObject({ kind: 'delivered', status: 204 });
    } finally {
      diagnostics.unsubscribe('http.client.request.start', onRequest);
      await thread.terminate();
    }
  });

  // Linux drops new SYNs once a listener's accept queue (backlog + 1) is full, so a connection to
  // a listener that never accepts stays pending: a black hole on loopback.
  it.skipIf(process.platform !== 'linux')('a listener that never accepts → failed by the connect timeout', async () => {
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('node:net').createServer();
         s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
           process.stdout.write(s.address().port + '\\n');
           // Block the event loop without spinning, so nothing is ever accepted.
           setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000), 50);
         });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const fillers: Socket[] = [];
    try {
      const port = await new Promise<number>((resolve) => child.stdout.once('data', (d) => resolve(Number(String(d)))));
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (let i = 0; i < 2; i++) {
        const filler = connect(port, '127.0.0.1');
        fillers.push(filler);
        await new Promise((resolve) => filler.once('connect', resolve));
      }
      const outcome = await deliver(await target(`http://127.0.0.1:${port}/`), webhook(), {
        connectTimeoutMs: 200,
        responseTimeoutMs: 5000,
      });
      expect(outcome).toMatchObject({ kind: 'failed', reason: 'no connection within 200 ms' });
      expect(outcome).not.toHaveProperty('status');
    } finally {
      for (const f of fillers) f.destroy();
      child.kill();
    }
  });

  it('a closed port → failed, connection refused', async () => {
    const r = await receiver((res) => res.end());
    const port = r.port;
    open.splice(open.indexOf(r), 1);
    await r.close();
    const outcome = await deliver(await target(`http://127.0.0.1:${port}/`), webhook());
    expect(outcome).toMatchObject({ kind: 'failed' });
    expect(outcome.reason).toContain('ECONNREFUSED');
  });
});

describe('https delivery to a pinned address', () => {
  // A self-signed certificate for hooks.test only (valid to 2126), served on 127.0.0.1.
  const cert = readFileSync(new URL('./fixtures/hooks-test.cert.pem', import.meta.url));
  const key = readFileSync(new URL('./fixtures/hooks-test.key.pem', import.meta.url));
  const resolve: CheckOptions['resolve'] = async () => [{ address: '127.0.0.1', family: 4 }];

  type Seen = { servername: string | false | null; host?: string };

  async function tlsReceiver(): Promise<{ port: number; seen: Seen[]; close(): Promise<void> }> {
    const seen: Seen[] = [];
    const server = createTlsServer({ cert, key }, (req, res) => {
      seen.push({ servername: (req.socket as TLSSocket).servername, host: req.headers.host });
      req.resume();
      req.on('end', () => res.writeHead(200).end());
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    return {
      port: (server.address() as AddressInfo).port,
      seen,
      close: () => new Promise<void>((done) => server.close(() => done())),
    };
  }

  it('sends SNI and checks the certificate for the name in the URL, not the address', async () => {
    const r = await tlsReceiver();
    try {
      const t = await target(`https://hooks.test:${r.port}/in`, { resolve });
      const outcome = await deliver(t, webhook(), { ca: cert });
      expect(outcome).toMatchObject({ kind: 'delivered', status: 200 });
      expect(r.seen).toEqual([{ servername: 'hooks.test', host: `hooks.test:${r.port}` }]);

      // The same address under a name the certificate does not cover is refused by TLS.
      const wrong = await target(`https://other.test:${r.port}/in`, { resolve });
      const refused = await deliver(wrong, webhook(), { ca: cert });
      expect(refused).toMatchObject({ kind: 'failed' });
      expect(refused).not.toHaveProperty('status');
      expect(refused.reason).toMatch(/altnames|ERR_TLS_CERT_ALTNAME_INVALID/);
      expect(r.seen).toHaveLength(1);
    } finally {
      await r.close();
    }
  });
});

describe('Retry-After', () => {
  const now = Date.UTC(2026, 10, 28, 12, 0, 0);
  it.each([
    ['7', 7000],
    [' 0 ', 0],
    ['Sat, 28 Nov 2026 12:01:00 GMT', 60_000],
    ['Saturday, 28-Nov-26 12:01:00 GMT', 60_000],
    ['Sat Nov 28 12:01:00 2026', 60_000],
    ['Sat, 28 Nov 2026 11:00:00 GMT', 0],
  ])('%s → %d ms', (value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
  });

  it.each([[undefined], [''], ['-5'], ['7.5'], ['soon'], ['2026-11-28T12:01:00Z']])('%s is unreadable', (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});

describe('backoff', () => {
  it('is exponential with full jitter, capped', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoff(n, 1000, 20_000, () => 0.999999))).toEqual([
      999, 1999, 3999, 7999, 15_999, 19_999,
    ]);
    expect(backoff(3, 1000, 20_000, () => 0.5)).toBe(2000);
    expect(backoff(1, 1000, 20_000, () => 0)).toBe(0);
    // Huge attempt numbers stay at the cap instead of overflowing.
    expect(backoff(10_000, 1000, 20_000, () => 0.5)).toBe(10_000);
  });
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});
