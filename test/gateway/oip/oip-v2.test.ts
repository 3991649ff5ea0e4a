import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEgressPolicy } from '../../../src/callbacks/egress-guard.js';
import { generateSecret, parseSigningSecrets } from '../../../src/callbacks/signing.js';
import type { PredictionRecord } from '../../../src/protocol/prediction.js';
import { addKey } from '../../helpers/api-keys.js';
import { startDeployment, type Deployment } from '../../helpers/deployment.js';
import { request, waitForFinal, type Answer } from '../../helpers/http.js';
import { modelRepo } from '../../helpers/model-repo.js';
import { inBrokerLegSuite, repoRoot, samples } from '../../helpers/paths.js';
import { until } from '../../helpers/until.js';

interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
}
interface V2Body {
  error?: string;
  code?: string;
  model_name?: string;
  model_version?: string;
  id?: string;
  parameters?: Record<string, unknown>;
  outputs?: Tensor[];
  [key: string]: unknown;
}

const version = (JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')) as { version: string }).version;
const iris = samples('iris');
const digits = samples('digits');
const fp32 = (name: string, shape: number[], data: unknown): Record<string, unknown> => ({ name, datatype: 'FP32', shape, data });
const irisInput = (data: unknown = iris[0]!.input, extra: Record<string, unknown> = {}) => ({ inputs: [fp32('float_input', [1, 4], data)], ...extra });
const bytes = (text: string) => ({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], data: [text] }] });

/** One tensor of every dtype tensor-echo declares, all valid: the base each bad case spoils one value of. */
const everyDatatype: readonly Tensor[] = [
  { name: 'bool', datatype: 'BOOL', shape: [1, 2], data: [true, false] },
  { name: 'int8', datatype: 'INT8', shape: [1, 2], data: [-128, 127] },
  { name: 'int16', datatype: 'INT16', shape: [1, 2], data: [-32768, 32767] },
  { name: 'int32', datatype: 'INT32', shape: [1, 2], data: [-2147483648, 2147483647] },
  { name: 'int64', datatype: 'INT64', shape: [1, 2], data: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER] },
  { name: 'uint8', datatype: 'UINT8', shape: [1, 2], data: [0, 255] },
  { name: 'uint16', datatype: 'UINT16', shape: [1, 2], data: [0, 65535] },
  { name: 'uint32', datatype: 'UINT32', shape: [1, 2], data: [0, 4294967295] },
  { name: 'float32', datatype: 'FP32', shape: [1, 2], data: [1.5, -3.4e38] },
  { name: 'float64', datatype: 'FP64', shape: [1, 2], data: [1e308, -0.1] },
];
const withTensor = (index: number, change: Partial<Tensor>) => ({
  inputs: everyDatatype.map((t, i) => (i === index ? { ...t, ...change } : t)),
});

/** Serves demo models and tensor-echo with a worker. */
let d: Deployment;
/** No worker: what is queued stays countable, and a held wait runs out. */
let idle: Deployment;
const received: unknown[] = [];
let receiver: ReturnType<typeof createServer>;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const callbacks = {
    policy: parseEgressPolicy({ allow: ['127.0.0.1'] }),
    secrets: parseSigningSecrets({ secrets: [generateSecret()] }),
    tenantSecrets: new Map(),
    maxAttempts: 3,
    backoffBaseMs: 20,
    backoffCapMs: 50,
    connectTimeoutMs: 1000,
    responseTimeoutMs: 10_000,
  };
  d = await startDeployment({ models: modelRepo({ fixtures: ['tensor-echo', 'shout'] }), callbacks });
  idle = await startDeployment({ withWorker: false, maxWaitS: 1, models: modelRepo({ fixtures: ['tensor-echo'], sleep: { max_queue_depth: 1 } }) });
});
afterAll(async () => {
  await Promise.all([d?.close(), idle?.close()]);
  await new Promise((resolve) => receiver?.close(resolve));
});

