import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxJsonDepth } from '../../src/gateway/json-body.js';
import type { Problem } from '../../src/http/problem.js';
import { maxDeadlineMs } from '../../src/protocol/envelope.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { request } from '../helpers/http.js';
import { sendOnSocket, sendRaw, type WireAnswer } from '../helpers/wire.js';

/** Inputs a careless or hostile client sends: each gets a clear 4xx problem, and nothing is queued. */

let d: Deployment;
beforeAll(async () => {
  d = await startDeployment({ withWorker: false });
});
afterAll(async () => d.close());

const backlog = () => d.broker.backlog('spillway.requests.echo', 'workers');

interface RawAnswer {
  readonly status: number;
  readonly type: string;
  readonly problem: Problem;
}

function asProblem(answer: WireAnswer): RawAnswer {
  const type = String(answer.headers['content-type'] ?? '');
  if (!type.includes('json')) throw new Error(`${answer.status} with a body that is not JSON: ${JSON.stringify(answer.text)}`);
  return { status: answer.status, type, problem: JSON.parse(answer.text) as Problem };
}

/** One request with the bytes and headers exactly as given (fetch would fix some of them). */
const raw = async (o: { method?: string; path: string; headers?: Record<string, string | string[]>; body?: Buffer | string }) =>
  asProblem(await sendRaw(d.url, { method: o.method ?? 'POST', path: o.path, headers: o.headers ?? { 'content-type': 'application/json' }, ...(o.body === undefined ? {} : { body: o.body }) }));

/** Bytes straight onto a socket, for requests Node's own client refuses to send. */
const onSocket = async (bytes: string) => asProblem(await sendOnSocket(d.url, bytes));

function expectProblem(res: { status: number; type: string; problem: Problem }, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.type).toContain('application/problem+json');
  expect(res.problem).toMatchObject({ status, code, retryable: expect.any(Boolean), title: expect.any(String), detail: expect.any(String) });
}

const submit = (body: string | Buffer, headers: Record<string, string | string[]> = { 'content-type': 'application/json' }) =>
  raw({ path: '/v1/models/echo/predictions', body, headers });

describe('deadlines', () => {
  it.each([8.7e15, 2.6e14, maxDeadlineMs + 1])('timeout_ms %d, past the 7-day horizon: 422 naming the limit', async (ms) => {
    const res = await submit(JSON.stringify({ input: 1, timeout_ms: ms }));
    expectProblem(res, 422, 'SPILLWAY_INVALID_REQUEST');
    expect(res.problem.errors).toContainEqual({ pointer: '/timeout_ms', detail: `must be <= ${maxDeadlineMs}` });
  });

  it('a deadline past the horizon: 422 naming the limit', async () => {
    const far = new Date(Date.now() + maxDeadlineMs + 3_600_000).toISOString();
    const res = await submit(JSON.stringify({ input: 1, deadline: far }));
    expectProblem(res, 422, 'SPILLWAY_INVALID_DEADLINE');
    expect(res.problem.detail).toContain(`${maxDeadlineMs} ms (7 days)`);
  });

  it('the longest allowed timeout_ms gives a valid RFC 3339 deadline', async () => {
    const res = await request<{ deadline: string }>(`${d.url}/v1/models/echo/predictions`, { body: { input: 1, timeout_ms: maxDeadlineMs } });
    expect(res.status).toBe(202);
    expect(res.body.deadline).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Date.parse(res.body.deadline) - Date.now()).toBeLessThanOrEqual(maxDeadlineMs);
  });

  it.each(['2027-02-30T00:00:00Z', '2027-02-29T00:00:00Z', '2027-04-31T12:00:00Z', '2027-01-01T24:00:00Z', '2027-01-01T12:60:00Z', '2027-13-01T00:00:00Z'])(
    'an impossible date %s: 422, not a silent roll-over',
    async (deadline) => {
      const res = await submit(JSON.stringify({ input: 1, deadline }));
      expectProblem(res, 422, 'SPILLWAY_INVALID_DEADLINE');
      expect(res.problem.errors?.[0]?.pointer).toBe('/deadline');
    },
  );
});

