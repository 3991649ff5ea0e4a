import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxJsonDepth } from '../../src/gateway/json-body.js';
import { seededRandom } from '../../src/loadgen/prng.js';
import { errorCatalogue } from '../../src/protocol/errors.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { waitForFinal } from '../helpers/http.js';
import { sendOnSocket, sendRaw, type WireAnswer } from '../helpers/wire.js';
import {
  contractViolations,
  DocumentSchemas,
  parseEventStream,
  type OpenApiDocument,
  type Operation,
} from '../helpers/openapi-contract.js';
import { SchemaInputs, type Case, type JsonSchema } from '../helpers/schema-inputs.js';

/**
 * The OpenAPI document tells the truth: every operation it lists is driven with inputs drawn
 * from its own schemas, valid and invalid, and every answer must have a status the operation
 * declares, a content type declared for that status, and a body (or each event) that validates
 * against the declared schema. No generated input may get a 5xx.
 */

const seed = Number(process.env['SPILLWAY_CONTRACT_SEED'] ?? 20261201);
const bodyLimitBytes = 64 * 1024;

let d: Deployment;
let doc: OpenApiDocument;
let schemas: DocumentSchemas;
let inputs: SchemaInputs;
/** Real objects for path parameters, by parameter name. */
let real: Record<string, string[]>;
const driven = new Map<string, number>();
/** Requests per operation, by whether their input was valid, for the summary. */
const tally = new Map<string, { valid: number; invalid: number }>();
function count(key: string, valid: boolean): void {
  const t = tally.get(key) ?? { valid: 0, invalid: 0 };
  if (valid) t.valid += 1;
  else t.invalid += 1;
  tally.set(key, t);
}
let requests = 0;

beforeAll(async () => {
  d = await startDeployment({ bodyLimitBytes });
  const random = seededRandom(seed);
  const anything = (): unknown => {
    const pick = Math.floor(random() * 6);
    return [1.5, 'text', true, null, [1, 'two', { three: 3 }], { nested: { list: [random()] } }][pick];
  };
  inputs = new SchemaInputs(
    random,
    {
      // Within the gateway's 7-day horizon, and in the future: the format alone would allow 1970.
      'date-time': () => new Date(Date.now() + 3_600_000 + Math.floor(random() * 1000)).toISOString(),
      uri: () => 'https://example.com/hooks/spillway',
    },
    anything,
  );
  const res = await sendRaw(d.url, { method: 'GET', path: '/openapi.json' });
  doc = JSON.parse(res.text) as OpenApiDocument;
  schemas = new DocumentSchemas(doc);
  const finished = JSON.parse(
    (await sendRaw(d.url, { method: 'POST', path: '/v1/models/echo/predictions', headers: json({ prefer: 'wait=10' }), body: '{"input":1}' })).text,
  ) as { id: string };
  await waitForFinal(d.url, finished.id);
  real = { model: ['echo', 'iris', 'sleep'], id: [finished.id], name: ['request', 'response'] };
});
afterAll(async () => {
  console.info(`openapi contract (seed ${seed}): ${requests} requests; valid/invalid inputs per operation: ${JSON.stringify(Object.fromEntries(tally))}`);
  await d.close();
});

function json(headers: Record<string, string> = {}): Record<string, string> {
  return { 'content-type': 'application/json', ...headers };
}

/** A request to drive one operation with, and what its answer must be beyond the contract. */
interface Probe {
  readonly name: string;
  readonly path: string;
  readonly headers?: Record<string, string | string[]>;
  readonly body?: Buffer | string;
  /** ok: a 2xx; refused: a 4xx; any: anything declared that is not a 5xx. */
  readonly expect: 'ok' | 'refused' | 'any';
  readonly status?: number;
}

function operations(): [string, string, Operation][] {
  return Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => [method.toUpperCase(), path, op] as [string, string, Operation]));
}

function operation(method: string, path: string): Operation {
  const op = doc.paths[path]?.[method.toLowerCase()];
  if (op === undefined) throw new Error(`${method} ${path} is not in the document`);
  return op;
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_m, name: string) => values[name] ?? encodeURIComponent(real[name]?.[0] ?? 'x'));
}

/** A body for `model`: the generated one, with an input the model takes when it checks its input. */
function forModel(model: string, body: unknown): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body) || !('input' in body)) return body;
  if (model === 'iris') return { ...body, input: [5.1, 3.5, 1.4, 0.2] };
  if (model === 'sleep') return { ...body, input: { sleep_ms: 10 } };
  return body;
}

