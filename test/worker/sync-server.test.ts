import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBroker } from '../../src/brokers/open-broker.js';
import { loadModelRepository } from '../../src/models/model-repository.js';
import { SpillwayError } from '../../src/protocol/errors.js';
import { syncRunPath } from '../../src/protocol/sync-run.js';
import type { ModelRuntime } from '../../src/runtimes/runtime.js';
import { BearerCheck } from '../../src/worker/bearer-check.js';
import { BusyMeter } from '../../src/worker/busy-meter.js';
import { SyncServer } from '../../src/worker/sync-server.js';
import { Worker } from '../../src/worker/worker.js';
import { request } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';

const secret = 'the-sync-secret-of-this-test-0123';
const logger = pino({ level: process.env['SPILLWAY_TEST_LOG'] ?? 'silent' });

describe('the sync endpoint asks for the deployment secret', () => {
  const inputs: unknown[] = [];
  // Records what it runs, so a refused call can be seen to have run nothing.
  const runtime: ModelRuntime = {
    predict: async (batch) => {
      inputs.push(...batch);
      return batch.map((input) => ({ ok: true as const, output: { echoed: input } }));
    },
    close: async () => undefined,
  };
  const server = new SyncServer(new Map([['echo', { name: 'echo', runtime, concurrency: 4, meter: new BusyMeter() }]]), logger, secret);
  let url: string;

  beforeAll(async () => {
    url = new URL(syncRunPath('echo'), await server.listen('127.0.0.1', 0)).href;
  });
  afterAll(() => server.close());

  const call = (headers: Record<string, string>, raw = JSON.stringify({ id: 'p1', input: { n: 1 } })) => request<Record<string, unknown>>(url, { raw, headers });

  it.each([
    ['no Authorization header', {}],
    ['a wrong secret of the same length', { authorization: `Bearer ${'x'.repeat(secret.length)}` }],
    ['a secret of another length', { authorization: `Bearer ${secret}-and-more` }],
    ['a prefix of the secret', { authorization: `Bearer ${secret.slice(0, 16)}` }],
    ['the secret under another scheme', { authorization: `Basic ${secret}` }],
    ['the secret without a scheme', { authorization: secret }],
    ['an empty bearer token', { authorization: 'Bearer ' }],
  ])('refuses %s with 401 problem+json and WWW-Authenticate: Bearer, running nothing', async (_, headers) => {
    const before = inputs.length;
    const res = await call(headers);
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(res.body).toMatchObject({ status: 401, code: 'SPILLWAY_SYNC_UNAUTHORIZED', retryable: false });
    expect(JSON.stringify(res.body)).not.toContain(secret);
    expect(inputs.length).toBe(before);
  });

  it('checks the secret before it reads the body', async () => {
    const res = await call({}, '{"not json');
    expect(res.status).toBe(401);
    expect(res.body['code']).toBe('SPILLWAY_SYNC_UNAUTHORIZED');
  });

  it('runs the call that carries the secret, whatever the case of the scheme', async () => {
    for (const scheme of ['Bearer', 'bearer']) {
      const res = await call({ authorization: `${scheme} ${secret}` });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ ok: true, output: { echoed: { n: 1 } } });
    }
  });
});

describe('BearerCheck', () => {
  it('accepts only the exact secret', () => {
    const check = new BearerCheck(secret);
    expect(check.accepts(`Bearer ${secret}`)).toBe(true);
    for (const header of [undefined, '', 'Bearer', `Bearer ${secret}x`, `Bearer ${secret.toUpperCase()}`, `Bearer ${secret} extra`]) {
      expect(check.accepts(header), String(header)).toBe(false);
    }
  });

  it('refuses to be built without a secret', () => {
    expect(() => new BearerCheck('')).toThrow(/empty/);
  });
});

describe('a worker without a sync secret', () => {
  const sleepModel = (dispatch: 'sync' | 'async') =>
    [...loadModelRepository(modelRepo({ sleep: { dispatch } })).models.values()].filter((spec) => spec.name === 'sleep');
  const workerWithout = async (models: ReturnType<typeof sleepModel>) => {
    const broker = await openBroker({ url: 'embedded', dataDir: mkdtempSync(join(tmpdir(), 'spillway-sync-secret-')) });
    const worker = new Worker({
      broker,
      models,
      prefix: 'spillway',
      logger,
      workerId: 'no-secret',
      leaseMs: 5000,
      heartbeatMs: 500,
      runningEventDelayMs: 25,
      syncListen: { host: '127.0.0.1', port: 0 },
    });
    return { broker, worker };
  };

  it('refuses to start when it serves a dispatch: sync model, naming the setting', async () => {
    const { broker, worker } = await workerWithout(sleepModel('sync'));
    try {
      const refusal = await worker.start().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refusal).toBeInstanceOf(SpillwayError);
      expect(refusal).toMatchObject({ code: 'SPILLWAY_INVALID_CONFIG', details: [{ pointer: 'worker.sync_secret' }] });
      const message = (refusal as Error).message;
      for (const name of ['sleep', 'worker.sync_secret', 'SPILLWAY_WORKER_SYNC_SECRET', '--sync-secret']) expect(message).toContain(name);
    } finally {
      await broker.close();
    }
  });

  it('starts when none of its models is dispatch: sync', async () => {
    const { broker, worker } = await workerWithout(sleepModel('async'));
    try {
      await worker.start();
      await worker.drain();
    } finally {
      await broker.close();
    }
  });
});
