import { describe, expect, it, vi } from 'vitest';
import { canonicalJson, requestFingerprint } from '../../src/gateway/idempotency.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { startDeployment } from '../helpers/deployment.js';
import { predict, request } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';

interface Problem {
  code: string;
  errors?: { pointer: string; detail: string }[];
}

const echoTopic = 'spillway.requests.echo';
const replayed = (res: { headers: Headers }) => res.headers.get('idempotent-replayed');

describe('Idempotency-Key', () => {
  it('the same key and body return the original prediction and queue nothing new', async () => {
    const d = await startDeployment({ withWorker: false });
    const key = { 'idempotency-key': 'order-17' };
    const first = await predict(d.url, 'echo', { a: 1, b: [1, 2] }, key);
    expect(first.status).toBe(202);
    expect(replayed(first)).toBeNull();

    // The same body written differently (key order, spacing) is the same request.
    const again = await request<PredictionRecord>(`${d.url}/v1/models/echo/predictions`, {
      raw: '{ "input": { "b": [1, 2], "a": 1 } }',
      headers: key,
    });
    expect(again.status).toBe(202);
    expect(replayed(again)).toBe('true');
    expect(again.headers.get('location')).toBe(`/v1/predictions/${first.body.id}`);
    expect(again.body).toMatchObject({ id: first.body.id, model: 'echo', status: 'queued', created_at: first.body.created_at });
    expect(await d.broker.backlog(echoTopic, 'workers')).toBe(1);

    // The same key with another body, or for another model, is refused.
    for (const [model, input] of [
      ['echo', { a: 2, b: [1, 2] }],
      ['sleep', { a: 1, b: [1, 2] }],
    ] as const) {
      const reused = await predict(d.url, model, input, key);
      expect(reused.status).toBe(422);
      expect((reused.body as unknown as Problem).code).toBe('SPILLWAY_IDEMPOTENCY_KEY_REUSED');
    }
    const withMetadata = await request(`${d.url}/v1/models/echo/predictions`, {
      body: { input: { a: 1, b: [1, 2] }, metadata: { user: 'u1' } },
      headers: key,
    });
    expect(withMetadata.status).toBe(422);
    expect(await d.broker.backlog(echoTopic, 'workers')).toBe(1);
    expect(await d.broker.backlog('spillway.requests.sleep', 'workers')).toBe(0);
    await d.close();
  });

  it('of concurrent duplicates exactly one is queued, and all get its id', async () => {
    const d = await startDeployment({ withWorker: false });
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => predict(d.url, 'echo', 'same', { 'idempotency-key': 'burst' })),
    );
    expect(answers.every((a) => a.status === 202)).toBe(true);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(answers.filter((a) => replayed(a) === null)).toHaveLength(1);
    expect(await d.broker.backlog(echoTopic, 'workers')).toBe(1);
    await d.close();
  });

  it('replays a finished prediction as 200, and holds a replay for Prefer: wait', async () => {
    const d = await startDeployment({ models: modelRepo({ sleep: { per_batch_ms: 300 } }) });
    const done = await predict(d.url, 'echo', 'x', { 'idempotency-key': 'k-done', prefer: 'wait=10' });
    expect(done.status).toBe(200);
    const replay = await predict(d.url, 'echo', 'x', { 'idempotency-key': 'k-done' });
    expect(replay.status).toBe(200);
    expect(replayed(replay)).toBe('true');
    expect(replay.body).toEqual(done.body);

    const queued = await predict(d.url, 'sleep', 'y', { 'idempotency-key': 'k-slow' });
    expect(queued.status).toBe(202);
    const waited = await predict(d.url, 'sleep', 'y', { 'idempotency-key': 'k-slow', prefer: 'wait=10' });
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({ id: queued.body.id, status: 'succeeded' });
    await d.close();
  });

  it('holds across a gateway restart on the same data folder', async () => {
    const before = await startDeployment({ withWorker: false });
    const first = await predict(before.url, 'echo', 'durable', { 'idempotency-key': 'restart-1' });
    expect(first.status).toBe(202);
    await before.close();

    const after = await startDeployment({ withWorker: false, dataDir: before.dataDir });
    const again = await predict(after.url, 'echo', 'durable', { 'idempotency-key': 'restart-1' });
    expect(again.status).toBe(202);
    expect(replayed(again)).toBe('true');
    expect(again.body.id).toBe(first.body.id);
    const reused = await predict(after.url, 'echo', 'changed', { 'idempotency-key': 'restart-1' });
    expect((reused.body as unknown as Problem).code).toBe('SPILLWAY_IDEMPOTENCY_KEY_REUSED');
    expect(await after.broker.backlog(echoTopic, 'workers')).toBe(1);
    await after.close();
  });

  it('frees the key when the queue does not accept the request, so a retry with it is queued', async () => {
    const d = await startDeployment({ withWorker: false });
    const publish = vi.spyOn(d.broker, 'publish').mockRejectedValueOnce(new Error('disk full'));
    const failed = await predict(d.url, 'echo', 'retry me', { 'idempotency-key': 'k-retry' });
    expect(failed.status).toBe(503);
    expect(await d.broker.backlog(echoTopic, 'workers')).toBe(0);
    const retried = await predict(d.url, 'echo', 'retry me', { 'idempotency-key': 'k-retry' });
    expect(retried.status).toBe(202);
    expect(replayed(retried)).toBeNull();
    expect(await d.broker.backlog(echoTopic, 'workers')).toBe(1);
    publish.mockRestore();
    await d.close();
  });

  it('refuses a key that is empty, too long or not printable ASCII with 422', async () => {
    const d = await startDeployment({ withWorker: false });
    for (const bad of ['', 'x'.repeat(256), 'caf\u00e9', 'a\tb']) {
      const res = await predict(d.url, 'echo', 'x', { 'idempotency-key': bad });
      expect(res.status).toBe(422);
      const problem = res.body as unknown as Problem;
      expect(problem.code).toBe('SPILLWAY_INVALID_REQUEST');
      expect(problem.errors?.[0]?.pointer).toBe('/headers/idempotency-key');
    }
    expect((await predict(d.url, 'echo', 'x', { 'idempotency-key': 'x'.repeat(255) })).status).toBe(202);
    expect(await d.broker.backlog(echoTopic, 'workers')).toBe(1);
    await d.close();
  });
});

describe('request fingerprints', () => {
  it('ignore key order and spacing, and tell apart everything else', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { f: 1, e: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[3,{"e":2,"f":1}]},"b":1}');
    expect(requestFingerprint('m', { input: { a: 1, b: 2 } })).toBe(requestFingerprint('m', { input: { b: 2, a: 1 } }));
    expect(requestFingerprint('m', { input: [1, 2] })).not.toBe(requestFingerprint('m', { input: [2, 1] }));
    expect(requestFingerprint('m', { input: 1 })).not.toBe(requestFingerprint('n', { input: 1 }));
    expect(requestFingerprint('m', { input: '1' })).not.toBe(requestFingerprint('m', { input: 1 }));
  });
});