const v2 = (base: string, path: string, init: { body?: unknown; headers?: Record<string, string>; raw?: string } = {}) =>
  request<V2Body>(`${base}/v2${path}`, init);
const infer = (model: string, body: unknown, base = d.url, headers: Record<string, string> = {}) => v2(base, `/models/${model}/infer`, { body, headers });

/** A protocol error body; `code` undefined: any Spillway code. */
function expectV2Error(res: Answer<V2Body>, status: number, code: string | undefined, text?: string | RegExp): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/json');
  expect(res.body.error).toEqual(expect.any(String));
  expect(res.body.code).toMatch(code ?? /^SPILLWAY_/);
  if (text !== undefined) expect(res.body.error).toMatch(text);
}

const queuedOn = (model: string) => idle.broker.backlog(`${idle.prefix}.requests.${model}`, 'workers');

describe.skipIf(inBrokerLegSuite)('Open Inference Protocol v2: health and metadata', () => {
  it('GET /v2/health/live and /v2/health/ready answer 200', async () => {
    expect(await v2(d.url, '/health/live')).toMatchObject({ status: 200, body: { live: true } });
    expect(await v2(d.url, '/health/ready')).toMatchObject({ status: 200, body: { ready: true } });
  });

  it('GET /v2 names the server, its version and its extensions (none)', async () => {
    const res = await v2(d.url, '');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ name: 'spillway', version, extensions: [] });
  });

  it('model metadata lists the declared inputs and outputs, with and without the version', async () => {
    const expected = {
      name: 'iris',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'float_input', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [
        { name: 'label', datatype: 'INT64', shape: [-1] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
      ],
    };
    expect(await v2(d.url, '/models/iris')).toMatchObject({ status: 200, body: expected });
    expect(await v2(d.url, '/models/iris/versions/1')).toMatchObject({ status: 200, body: expected });
  });

  it('a handler without declared inputs shows one BYTES tensor in, one out', async () => {
    const res = await v2(d.url, '/models/echo');
    expect(res.body).toEqual({
      name: 'echo',
      versions: ['1'],
      platform: 'spillway_handler',
      inputs: [{ name: 'input', datatype: 'BYTES', shape: [1] }],
      outputs: [{ name: 'output', datatype: 'BYTES', shape: [1] }],
    });
  });

  it('model ready answers 200 for a served model, with and without the version', async () => {
    expect(await v2(d.url, '/models/iris/ready')).toMatchObject({ status: 200, body: { name: 'iris', ready: true } });
    expect(await v2(d.url, '/models/iris/versions/1/ready')).toMatchObject({ status: 200, body: { name: 'iris', ready: true } });
  });

  it('an unknown model or version is 404 on every model route', async () => {
    for (const path of ['/models/nope', '/models/nope/ready', '/models/iris/versions/2', '/models/iris/versions/2/ready']) {
      expectV2Error(await v2(d.url, path), 404, 'SPILLWAY_MODEL_NOT_FOUND');
    }
    expectV2Error(await infer('nope', irisInput()), 404, 'SPILLWAY_MODEL_NOT_FOUND', /nope/);
    expectV2Error(await v2(d.url, '/models/iris/versions/2/infer', { body: irisInput() }), 404, 'SPILLWAY_MODEL_NOT_FOUND', /version "2"/);
  });

  it('an unknown /v2 path is 404 in the protocol form', async () => {
    expectV2Error(await v2(d.url, '/repository/index', { body: {} }), 404, 'SPILLWAY_ROUTE_NOT_FOUND');
  });
});