describe('JSON the gateway refuses before anything is queued', () => {
  it.each([100_000, 3_000, maxJsonDepth])('input nested %d levels deep: 422 SPILLWAY_JSON_TOO_DEEP', async (depth) => {
    const before = await backlog();
    const res = await submit(`{"input":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    expectProblem(res, 422, 'SPILLWAY_JSON_TOO_DEEP');
    expect(res.problem.retryable).toBe(false);
    expect(res.problem.detail).toContain(String(maxJsonDepth));
    expect(await backlog()).toBe(before);
  });

  it(`input nested just within the limit (${maxJsonDepth} levels with the body) is accepted`, async () => {
    const depth = maxJsonDepth - 1;
    const res = await submit(`{"input":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    expect(res.status).toBe(202);
  });

  it.each([
    ['__proto__ in metadata', '{"input":1,"metadata":{"__proto__":{"admin":true}}}', '/metadata/__proto__'],
    ['__proto__ in the input', '{"input":[{"a":{"__proto__":null}}]}', '/input/0/a/__proto__'],
    ['constructor.prototype', '{"input":{"constructor":{"prototype":{"x":1}}}}', '/input/constructor'],
  ])('%s: 422 SPILLWAY_FORBIDDEN_JSON_KEY, saying where', async (_name, body, pointer) => {
    const res = await submit(body);
    expectProblem(res, 422, 'SPILLWAY_FORBIDDEN_JSON_KEY');
    expect(res.problem.errors).toContainEqual({ pointer, detail: 'rename this key' });
  });

  it('a plain "constructor" key is fine', async () => {
    const res = await submit('{"input":{"constructor":"Ada"}}');
    expect(res.status).toBe(202);
  });

  it('invalid UTF-8 inside a string: 400, not a silent U+FFFD', async () => {
    const body = Buffer.concat([Buffer.from('{"input":"caf'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    const res = await submit(body);
    expectProblem(res, 400, 'SPILLWAY_MALFORMED_JSON');
    expect(res.problem.detail).toContain('UTF-8');
  });

  it.each(['1e400', '-1e400', '[1, 2e308]', '{"x": {"y": [0, 1e999]}}'])('a number past a double (%s) on a handler model: 422', async (input) => {
    const res = await submit(`{"input":${input}}`);
    expectProblem(res, 422, 'SPILLWAY_INVALID_REQUEST');
    expect(res.problem.errors?.[0]?.detail).toContain('finite');
  });

  it('an empty JSON body: 400', async () => {
    expectProblem(await submit(''), 400, 'SPILLWAY_MALFORMED_JSON');
  });

  it('nothing refused above was queued', async () => {
    const accepted = 2; // the longest timeout, and the body just within the depth limit
    const plain = 1; // the "constructor" name
    expect(await backlog()).toBe(accepted + plain);
  });
});

describe('errors raised by the HTTP layer are problems too', () => {
  it('a path parameter of 101–128 characters is valid, as the OpenAPI document says', async () => {
    const res = await raw({ method: 'GET', path: `/v1/predictions/${'a'.repeat(128)}` });
    expectProblem(res, 404, 'SPILLWAY_PREDICTION_NOT_FOUND');
  });

  it('a path parameter over 128 characters: 422 from the schema', async () => {
    const res = await raw({ method: 'GET', path: `/v1/predictions/${'a'.repeat(129)}` });
    expectProblem(res, 422, 'SPILLWAY_INVALID_REQUEST');
    expect(res.problem.errors?.[0]?.pointer).toBe('/params/id');
  });

  it('a path parameter longer than the router reads: 414', async () => {
    expectProblem(await raw({ method: 'GET', path: `/v1/predictions/${'a'.repeat(5000)}` }), 414, 'SPILLWAY_URI_TOO_LONG');
  });

  it('a URL that does not decode: 400', async () => {
    expectProblem(await raw({ method: 'GET', path: '/v1/predictions/%E0%A4%A' }), 400, 'SPILLWAY_MALFORMED_REQUEST');
  });

  it('headers over the size limit: 431', async () => {
    const res = await onSocket(`GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expectProblem(res, 431, 'SPILLWAY_HEADERS_TOO_LARGE');
  });

  it('an HTTP/1.1 request without Host: 400', async () => {
    expectProblem(await onSocket('GET /v1/models HTTP/1.1\r\n\r\n'), 400, 'SPILLWAY_MALFORMED_REQUEST');
  });

  it('a request that is not HTTP: 400', async () => {
    expectProblem(await onSocket('GARBAGE\r\n\r\n'), 400, 'SPILLWAY_MALFORMED_REQUEST');
  });

  it('a QUERY without a body: a problem with a SPILLWAY_ code', async () => {
    const res = await raw({ method: 'QUERY', path: '/v1/models', headers: {} });
    expect(res.type).toContain('application/problem+json');
    expect(res.problem.code).toMatch(/^SPILLWAY_/);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });
});

describe('Idempotency-Key', () => {
  it('two Idempotency-Key headers are refused, not merged into one key', async () => {
    const before = await backlog();
    const res = await submit('{"input":1}', { 'content-type': 'application/json', 'idempotency-key': ['a1', 'a2'] });
    expectProblem(res, 422, 'SPILLWAY_INVALID_REQUEST');
    expect(res.problem.errors).toContainEqual({ pointer: '/headers/idempotency-key', detail: 'sent more than once' });
    expect(await backlog()).toBe(before);
  });
});
