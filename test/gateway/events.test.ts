import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { startDeployment, testWorker, type Deployment } from '../helpers/deployment.js';
import { predict, request } from '../helpers/http.js';
import { readEvents } from '../helpers/sse.js';
import { modelRepo } from '../helpers/model-repo.js';

const order = ['queued', 'running', 'succeeded'];

describe('GET /v1/predictions/{id}/events', () => {
  const models = modelRepo({ sleep: { per_batch_ms: 400 } });
  let d: Deployment;
  let other: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ models });
    other = await startDeployment({ models, dataDir: d.dataDir, withWorker: false });
  });
  afterAll(async () => {
    await other.close();
    await d.close();
  });

  it('streams the recorded statuses in order, ends with the final record, and a poll agrees', async () => {
    const submitted = await predict(d.url, 'sleep', { watch: true });
    expect(submitted.status).toBe(202);
    const { status, type, events } = await readEvents(`${d.url}/v1/predictions/${submitted.body.id}/events`);
    expect(status).toBe(200);
    expect(type).toContain('text/event-stream');
    const statuses = events.map((e) => e.event);
    // Whether running shows depends on the run outlasting running_after_ms: tested below.
    expect(statuses.at(-1)).toBe('succeeded');
    // In lifecycle order, each at most once.
    expect(statuses).toEqual(order.filter((s) => statuses.includes(s)));
    expect(events.map((e) => e.id)).toEqual(events.map((_e, i) => String(i + 1)));
    for (const e of events) expect(e.data).toMatchObject({ id: submitted.body.id, status: e.event });
    const polled = await request<PredictionRecord>(`${d.url}/v1/predictions/${submitted.body.id}`);
    expect(polled.body).toEqual(events.at(-1)?.data);
  });

  it('a final prediction: one event, then the stream ends', async () => {
    const done = await predict(d.url, 'echo', 'hello', { prefer: 'wait=10' });
    expect(done.body.status).toBe('succeeded');
    const { status, events } = await readEvents(`${d.url}/v1/predictions/${done.body.id}/events`);
    expect(status).toBe(200);
    expect(events.map((e) => e.event)).toEqual(['succeeded']);
    expect(events[0]?.data).toEqual(done.body);
  });

  it('an unknown id: 404 problem+json before any stream', async () => {
    const res = await request(`${d.url}/v1/predictions/no-such-id/events`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect((res.body as { code: string }).code).toBe('SPILLWAY_PREDICTION_NOT_FOUND');
  });

  it('a stream on another gateway sees the events of a request accepted by the first', async () => {
    const submitted = await predict(d.url, 'sleep', { elsewhere: true });
    const { events } = await readEvents(`${other.url}/v1/predictions/${submitted.body.id}/events`);
    const statuses = events.map((e) => e.event);
    expect(statuses.at(-1)).toBe('succeeded');
    expect(statuses).toEqual(order.filter((s) => statuses.includes(s)));
  });

  it('a cancel on one gateway ends a stream open on the other with the canceled record', async () => {
    const blocker = predict(d.url, 'sleep', { a: 1 });
    const submitted = await predict(d.url, 'sleep', { b: 2 });
    await blocker;
    const stream = readEvents(`${other.url}/v1/predictions/${submitted.body.id}/events`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const res = await request(`${d.url}/v1/predictions/${submitted.body.id}/cancel`, { method: 'POST' });
    const { events } = await stream;
    expect(events.at(-1)?.event).toBe(res.status === 200 ? 'canceled' : 'succeeded');
  });

  it('describes the stream in the OpenAPI document', async () => {
    const doc = await request<{ paths: Record<string, Record<string, { responses: Record<string, { content?: object }> }>> }>(
      `${d.url}/openapi.json`,
    );
    expect(Object.keys(doc.body.paths['/v1/predictions/{id}/events']?.['get']?.responses['200']?.content ?? {})).toEqual(['text/event-stream']);
    expect(doc.body.paths['/v1/predictions/{id}/cancel']?.['post']).toBeDefined();
  });
});

describe('what an event stream promises about running', () => {
  const models = modelRepo({ fixtures: ['gate'] });
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ models, withWorker: false });
  });
  afterAll(() => d.close());

  const worker = (id: string) => testWorker({ broker: d.broker, prefix: d.prefix, models, workerId: id });

  it('a request still running after worker.running_after_ms: a running event, then the final one', async () => {
    const w = worker('announcing');
    await w.start();
    try {
      // The model runs until the stream has shown running: no race with a fixed service time.
      const release = join(mkdtempSync(join(tmpdir(), 'spillway-gate-')), 'release');
      const submitted = await predict(d.url, 'gate', { release });
      const { events } = await readEvents(`${d.url}/v1/predictions/${submitted.body.id}/events`, (e) => {
        if (e.event === 'running') writeFileSync(release, '');
      });
      const statuses = events.map((e) => e.event);
      expect(statuses.slice(-2)).toEqual(['running', 'succeeded']);
      expect(statuses).toEqual(order.filter((s) => statuses.includes(s)));
    } finally {
      await w.drain();
    }
  });

  it('a request that waited in the queue and then ran briefly: no running event, and the final one still comes', async () => {
    const submitted = await predict(d.url, 'echo', 'short');
    let queued: () => void = () => undefined;
    const seenQueued = new Promise<void>((resolve) => (queued = resolve));
    const stream = readEvents(`${d.url}/v1/predictions/${submitted.body.id}/events`, (e) => {
      if (e.event === 'queued') queued();
    });
    await seenQueued;
    // echo answers before the worker's running_after_ms timer can fire, so it never announces running.
    const w = worker('late');
    await w.start();
    try {
      const { events } = await stream;
      expect(events.map((e) => e.event)).toEqual(['queued', 'succeeded']);
      expect(events[1]?.data.started_at).toBeDefined();
      expect(events[1]?.data.metrics.queue_ms).toBeGreaterThan(0);
    } finally {
      await w.drain();
    }
  });
});

describe('event streams are bounded', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ withWorker: false, maxEventStreams: 1 });
  });
  afterAll(() => d.close());

  /** Opens a stream and reads its first event; the caller ends it with the returned abort. */
  async function open(id: string): Promise<{ status: number; body: string; abort: () => void }> {
    const stop = new AbortController();
    const res = await fetch(`${d.url}/v1/predictions/${id}/events`, { signal: stop.signal });
    if (res.status !== 200) return { status: res.status, body: await res.text(), abort: () => undefined };
    const reader = res.body!.getReader();
    const first = await reader.read();
    return { status: 200, body: new TextDecoder().decode(first.value as Uint8Array | undefined), abort: () => stop.abort() };
  }

  it('past the cap: 503 SPILLWAY_TOO_MANY_STREAMS; a client that leaves frees its place', async () => {
    const queued = await predict(d.url, 'echo', 'waits forever');
    const first = await open(queued.body.id);
    expect(first.status).toBe(200);
    expect(first.body).toContain('event: queued');
    const refused = await open(queued.body.id);
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'SPILLWAY_TOO_MANY_STREAMS' });
    first.abort();
    let again = await open(queued.body.id);
    for (let i = 0; i < 100 && again.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      again = await open(queued.body.id);
    }
    expect(again.status).toBe(200);
    again.abort();
  });
});