describe.skipIf(inBrokerLegSuite)('Open Inference Protocol v2: infer', () => {
  it('iris answers the right class for known samples, holding the connection', async () => {
    for (const sample of iris.slice(0, 3)) {
      const res = await infer('iris', { id: `iris-${sample.label}`, inputs: [fp32('float_input', [1, 4], sample.input)] });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toMatchObject({ model_name: 'iris', model_version: '1', id: `iris-${sample.label}` });
      expect(res.body.parameters?.['spillway_prediction_id']).toEqual(expect.any(String));
      const label = res.body.outputs?.find((t) => t.name === 'label');
      expect(label).toEqual({ name: 'label', datatype: 'INT64', shape: [1], data: [sample.label] });
      expect(res.body.outputs?.find((t) => t.name === 'probabilities')).toMatchObject({ datatype: 'FP32', shape: [1, 3] });
    }
  });

  it('flat and nested data are the same tensor', async () => {
    const sample = digits[0]!;
    const rows = Array.from({ length: 8 }, (_, r) => sample.input.slice(r * 8, r * 8 + 8));
    const flat = await infer('digits', { inputs: [fp32('float_input', [1, 64], sample.input)] });
    const nested = await infer('digits', { inputs: [fp32('float_input', [1, 64], [sample.input])] });
    expect(flat.status).toBe(200);
    expect(nested.body.outputs).toEqual(flat.body.outputs);
    expect(flat.body.outputs?.[0]?.data).toEqual([sample.label]);
    // Nested in any other way than the shape says is refused.
    expectV2Error(await infer('digits', { inputs: [fp32('float_input', [1, 64], [rows])] }), 400, 'SPILLWAY_INVALID_INPUT', /\/inputs\/0\/data/);
  });

  it('requested outputs: only those are returned; an unknown one is 400', async () => {
    const res = await infer('iris', irisInput(undefined, { outputs: [{ name: 'probabilities' }] }));
    expect(res.body.outputs?.map((t) => t.name)).toEqual(['probabilities']);
    expectV2Error(await infer('iris', irisInput(undefined, { outputs: [{ name: 'logits' }] })), 400, 'SPILLWAY_INVALID_INPUT', /unknown output "logits"/);
  });

  it('a body without Content-Type is read as JSON, as tritonclient sends it', async () => {
    const res = await fetch(`${d.url}/v2/models/iris/infer`, { method: 'POST', body: new TextEncoder().encode(JSON.stringify(irisInput())) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as V2Body).outputs?.[0]?.data).toEqual([iris[0]!.label]);
  });

  it('a JSON handler takes and gives one BYTES tensor holding JSON', async () => {
    const res = await infer('echo', bytes('{"text": "hello", "n": [1, 2]}'));
    expect(res.status).toBe(200);
    expect(res.body.outputs).toEqual([{ name: 'output', datatype: 'BYTES', shape: [1], data: ['{"text":"hello","n":[1,2]}'] }]);
  });

  it('every datatype a model can declare reaches it as sent and comes back as its output', async () => {
    const res = await infer('tensor-echo', { inputs: everyDatatype });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.outputs).toEqual(everyDatatype.map((t) => ({ ...t, name: `${t.name}_out` })));
  });

  it('FP16 is accepted by a float32 input, each value rounded to the nearest half-precision value', async () => {
    const res = await infer('tensor-echo', withTensor(8, { datatype: 'FP16', data: [0.1, 2051] }));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.outputs?.find((t) => t.name === 'float32_out')).toEqual({ name: 'float32_out', datatype: 'FP32', shape: [1, 2], data: [0.0999755859375, 2052] });
    const irisHalf = await infer('iris', { inputs: [{ ...fp32('float_input', [1, 4], iris[0]!.input), datatype: 'FP16' }] });
    expect(irisHalf.body.outputs?.[0]?.data).toEqual([iris[0]!.label]);
  });
});

