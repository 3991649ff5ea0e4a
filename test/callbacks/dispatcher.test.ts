import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CallbackSettings } from '../../src/callbacks/callback-settings.js';
import { parseEgressPolicy } from '../../src/callbacks/egress-guard.js';
import { generateSecret, parseSigningSecrets } from '../../src/callbacks/signing.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { addKey } from '../helpers/api-keys.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { request, waitForFinal } from '../helpers/http.js';
import { until } from '../helpers/until.js';
import { pngBase64, pngSamples } from '../helpers/digits-image.js';
import { modelRepo } from '../helpers/model-repo.js';
import { inBrokerLegSuite, testBrokers } from '../helpers/paths.js';
import { spawnSpillway } from '../helpers/processes.js';
import { listDeadLetters, replayDeadLetters } from '../../src/dlq/dead-letters.js';
import { topicsFor } from '../../src/protocol/topics.js';

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface Receiver {
  readonly url: string;
  readonly received: Received[];
  close(): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real receiver on 127.0.0.1; `answer` gets the number of the request (1-based). */
async function receiver(answer: (res: ServerResponse, n: number) => void): Promise<Receiver> {
  const received: Received[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
      answer(res, received.length);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const r: Receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  cleanups.push(() => r.close());
  return r;
}

const ok = (res: ServerResponse) => res.writeHead(204).end();

function settings(secret: string, overrides: Partial<CallbackSettings> = {}): CallbackSettings {
  return {
    policy: parseEgressPolicy({ allow: ['127.0.0.1'] }),
    secrets: parseSigningSecrets({ secrets: [secret] }),
    tenantSecrets: new Map(),
    maxAttempts: 8,
    backoffBaseMs: 20,
    backoffCapMs: 50,
    connectTimeoutMs: 1000,
    // The receiver shares this process's event loop with the whole deployment; on a loaded
    // machine it can take a while to answer, and a retry after a timeout is a real second call.
    responseTimeoutMs: 10_000,
    ...overrides,
  };
}

/** The broker of the suite being run (each suite runs on every test broker). */
let broker = 'embedded';

async function deployment(secret: string, overrides: Partial<CallbackSettings> = {}, models?: string): Promise<Deployment> {
  const d = await startDeployment({ callbacks: settings(secret, overrides), broker, ...(models === undefined ? {} : { models }) });
  cleanups.push(() => d.close());
  return d;
}

function submit(d: Deployment, model: string, input: unknown, callback: unknown) {
  return request<PredictionRecord & { code?: string; detail?: string }>(`${d.url}/v1/models/${model}/predictions`, {
    body: { input, callback },
  });
}

type Delivery = NonNullable<NonNullable<PredictionRecord['callback']>['deliveries']>[number];

async function deliveryState(d: Deployment, id: string, state: Delivery['state'], event = 'completed'): Promise<Delivery> {
  return until(`${event} delivery ${state}`, async () => {
    const res = await request<PredictionRecord>(`${d.url}/v1/predictions/${id}`);
    return res.body.callback?.deliveries?.find((x) => x.event === event && x.state === state);
  });
}

describe.each(testBrokers)('callback dispatcher on the $name broker', ({ url }) => {
  beforeAll(() => {
    broker = url;
  });

  it('delivers the completed payload, signed so that standardwebhooks verifies it', async () => {
    const secret = generateSecret();
    const r = await receiver(ok);
    const d = await deployment(secret);
    const res = await submit(d, 'echo', 'hello', { url: r.url });
    expect(res.status).toBe(202);
    expect(res.body.callback).toEqual({ url: r.url, events: ['completed'] });
    const final = await waitForFinal(d.url, res.body.id);
    await until('the callback', () => (r.received.length > 0 ? true : undefined));
    const [got] = r.received;
    const verified = new Webhook(secret).verify(got!.body, {
      'webhook-id': String(got!.headers['webhook-id']),
      'webhook-timestamp': String(got!.headers['webhook-timestamp']),
      'webhook-signature': String(got!.headers['webhook-signature']),
    }) as { type: string; data: PredictionRecord };
    expect(verified.type).toBe('prediction.completed');
    expect(verified.data).toMatchObject({ id: res.body.id, status: 'succeeded', output: final.output });
    expect(got!.headers['webhook-id']).toBe(`msg_${res.body.id}_completed_0`);
    const delivered = await deliveryState(d, res.body.id, 'delivered');
    expect(delivered).toMatchObject({ attempts: 1, last_status: 204, webhook_id: `msg_${res.body.id}_completed_0` });
    expect(r.received).toHaveLength(1);
  });

  it('reads a record without the callback header (an older producer), and skips one marked as having none', async () => {
    const r = await receiver(ok);
    const d = await deployment(generateSecret());
    const record = (id: string): PredictionRecord => ({
      id,
      model: 'echo',
      status: 'succeeded',
      metadata: {},
      created_at: new Date().toISOString(),
      attempts: 1,
      metrics: {},
      output: 1,
      callback: { url: r.url, events: ['completed'] },
    });
    const legacy = randomUUID();
    const marked = randomUUID();
    const { responses } = topicsFor(d.prefix);
    // The header claims no callback though the record has one: proof that the header is what is read.
    await d.broker.publish(responses, [
      { key: marked, headers: { 'spillway-id': marked, 'spillway-callback': 'no' }, value: JSON.stringify({ v: 1, ...record(marked) }) },
      { key: legacy, headers: { 'spillway-id': legacy }, value: JSON.stringify({ v: 1, ...record(legacy) }) },
    ]);
    await until('the callback', () => (r.received.length > 0 ? true : undefined));
    expect(r.received.map((x) => x.headers['webhook-id'])).toEqual([`msg_${legacy}_completed_0`]);
    const more = await submit(d, 'echo', 2, { url: r.url });
    await until('the next callback', () => (r.received.length > 1 ? true : undefined));
    expect(r.received.map((x) => x.headers['webhook-id'])).toEqual([`msg_${legacy}_completed_0`, `msg_${more.body.id}_completed_0`]);
  });

  it('calls back a pipeline like a model: running once and completed once, with the final record of its last step', async () => {
    const r = await receiver(ok);
    const d = await deployment(generateSecret());
    const sample = pngSamples[0]!;
    const res = await submit(d, 'digits-image', { image: pngBase64(sample) }, { url: r.url, events: ['running', 'completed'] });
    expect(res.status).toBe(202);
    await deliveryState(d, res.body.id, 'delivered', 'completed');
    await deliveryState(d, res.body.id, 'delivered', 'running');
    const events = r.received.map((x) => JSON.parse(x.body) as { type: string; data: PredictionRecord });
    // A pipeline publishes several running records (one as each step is queued and starts): one webhook.
    expect(events.map((e) => e.type).sort()).toEqual(['prediction.completed', 'prediction.running']);
    const completed = events.find((e) => e.type === 'prediction.completed')!.data;
    expect(completed).toMatchObject({ id: res.body.id, model: 'digits-image', status: 'succeeded', step: 'digits-top3' });
    expect(completed.steps?.map((step) => step.model)).toEqual(['digits-preprocess', 'digits', 'digits-top3']);
  });

  it('sends the running event when asked for', async () => {
    const r = await receiver(ok);
    const d = await deployment(generateSecret(), {}, modelRepo({ fixtures: ['gate'] }));
    // The model runs until released: a fixed service time could end in the same event-loop turn
    // as the worker's running_after_ms timer, and then no running event is due.
    const release = join(mkdtempSync(join(tmpdir(), 'spillway-gate-')), 'release');
    const res = await submit(d, 'gate', { release }, { url: r.url, events: ['running', 'completed'] });
    expect(res.status).toBe(202);
    await deliveryState(d, res.body.id, 'delivered', 'running');
    writeFileSync(release, '');
    await deliveryState(d, res.body.id, 'delivered', 'completed');
    const types = r.received.map((x) => (JSON.parse(x.body) as { type: string }).type).sort();
    expect(types).toEqual(['prediction.completed', 'prediction.running']);
  });

  it('retries a failing receiver with the same webhook-id until it answers 2xx', async () => {
    const r = await receiver((res, n) => (n <= 2 ? res.writeHead(500).end('not yet') : ok(res)));
    const d = await deployment(generateSecret());
    const res = await submit(d, 'echo', 1, { url: r.url });
    const delivered = await deliveryState(d, res.body.id, 'delivered');
    expect(delivered.attempts).toBe(3);
    expect(r.received).toHaveLength(3);
    expect(new Set(r.received.map((x) => x.headers['webhook-id']))).toEqual(new Set([`msg_${res.body.id}_completed_0`]));
    expect(new Set(r.received.map((x) => x.body)).size).toBe(1);
  });

  it('stops after a 410', async () => {
    const r = await receiver((res) => res.writeHead(410).end());
    const d = await deployment(generateSecret());
    const res = await submit(d, 'echo', 1, { url: r.url });
    const gone = await deliveryState(d, res.body.id, 'gone');
    expect(gone).toMatchObject({ attempts: 1, last_status: 410 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(r.received).toHaveLength(1);
  });

  it('does not follow a redirect', async () => {
    const target = await receiver(ok);
    const r = await receiver((res) => res.writeHead(302, { location: target.url }).end());
    const d = await deployment(generateSecret(), { maxAttempts: 2 });
    const res = await submit(d, 'echo', 1, { url: r.url });
    const dead = await deliveryState(d, res.body.id, 'dead');
    expect(dead).toMatchObject({ attempts: 2, last_status: 302 });
    expect(dead.last_error).toContain('redirect');
    expect(target.received).toHaveLength(0);
  });

  it('retries a receiver that does not answer in time', async () => {
    const r = await receiver((res, n) => {
      if (n > 1) ok(res);
      // The first request is left hanging.
    });
    const d = await deployment(generateSecret(), { responseTimeoutMs: 1000 });
    const res = await submit(d, 'echo', 1, { url: r.url });
    const delivered = await deliveryState(d, res.body.id, 'delivered');
    expect(delivered.attempts).toBe(2);
    expect(r.received.length).toBe(2);
  });

  it('dead-letters a delivery after max_attempts', async () => {
    const r = await receiver((res) => res.writeHead(500).end());
    const d = await deployment(generateSecret(), { maxAttempts: 2 });
    const res = await submit(d, 'echo', 1, { url: r.url });
    await deliveryState(d, res.body.id, 'dead');
    const sub = await d.broker.subscribe({ topic: `${d.prefix}.dlq`, group: `t-${randomUUID()}`, from: 'earliest', ephemeral: true });
    try {
      const letters = await sub.take(10, { timeoutMs: 2000 });
      const letter = letters.map((l) => JSON.parse(l.value) as Record<string, unknown>).find((l) => l['kind'] === 'callback');
      expect(letter).toMatchObject({
        v: 1,
        kind: 'callback',
        webhook_id: `msg_${res.body.id}_completed_0`,
        prediction_id: res.body.id,
        url: r.url,
        attempts: 2,
        reason: { code: 'SPILLWAY_CALLBACK_FAILED' },
      });
    } finally {
      await sub.close();
    }
  });

  it('dlq replay sends a dead webhook again, with the same webhook-id, once the receiver is back', async () => {
    let up = false;
    const r = await receiver((res) => (up ? ok(res) : res.writeHead(500).end()));
    const d = await deployment(generateSecret(), { maxAttempts: 2 });
    const res = await submit(d, 'echo', 1, { url: r.url });
    await deliveryState(d, res.body.id, 'dead');
    const listed = await listDeadLetters(d.broker, topicsFor(d.prefix));
    expect(listed.find((l) => l.kind === 'callback' && l.id === res.body.id)).toMatchObject({ replayed: false, attempts: 2 });
    up = true;
    const resend = (webhookId: string) => d.store.resendCallback(webhookId);
    const { replayed } = await replayDeadLetters(d.broker, topicsFor(d.prefix), (l) => l.id === res.body.id, resend);
    expect(replayed.map((l) => l.kind)).toEqual(['callback']);
    await deliveryState(d, res.body.id, 'delivered');
    expect(new Set(r.received.map((x) => x.headers['webhook-id']))).toEqual(new Set([`msg_${res.body.id}_completed_0`]));
    expect(r.received).toHaveLength(3);
    // Once only: the letter is marked replayed.
    const again = await replayDeadLetters(d.broker, topicsFor(d.prefix), (l) => l.id === res.body.id, resend);
    expect(again.replayed).toHaveLength(0);
  });

  it('a new dispatcher delivers what the stopped one owed, with the same webhook-id', async () => {
    const r = await receiver((res, n) => (n === 1 ? res.writeHead(503).end() : ok(res)));
    const d = await deployment(generateSecret(), { backoffBaseMs: 400, backoffCapMs: 400 });
    const res = await submit(d, 'echo', 1, { url: r.url });
    await until('the first attempt', () => (r.received.length === 1 ? true : undefined));
    await d.dispatcher?.stop();
    const more = await submit(d, 'echo', 2, { url: r.url });
    await waitForFinal(d.url, more.body.id);
    d.dispatcher = await d.startDispatcher();
    await deliveryState(d, res.body.id, 'delivered');
    await deliveryState(d, more.body.id, 'delivered');
    const ids = r.received.map((x) => x.headers['webhook-id']);
    expect(ids.filter((id) => id === `msg_${res.body.id}_completed_0`)).toHaveLength(2);
    expect(ids.filter((id) => id === `msg_${more.body.id}_completed_0`)).toHaveLength(1);
  });

  it('checks the destination again at delivery, and makes no connection when it is now refused', async () => {
    const r = await receiver(ok);
    const secret = generateSecret();
    const d = await deployment(secret);
    await d.dispatcher?.stop();
    // The operator has since closed the allowlist: loopback is refused again.
    d.dispatcher = await d.startDispatcher(settings(secret, { policy: parseEgressPolicy({ allow: [] }) }));
    const res = await submit(d, 'echo', 1, { url: r.url });
    expect(res.status).toBe(202);
    const dead = await deliveryState(d, res.body.id, 'dead');
    expect(dead.attempts).toBe(1);
    expect(dead.last_error).toContain('loopback');
    expect(r.received).toHaveLength(0);
  });

  it('refuses a bad callback at submit, queueing nothing', async () => {
    const d = await deployment(generateSecret());
    const cases: [unknown, string][] = [
      [{ url: 'not a url' }, 'SPILLWAY_INVALID_CALLBACK'],
      [{ url: 'ftp://127.0.0.1/x' }, 'SPILLWAY_INVALID_CALLBACK'],
      [{ url: 'http://127.0.0.1/x', events: ['finished'] }, 'SPILLWAY_INVALID_CALLBACK'],
      [{ url: 'http://10.0.0.1/' }, 'SPILLWAY_CALLBACK_REFUSED'],
    ];
    for (const [callback, code] of cases) {
      const res = await submit(d, 'echo', 1, callback);
      expect(res.status, JSON.stringify(callback)).toBe(422);
      expect(res.body.code).toBe(code);
    }
  });

  it("signs a tenant's callbacks with its own secret, and another tenant's with the deployment's", async () => {
    const deploymentSecret = generateSecret();
    const acmeSecret = generateSecret();
    const r = await receiver(ok);
    const callbacks = settings(deploymentSecret, { tenantSecrets: new Map([['acme', parseSigningSecrets({ secrets: [acmeSecret] })]]) });
    const d = await startDeployment({ callbacks, broker });
    cleanups.push(() => d.close());
    const acme = await addKey(d.store, 'acme', ['predict']);
    const globex = await addKey(d.store, 'globex', ['predict']);
    const send = (auth: { authorization: string }) =>
      request<PredictionRecord>(`${d.url}/v1/models/echo/predictions`, { body: { input: 'x', callback: { url: r.url } }, headers: auth });
    const ids = [(await send(acme.auth)).body.id, (await send(globex.auth)).body.id];
    await until('both callbacks', () => (r.received.length >= 2 ? true : undefined));
    const signed = (got: Received, secret: string) => {
      try {
        new Webhook(secret).verify(got.body, {
          'webhook-id': String(got.headers['webhook-id']),
          'webhook-timestamp': String(got.headers['webhook-timestamp']),
          'webhook-signature': String(got.headers['webhook-signature']),
        });
        return true;
      } catch {
        return false;
      }
    };
    const of = (id: string | undefined) => r.received.find((x) => x.headers['webhook-id'] === `msg_${id}_completed_0`)!;
    expect(signed(of(ids[0]), acmeSecret)).toBe(true);
    expect(signed(of(ids[0]), deploymentSecret)).toBe(false);
    expect(signed(of(ids[1]), deploymentSecret)).toBe(true);
    expect(signed(of(ids[1]), acmeSecret)).toBe(false);
  });

  it('refuses a callback when no signing secret is configured', async () => {
    const d = await startDeployment({ broker });
    cleanups.push(() => d.close());
    const res = await submit(d, 'echo', 1, { url: 'http://127.0.0.1/x' });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('SPILLWAY_INVALID_CALLBACK');
  });
});

// `spillway serve` on its embedded queue: the default suite runs it.
it.skipIf(inBrokerLegSuite)('a dispatcher killed mid-schedule (SIGKILL) owes nothing after a restart: every callback arrives, one webhook-id each', async () => {
  // Each webhook fails its first two attempts, so the kill lands with retries still owed.
  const r = await receiver((res) => {
    const id = r.received.at(-1)?.headers['webhook-id'];
    const tries = r.received.filter((x) => x.headers['webhook-id'] === id).length;
    if (tries <= 2) res.writeHead(503).end();
    else ok(res);
  });
  const dir = mkdtempSync(join(tmpdir(), 'spillway-cb-kill-'));
  const config = join(dir, 'spillway.yaml');
  writeFileSync(
    config,
    stringify({ callbacks: { allow: ['127.0.0.1'], secrets: [generateSecret()], backoff_base_ms: 1500, backoff_cap_ms: 1500 } }),
  );
  const args = ['serve', '--config', config, '--data', join(dir, 'data'), '--port', '0'];
  let serve = await spawnSpillway(args);
  const ids: string[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const res = await request<PredictionRecord>(`${serve.url}/v1/models/echo/predictions`, {
        body: { input: i, callback: { url: r.url } },
        headers: { prefer: 'wait=10' },
      });
      expect(res.status).toBe(200);
      ids.push(res.body.id);
    }
    await until('the first attempts', () => (new Set(r.received.map((x) => x.headers['webhook-id'])).size === 3 ? true : undefined));
    expect(await serve.kill('SIGKILL')).toBeNull();
    serve = await spawnSpillway(args);
    for (const id of ids) {
      // A kill in the middle of an attempt leaves its lease (~45 s) to run out first.
      const delivered = await until(
        `the callback of ${id}`,
        async () => (await request<PredictionRecord>(`${serve.url}/v1/predictions/${id}`)).body.callback?.deliveries?.find((x) => x.state === 'delivered'),
        60_000,
      );
      expect(delivered.webhook_id).toBe(`msg_${id}_completed_0`);
      const calls = r.received.filter((x) => x.headers['webhook-id'] === delivered.webhook_id);
      expect(calls.length).toBeGreaterThanOrEqual(3);
      expect(r.received.filter((x) => String(x.headers['webhook-id']).includes(id)).every((x) => x.headers['webhook-id'] === delivered.webhook_id)).toBe(true);
    }
  } finally {
    await serve.kill('SIGTERM');
    await r.close();
  }
}, 120_000);