/** Every probe the document's description of `op` yields. */
function probes(method: string, template: string, op: Operation): Probe[] {
  const out: Probe[] = [];
  const pathParams = (op.parameters ?? []).filter((p) => p.in === 'path');
  const headerParams = (op.parameters ?? []).filter((p) => p.in === 'header');
  const bodySchema = op.requestBody?.content['application/json']?.schema;
  const takesBody = method === 'POST';
  const minimal = bodySchema === undefined ? undefined : (inputs.valid(bodySchema, false) as Record<string, unknown>);
  const bodyFor = (model: string, value: unknown) => (value === undefined ? undefined : JSON.stringify(forModel(model, value)));
  const validHeaders = bodySchema === undefined ? {} : json();
  // A POST with no body acts on a real object, which may already be past acting on (a cancel of a final prediction: 409).
  const validExpect = takesBody && bodySchema === undefined ? 'any' : 'ok';

  // Path parameters: each real object, one that does not exist, and ones past the schema's and the router's limits.
  const combos: Record<string, string>[] = [{}];
  for (const p of pathParams) {
    const values = real[p.name] ?? [inputs.valid(p.schema, false) as string];
    combos.splice(0, combos.length, ...combos.flatMap((c) => values.map((v) => ({ ...c, [p.name]: v }))));
  }
  for (const values of combos) {
    const model = values['model'] ?? 'echo';
    out.push({ name: `valid ${JSON.stringify(values)}`, path: fill(template, values), headers: validHeaders, body: bodyFor(model, minimal), expect: validExpect });
  }
  // Query parameters are not part of any operation: they are ignored.
  out.push({ name: 'an unknown query parameter', path: `${fill(template, {})}?unknown=1&x`, headers: validHeaders, body: bodyFor('echo', minimal), expect: validExpect });
  for (const p of pathParams) {
    const max = p.schema.maxLength ?? 128;
    const cases: [string, string, number][] = [
      ['unknown', `no-such-${randomUUID()}`, 404],
      [`over maxLength ${max}`, 'a'.repeat(max + 1), 422],
      ['past the router', 'a'.repeat(4000), 414],
      ['a %-escape that does not decode', '%E0%A4%A', 400],
    ];
    for (const [name, value, status] of cases) {
      out.push({ name: `path ${p.name} ${name}`, path: fill(template, { [p.name]: value }), headers: validHeaders, body: bodyFor('echo', minimal), expect: 'refused', status });
    }
  }
  const echoPath = fill(template, {});

  if (bodySchema !== undefined) {
    const full = inputs.valid(bodySchema, true);
    out.push({ name: 'body with every field', path: echoPath, headers: json(), body: bodyFor('echo', full), expect: 'any' });
    for (const c of inputs.edges(bodySchema)) out.push({ name: `body ${c.name}`, path: echoPath, headers: json(), body: JSON.stringify(c.value), expect: 'any' });
    for (const c of inputs.invalid(bodySchema)) {
      out.push({ name: `body ${c.name}`, path: echoPath, headers: json(), body: JSON.stringify(c.value), expect: 'refused', status: 422 });
    }
    // Random valid bodies, a few per model.
    for (const model of real['model'] ?? []) {
      for (let i = 0; i < 4; i++) {
        out.push({ name: `random valid body #${i} for ${model}`, path: fill(template, { model }), headers: json(), body: bodyFor(model, inputs.valid(bodySchema, i % 2 === 0)), expect: 'any' });
      }
    }
  }
  if (takesBody) {
    const raw: [string, Record<string, string>, Buffer | string, number][] = [
      ['malformed JSON', json(), '{"input": 1', 400],
      ['an empty body', json(), '', 400],
      ['a text/plain body', { 'content-type': 'text/plain' }, 'input=1', 415],
      ['invalid UTF-8', json(), Buffer.concat([Buffer.from('{"input":"caf'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]), 400],
      ['JSON nested too deep', json(), `{"input":${'['.repeat(maxJsonDepth + 5)}${']'.repeat(maxJsonDepth + 5)}}`, 422],
      ['a __proto__ key', json(), '{"input":1,"__proto__":{"x":1}}', 422],
      ['a body over the limit', json(), `{"input":"${'a'.repeat(bodyLimitBytes)}"}`, 413],
    ];
    for (const [name, headers, body, status] of raw) out.push({ name: `body: ${name}`, path: echoPath, headers, body, expect: 'refused', status });
  }

  for (const h of headerParams) {
    const good = [inputs.valid(h.schema, false) as string, ...(h.name === 'prefer' ? ['wait=5', 'respond-async', 'wait=5, respond-async', 'wait=nope'] : [])];
    for (const value of good) {
      out.push({ name: `header ${h.name}: ${value}`, path: echoPath, headers: json({ [h.name]: value }), body: bodyFor('echo', minimal), expect: 'ok' });
    }
    const bad: Case[] = inputs.invalid(h.schema).filter((c) => typeof c.value === 'string');
    if (h.schema.pattern !== undefined) bad.push({ name: 'outside its pattern', value: 'caf\u00e9' });
    for (const c of bad) {
      out.push({ name: `header ${h.name} ${c.name}`, path: echoPath, headers: json({ [h.name]: c.value as string }), body: bodyFor('echo', minimal), expect: 'refused', status: 422 });
    }
  }
  return out;
}

async function check(method: string, template: string, op: Operation, name: string, answer: WireAnswer): Promise<string[]> {
  requests += 1;
  const key = `${method} ${template}`;
  driven.set(key, (driven.get(key) ?? 0) + 1);
  const problems = contractViolations(schemas, op, answer);
  if (answer.status >= 500) problems.push(`a ${answer.status}: ${answer.text.slice(0, 300)}`);
  return problems.map((p) => `${key} [${name}]: ${p}`);
}

async function drive(method: string, template: string, op: Operation, probe: Probe): Promise<string[]> {
  const answer = await sendRaw(d.url, { method, path: probe.path, ...(probe.headers === undefined ? {} : { headers: probe.headers }), ...(probe.body === undefined ? {} : { body: probe.body }) });
  count(`${method} ${template}`, probe.expect !== 'refused');
  const problems = await check(method, template, op, probe.name, answer);
  const ok = answer.status >= 200 && answer.status < 300;
  if (probe.expect === 'ok' && !ok) problems.push(`${method} ${template} [${probe.name}]: expected a 2xx, got ${answer.status} ${answer.text.slice(0, 300)}`);
  if (probe.expect === 'refused' && (answer.status < 400 || answer.status >= 500)) problems.push(`${method} ${template} [${probe.name}]: expected a 4xx, got ${answer.status}`);
  if (probe.status !== undefined && answer.status !== probe.status) problems.push(`${method} ${template} [${probe.name}]: expected ${probe.status}, got ${answer.status} ${answer.text.slice(0, 300)}`);
  return problems;
}

describe('the OpenAPI document', () => {
  it('declares each status once, problems as application/problem+json, and no 4XX/5XX ranges', () => {
    for (const [method, path, op] of operations()) {
      for (const [status, response] of Object.entries(op.responses)) {
        expect(status, `${method} ${path}`).toMatch(/^[1-5]\d\d$/);
        const types = Object.keys(response.content ?? {});
        if (Number(status) < 400) continue;
        expect(types, `${method} ${path} ${status}`).toEqual(['application/problem+json']);
        // Each problem status names its codes, and each is a code of that status in the catalogue.
        const narrowed = JSON.stringify(response.content?.['application/problem+json']?.schema);
        const codes = [...narrowed.matchAll(/"(SPILLWAY_[A-Z_]+)"/g)].map((m) => m[1] as keyof typeof errorCatalogue);
        expect(codes.length, `${method} ${path} ${status}`).toBeGreaterThan(0);
        for (const code of codes) expect(errorCatalogue[code].status, `${method} ${path} ${status} ${code}`).toBe(Number(status));
      }
      for (const status of ['400', '408', '431', '500']) expect(Object.keys(op.responses), `${method} ${path}`).toContain(status);
    }
  });

  it("makes Problem's code the catalogue's codes, exactly", () => {
    const problem = doc.components.schemas['Problem'] as JsonSchema & { properties: Record<string, JsonSchema> };
    expect([...(problem.properties['code']?.enum ?? [])].sort()).toEqual(Object.keys(errorCatalogue).sort());
  });

  it('keeps the /docs and /dashboard page routes out of the document', () => {
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/docs') || p.startsWith('/dashboard'))).toEqual([]);
  });
});

describe('every operation answers as the document says', () => {
  // Listed here so each gets its own test; the last test checks this list is the document's.
  const listed = [
    'POST /v1/models/{model}/predictions',
    'GET /v1/predictions/{id}',
    'POST /v1/predictions/{id}/cancel',
    'GET /v1/predictions/{id}/events',
    'GET /v1/models',
    'GET /v1/models/{model}',
    'GET /v1/models/{model}/scaling',
    'GET /v1/dashboard',
    'GET /healthz',
    'GET /readyz',
    'GET /metrics',
    'GET /openapi.json',
    'GET /v1/schemas',
    'GET /v1/schemas/{name}',
  ];

  it.each(listed)('%s, with inputs generated from its schemas', async (key) => {
    const [method = '', template = ''] = key.split(' ');
    const op = doc.paths[template]?.[method.toLowerCase()];
    expect(op, `${key} is in the document`).toBeDefined();
    if (op === undefined) return;
    const problems: string[] = [];
    for (const probe of probes(method, template, op)) problems.push(...(await drive(method, template, op, probe)));
    // Refused before any route: huge headers, no Host.
    const path = fill(template, {});
    count(key, false);
    count(key, false);
    problems.push(...(await check(method, template, op, 'headers too large', await sendOnSocket(d.url, `${method} ${path} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`))));
    problems.push(...(await check(method, template, op, 'no Host', await sendOnSocket(d.url, `${method} ${path} HTTP/1.1\r\n\r\n`))));
    expect(problems).toEqual([]);
  });

  it('POST /v1/models/{model}/predictions: a replay under one Idempotency-Key, and the key reused with another body', async () => {
    const op = operation('POST', '/v1/models/{model}/predictions');
    const key = `contract-${randomUUID()}`;
    const send = (body: string) => sendRaw(d.url, { method: 'POST', path: '/v1/models/echo/predictions', headers: json({ 'idempotency-key': key, prefer: 'wait=5' }), body });
    const first = await send('{"input":"once"}');
    const again = await send('{"input":"once"}');
    const other = await send('{"input":"twice"}');
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(other.status).toBe(422);
    const problems = [];
    for (const [name, answer] of [['first', first], ['replay', again], ['reused', other]] as const) problems.push(...(await check('POST', '/v1/models/{model}/predictions', op, name, answer)));
    expect(problems).toEqual([]);
  });

  it('GET /v1/predictions/{id}/events: a stream of several events, each valid', async () => {
    const op = operation('GET', '/v1/predictions/{id}/events');
    const submitted = await sendRaw(d.url, { method: 'POST', path: '/v1/models/sleep/predictions', headers: json(), body: '{"input":{"sleep_ms":300}}' });
    const { id } = JSON.parse(submitted.text) as { id: string };
    const stream = await sendRaw(d.url, { method: 'GET', path: `/v1/predictions/${id}/events` });
    expect(parseEventStream(stream.text).map((e) => e['event']).at(-1)).toBe('succeeded');
    expect(await check('GET', '/v1/predictions/{id}/events', op, 'a running prediction', stream)).toEqual([]);
  });

  it('POST /v1/predictions/{id}/cancel: canceled, then 409 once final', async () => {
    const op = operation('POST', '/v1/predictions/{id}/cancel');
    const submitted = await sendRaw(d.url, { method: 'POST', path: '/v1/models/sleep/predictions', headers: json(), body: '{"input":{"sleep_ms":60000}}' });
    const { id } = JSON.parse(submitted.text) as { id: string };
    const first = await sendRaw(d.url, { method: 'POST', path: `/v1/predictions/${id}/cancel` });
    const second = await sendRaw(d.url, { method: 'POST', path: `/v1/predictions/${id}/cancel` });
    expect([first.status, second.status]).toEqual([200, 409]);
    const problems = [...(await check('POST', '/v1/predictions/{id}/cancel', op, 'cancel', first)), ...(await check('POST', '/v1/predictions/{id}/cancel', op, 'cancel again', second))];
    expect(problems).toEqual([]);
  });

  it('serialises a problem with every field, errors included, through the problem+json schema', async () => {
    const answer = await sendRaw(d.url, { method: 'POST', path: '/v1/models/echo/predictions', headers: json(), body: '{"inputs":1}' });
    expect(answer.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(JSON.parse(answer.text)).toEqual({
      type: 'urn:spillway:problem:invalid-request',
      title: errorCatalogue.SPILLWAY_INVALID_REQUEST.title,
      status: 422,
      detail: expect.stringContaining('input') as string,
      instance: '/v1/models/echo/predictions',
      code: 'SPILLWAY_INVALID_REQUEST',
      retryable: false,
      errors: [
        { pointer: '', detail: "must have required property 'input'" },
        { pointer: '', detail: 'unknown property "inputs"' },
      ],
    });
  });

  it('drove every operation the document lists', () => {
    expect(operations().map(([m, p]) => `${m} ${p}`).sort()).toEqual([...listed].sort());
    for (const key of listed) expect(driven.get(key) ?? 0, key).toBeGreaterThanOrEqual(4);
  });
});