describe.skipIf(inBrokerLegSuite)('Open Inference Protocol v2: bad input is 400 and never queued', () => {
  /** Sends to the worker-less deployment and checks nothing reached the model's queue. */
  async function refused(model: string, body: unknown, text: string | RegExp, headers: Record<string, string> = {}): Promise<void> {
    const before = await queuedOn(model);
    expectV2Error(await infer(model, body, idle.url, headers), 400, undefined, text);
    expect(await queuedOn(model)).toBe(before);
  }

  it.each([
    [0, 'BOOL', 1, 'expected true or false'],
    [1, 'INT8', 128, 'out of int8 range'],
    [2, 'INT16', -32769, 'out of int16 range'],
    [3, 'INT32', 1.5, 'expected an integer'],
    [4, 'INT64', 2 ** 53, 'out of int64 range'],
    [5, 'UINT8', -1, 'out of uint8 range'],
    [6, 'UINT16', 65536, 'out of uint16 range'],
    [7, 'UINT32', 4294967296, 'out of uint32 range'],
    [8, 'FP32', 1e39, 'out of float32 range'],
    [9, 'FP64', '0.5', 'expected a number'],
  ])('%i %s with %s: 400 naming the value', async (index, _datatype, bad, text) => {
    const tensor = everyDatatype[index]!;
    await refused('tensor-echo', withTensor(index, { data: [tensor.data[0], bad] }), `/inputs/${index}/data/1 ${text}`);
  });

  it('FP16, UINT64 and BYTES values are checked too', async () => {
    await refused('iris', { inputs: [{ ...fp32('float_input', [1, 4], [1, 2, 3, 70000]), datatype: 'FP16' }] }, 'out of FP16 range');
    await refused('iris', { inputs: [{ name: 'float_input', datatype: 'UINT64', shape: [1, 4], data: [1, 2, 3, -4] }] }, 'out of UINT64 range');
    await refused('echo', { inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], data: [42] }] }, 'expected a string (BYTES)');
    await refused('echo', bytes('{"unclosed": '), 'not a usable JSON text');
  });

  it('a datatype the model input does not take is 400', async () => {
    await refused('iris', { inputs: [{ name: 'float_input', datatype: 'INT32', shape: [1, 4], data: [1, 2, 3, 4] }] }, 'input float_input takes FP32 (or FP16), got INT32');
    await refused('iris', { inputs: [{ name: 'float_input', datatype: 'UINT64', shape: [1, 4], data: [1, 2, 3, 4] }] }, 'got UINT64');
    await refused('tensor-echo', withTensor(1, { datatype: 'INT16' }), 'input int8 takes INT8, got INT16');
    await refused('iris', { inputs: [{ ...fp32('float_input', [1, 4], [1, 2, 3, 4]), datatype: 'FP8' }] }, 'expected one of BOOL');
    await refused('echo', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1], data: [1] }] }, 'input takes BYTES');
  });

  it('a shape the model does not take, or data that does not fill the shape, is 400', async () => {
    await refused('iris', { inputs: [fp32('float_input', [1, 3], [1, 2, 3])] }, 'takes shape [-1, 4] (-1: any size), got [1, 3]');
    await refused('iris', { inputs: [fp32('float_input', [4], [1, 2, 3, 4])] }, 'got [4]');
    await refused('iris', { inputs: [fp32('float_input', [1, 4], [1, 2, 3])] }, 'expected 4 values for shape [1, 4]');
    await refused('iris', { inputs: [fp32('float_input', [2, 4], [[1, 2, 3, 4], [5, 6, 7]])] }, 'expected 8 values for shape [2, 4]');
    await refused('iris', { inputs: [fp32('float_input', [1, -4], [1, 2, 3, 4])] }, 'expected an array of non-negative integers');
    await refused('echo', { inputs: [{ name: 'input', datatype: 'BYTES', shape: [2], data: ['1', '2'] }] }, 'input takes shape [1]');
  });

  it('unknown, missing or repeated inputs and unknown fields are 400', async () => {
    await refused('iris', { inputs: [fp32('petals', [1, 4], [1, 2, 3, 4])] }, 'unknown input; expected float_input');
    await refused('tensor-echo', { inputs: everyDatatype.slice(1) }, 'missing input bool');
    await refused('iris', { inputs: [fp32('float_input', [1, 4], [1, 2, 3, 4]), fp32('float_input', [1, 4], [1, 2, 3, 4])] }, 'given twice');
    await refused('iris', { ...irisInput(), input: [1, 2, 3, 4] }, '/input unknown field');
    await refused('iris', { inputs: [] }, 'expected an array of input tensors');
    await refused('iris', [1, 2, 3, 4], 'expected an inference request object');
    await refused('iris', irisInput(undefined, { parameters: { spillway_async: 'yes' } }), 'expected true or false');
    await refused('iris', irisInput(undefined, { parameters: { priority: -1 } }), 'expected an integer ≥ 0');
  });

  it('binary tensor data is refused with a clear 400', async () => {
    await refused('iris', irisInput(), /binary tensor data extension is not supported.*binary_data=False/, { 'inference-header-content-length': '80' });
    await refused('iris', { inputs: [{ ...fp32('float_input', [1, 4], []), parameters: { binary_data_size: 16 } }] }, 'binary tensor data is not supported');
  });

  it('odd bodies get a 4xx in the protocol form, never a 5xx, and queue nothing', async () => {
    const deep = JSON.parse('['.repeat(100) + ']'.repeat(100)) as unknown;
    const bodies: unknown[] = [
      null, 'text', 7, {}, { inputs: null }, { inputs: [null] }, { inputs: [{ name: 1 }] }, { inputs: deep },
      { inputs: [fp32('float_input', [2 ** 26, 2 ** 26], [])] }, { inputs: [fp32('float_input', [1e300, 4], [])] },
      { ...irisInput(), outputs: [null] }, { ...irisInput(), outputs: 'label' }, { ...irisInput(), id: 5 },
      { ...irisInput(), parameters: { callback_url: 'not a url', spillway_async: true } }, { ...irisInput(), parameters: [] },
    ];
    const before = await queuedOn('iris');
    for (const body of bodies) {
      const res = await infer('iris', body, idle.url);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBeGreaterThanOrEqual(400);
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
      expect(res.body.error).toEqual(expect.any(String));
    }
    expect(await queuedOn('iris')).toBe(before);
  });

  it('malformed JSON is 400 in the protocol form', async () => {
    const res = await v2(idle.url, '/models/iris/infer', { raw: '{"inputs": [' });
    expectV2Error(res, 400, 'SPILLWAY_MALFORMED_JSON');
  });
});

describe.skipIf(inBrokerLegSuite)('Open Inference Protocol v2: waiting and the async extensions', () => {
  it('spillway_async answers 202 at once with the prediction id and Location; polling gives the outputs', async () => {
    const res = await infer('iris', irisInput(undefined, { parameters: { spillway_async: true } }));
    expect(res.status).toBe(202);
    const id = res.body.parameters?.['spillway_prediction_id'] as string;
    expect(res.headers.get('location')).toBe(`/v1/predictions/${id}`);
    expect(res.body).toMatchObject({ model_name: 'iris', id, parameters: { spillway_status: 'queued', spillway_location: `/v1/predictions/${id}` } });
    expect(res.body.error).toBeUndefined();
    const done = await waitForFinal(d.url, id);
    expect(done.output).toMatchObject({ outputs: [{ name: 'label', data: [iris[0]!.label] }, { name: 'probabilities' }] });
  });

  it('a held wait that runs out answers 202 with an error saying where to poll; the request stays queued', async () => {
    const before = await queuedOn('digits');
    const res = await infer('digits', { inputs: [fp32('float_input', [1, 64], digits[0]!.input)] }, idle.url);
    expect(res.status).toBe(202);
    const id = res.body.parameters?.['spillway_prediction_id'] as string;
    expect(res.body.error).toContain(`poll /v1/predictions/${id}`);
    expect(res.headers.get('location')).toBe(`/v1/predictions/${id}`);
    expect(await queuedOn('digits')).toBe(before + 1);
  });

  it('parameters.priority is read as Triton reads it (1 the highest, 0 the default) and kept on the record', async () => {
    for (const [given, priority] of [[1, 'high'], [0, 'normal'], [2, 'normal'], [7, 'low'], ['low', 'low']] as const) {
      const res = await infer('iris', irisInput(undefined, { parameters: { spillway_async: true, priority: given } }), idle.url);
      expect(res.status).toBe(202);
      const id = res.body.parameters?.['spillway_prediction_id'] as string;
      expect((await request<PredictionRecord>(`${idle.url}/v1/predictions/${id}`)).body.priority).toBe(priority);
    }
  });

  it('callback_url delivers the finished prediction as Spillway callbacks do', async () => {
    const res = await infer('iris', irisInput(undefined, { parameters: { spillway_async: true, callback_url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook` } }));
    expect(res.status).toBe(202);
    const id = res.body.parameters?.['spillway_prediction_id'] as string;
    const delivered = await until('the callback', () => received.find((r) => (r as { data?: PredictionRecord }).data?.id === id));
    expect(delivered).toMatchObject({ data: { id, status: 'succeeded' } });
  });

  it("Spillway's own refusals come as protocol errors: 429 with Retry-After when the queue is full", async () => {
    const first = await infer('sleep', { ...bytes('{}'), parameters: { spillway_async: true } }, idle.url);
    expect(first.status).toBe(202);
    const second = await infer('sleep', { ...bytes('{}'), parameters: { spillway_async: true } }, idle.url);
    expectV2Error(second, 429, 'SPILLWAY_QUEUE_FULL');
    expect(second.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});

describe.skipIf(inBrokerLegSuite)('Open Inference Protocol v2: predictions that do not succeed', () => {
  it("a JSON handler's input_schema is checked as on /v1, and answers 400", async () => {
    expectV2Error(await infer('shout', bytes('{"text": 42}')), 400, 'SPILLWAY_INVALID_INPUT', /\/input\/text must be string/);
  });

  it('a model that fails every attempt answers 502 with the record\'s code, not a 500', async () => {
    const res = await infer('shout', bytes('{"text": "never", "fail_times": 5}'));
    expectV2Error(res, 502, 'SPILLWAY_MODEL_FAILED', /upstream busy \(attempt 3\)/);
    expect(res.body.parameters?.['spillway_prediction_id']).toEqual(expect.any(String));
  });
});

describe.skipIf(inBrokerLegSuite)('Open Inference Protocol v2: API keys', () => {
  let keyed: Deployment;
  let reader: Record<string, string>;
  let predictor: Record<string, string>;
  beforeAll(async () => {
    keyed = await startDeployment({ withWorker: false, tenancy: { auth: 'keys' } });
    reader = { ...(await addKey(keyed.store, 'acme', ['read'])).auth };
    predictor = { ...(await addKey(keyed.store, 'acme', ['predict'])).auth };
  });
  afterAll(async () => keyed?.close());

  it('health is public; metadata needs a valid key; infer needs the predict scope', async () => {
    expect((await v2(keyed.url, '/health/live')).status).toBe(200);
    expect((await v2(keyed.url, '/health/ready')).status).toBe(200);
    for (const path of ['', '/models/iris', '/models/iris/ready']) {
      const refused = await v2(keyed.url, path);
      expectV2Error(refused, 401, 'SPILLWAY_UNAUTHENTICATED');
      expect(refused.headers.get('www-authenticate')).toContain('Bearer');
      expect((await v2(keyed.url, path, { headers: reader })).status).toBe(200);
    }
    const async = irisInput(undefined, { parameters: { spillway_async: true } });
    expectV2Error(await infer('iris', async, keyed.url), 401, 'SPILLWAY_UNAUTHENTICATED');
    expectV2Error(await infer('iris', async, keyed.url, reader), 403, 'SPILLWAY_FORBIDDEN', /predict/);
    expect((await infer('iris', async, keyed.url, predictor)).status).toBe(202);
  });
});
