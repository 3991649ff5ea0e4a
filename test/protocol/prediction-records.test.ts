import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { requestEnvelope, requestMessage, responseMessage } from '../../src/protocol/envelope.js';
import { SpillwayError } from '../../src/protocol/errors.js';
import { predictionRecordSchema, supersedes, type PredictionRecord } from '../../src/protocol/prediction.js';
import { expiredOutcome, finishedRecord, handedOverRecord, queuedRecord, runningRecord, unstartedRecord } from '../../src/protocol/prediction-records.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const validate = addFormats(new Ajv2020({ allErrors: true, strict: false })).compile(predictionRecordSchema);

/** Every builder's record must be one the schema (and so the gateway's serialiser) accepts, and survive JSON unchanged. */
function valid(record: PredictionRecord): PredictionRecord {
  expect(validate(record), JSON.stringify(validate.errors)).toBe(true);
  expect(JSON.parse(JSON.stringify(record))).toStrictEqual(record);
  return record;
}

const created = Date.parse('2026-12-01T10:00:00.000Z');
const bare = { id: 'p1', model: 'echo', metadata: { user: 'u' }, created_at: new Date(created).toISOString() };
const full = {
  ...bare,
  deadline: '2026-12-01T10:05:00.000Z',
  replay: 2,
  callback: { url: 'https://example.test/hook', events: ['completed' as const] },
  tenant: 'acme',
  api_key: '0123456789abcdef',
  priority: 'high' as const,
};
const worker = { worker: 'w1', attempts: 3 };

describe('prediction record builders', () => {
  it('a queued record repeats the request and leaves out what it did not say', () => {
    expect(valid(queuedRecord(bare))).toStrictEqual({ ...bare, status: 'queued', attempts: 0, metrics: {} });
    const record = valid(queuedRecord({ ...full, input: 'ignored', v: 1, reply_to: 'g1' } as Parameters<typeof queuedRecord>[0]));
    expect(record).toStrictEqual({ ...full, status: 'queued', attempts: 0, metrics: {} });
  });

  it('a running record names the worker and attempt, and how long the request queued', () => {
    const record = valid(runningRecord(full, worker, created + 1500));
    expect(record).toMatchObject({ status: 'running', worker: 'w1', attempts: 3, started_at: '2026-12-01T10:00:01.500Z', replay: 2 });
    expect(record.metrics).toStrictEqual({ queue_ms: 1500 });
  });

  it('a finished record takes the outcome, the step timings to the microsecond and the total', () => {
    const running = runningRecord(bare, worker, created + 10);
    const done = valid(finishedRecord(running, { status: 'succeeded', output: [1, 2] }, created + 30, { inference_ms: 4.123456, preprocess_ms: 0.0004 }));
    expect(done).toMatchObject({ status: 'succeeded', output: [1, 2], completed_at: '2026-12-01T10:00:00.030Z', started_at: running.started_at });
    expect(done.metrics).toStrictEqual({ queue_ms: 10, inference_ms: 4.123, preprocess_ms: 0, total_ms: 30 });
  });

  it('finishing replaces an earlier output or error rather than keeping both', () => {
    const failed = finishedRecord(queuedRecord(bare), { status: 'failed', error: new SpillwayError('SPILLWAY_MODEL_FAILED', 'x').toBody() }, created + 5);
    const canceled = valid(finishedRecord(failed, { status: 'canceled' }, created + 9));
    expect(canceled).not.toHaveProperty('error');
    expect(canceled).not.toHaveProperty('output');
    expect(canceled.metrics).toStrictEqual({ total_ms: 9 });
  });

  it('finishing keeps every field of the schema the record had, apart from the old output or error', () => {
    // A record with every property the schema names: a field added to the schema later and not
    // copied by finishedRecord fails here.
    const route = { name: 'pipe', steps: ['pre', 'echo'], step: 1, queued_at: '2026-12-01T10:00:00.005Z', done: [{ model: 'pre', status: 'succeeded' as const, attempts: 1 }] };
    const every = { ...runningRecord({ ...full, pipeline: route }, worker, created + 10), output: 'old', completed_at: '2026-12-01T10:00:00.020Z' } as PredictionRecord;
    // `queue` is shown on read while queued (QueuePlaces), never built into a record.
    const missing = Object.keys(predictionRecordSchema.properties).filter((key) => !(key in every) && key !== 'error' && key !== 'queue');
    expect(missing).toStrictEqual([]);
    const done = finishedRecord(every, { status: 'canceled' }, created + 40);
    const kept = Object.keys(predictionRecordSchema.properties).filter((key) => key !== 'output' && key !== 'error' && key !== 'queue');
    expect(kept.filter((key) => !(key in done))).toStrictEqual([]);
  });

  it('a request settled without running waited in the queue all along', () => {
    const record = valid(unstartedRecord(full, { worker: 'w1', attempts: 0 }, expiredOutcome(full.deadline), created + 400_000));
    expect(record).toMatchObject({ status: 'expired', attempts: 0, worker: 'w1', error: { code: 'SPILLWAY_DEADLINE_EXCEEDED' } });
    expect(record.error?.message).toContain(full.deadline);
    expect(record).not.toHaveProperty('started_at');
    expect(record.metrics).toStrictEqual({ queue_ms: 400_000, total_ms: 400_000 });
  });

  it('a time before the request was created counts as no wait, not a negative one', () => {
    expect(runningRecord(bare, worker, created - 50).metrics.queue_ms).toBe(0);
  });
});

describe('request envelope builders', () => {
  it('leave out the optional fields the gateway does not have, and carry the trace header only when there is one', () => {
    const envelope = requestEnvelope({ ...bare, input: { x: 1 }, reply_to: 'g1', traceparent: undefined, deadline: undefined, callback: undefined });
    expect(Object.keys(envelope).sort()).toStrictEqual(['created_at', 'id', 'input', 'metadata', 'model', 'reply_to', 'v']);
    const message = requestMessage(envelope);
    expect(message.key).toBe('p1');
    expect(message.headers).toStrictEqual({ 'spillway-id': 'p1', 'spillway-model': 'echo' });
    expect(JSON.parse(message.value)).toStrictEqual(envelope);
    const every = { ...full, input: [1], reply_to: 'g1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
    expect(requestEnvelope(every)).toStrictEqual({ v: 1, ...every });
    const traced = requestMessage(requestEnvelope({ ...bare, input: 1, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }));
    expect(traced.headers?.['traceparent']).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  });
});

describe('response messages', () => {
  it('carry the record with its version, keyed and headed by id, and say whether it asks for a callback', () => {
    const plain = finishedRecord(runningRecord(bare, worker, created + 5), { status: 'succeeded', output: [1, 2] }, created + 9);
    const message = responseMessage(plain);
    expect(message.key).toBe('p1');
    expect(message.headers).toEqual({ 'spillway-id': 'p1', 'spillway-callback': 'no' });
    expect(JSON.parse(message.value)).toStrictEqual({ v: 1, ...plain });
    const hooked = queuedRecord(full);
    expect(responseMessage(hooked).headers).toEqual({ 'spillway-id': 'p1', 'spillway-callback': 'yes' });
    expect(JSON.parse(responseMessage(hooked).value)).toStrictEqual({ v: 1, ...hooked });
  });
});

describe('pipeline records', () => {
  const route = (step: number, done: PredictionRecord['steps'] = []) => ({ name: 'pipe', steps: ['pre', 'model', 'post'], step, queued_at: new Date(created + step * 100).toISOString(), done: done ?? [] });

  it('carry the pipeline as their model, the step they are at, and each step so far, summed', () => {
    const queued = valid(queuedRecord({ ...bare, pipeline: route(0) }));
    expect(queued).toMatchObject({ model: 'pipe', step: 'pre', status: 'queued', attempts: 0 });
    expect(queued.steps).toBeUndefined();
    const first = valid(finishedRecord(runningRecord({ ...bare, pipeline: route(0) }, worker, created + 10), { status: 'succeeded', output: 1 }, created + 30, { inference_ms: 5 }));
    expect(first.steps).toEqual([
      { model: 'pre', status: 'succeeded', attempts: 3, worker: 'w1', queue_ms: 10, started_at: new Date(created + 10).toISOString(), completed_at: new Date(created + 30).toISOString(), inference_ms: 5 },
    ]);
    const second = valid(runningRecord({ ...bare, pipeline: route(1, first.steps) }, { worker: 'w2', attempts: 1 }, created + 150));
    expect(second).toMatchObject({ model: 'pipe', step: 'model', status: 'running', attempts: 4, worker: 'w2', started_at: first.started_at });
    expect(second.steps?.map((s) => `${s.model}:${s.status}:${s.queue_ms ?? ''}`)).toEqual(['pre:succeeded:10', 'model:running:50']);
    expect(second.metrics).toEqual({ queue_ms: 60, inference_ms: 5 });
    const done = valid(finishedRecord(second, { status: 'failed', error: { code: 'SPILLWAY_MODEL_FAILED', message: 'x', retryable: false } }, created + 200, { inference_ms: 2 }));
    expect(done).toMatchObject({ status: 'failed', step: 'model', metrics: { queue_ms: 60, inference_ms: 7, total_ms: 200 } });
    expect(done.steps?.map((s) => s.status)).toEqual(['succeeded', 'failed']);
  });

  it('a step that handed over shows the next one queued, ordered between the two starts', () => {
    const ran = runningRecord({ ...bare, pipeline: route(0) }, worker, created + 10);
    const first = finishedRecord(ran, { status: 'succeeded', output: { x: 1 } }, created + 30, { inference_ms: 5 });
    const handed = valid(handedOverRecord(first, 'model'));
    expect(handed).toMatchObject({ status: 'running', step: 'model', attempts: first.attempts, metrics: { queue_ms: 10, inference_ms: 5 } });
    expect(handed.output).toBeUndefined();
    expect(handed.metrics.total_ms).toBeUndefined();
    expect(handed.steps?.map((s) => `${s.model}:${s.status}`)).toEqual(['pre:succeeded', 'model:queued']);
    const next = runningRecord({ ...bare, pipeline: route(1, first.steps) }, { worker: 'w2', attempts: 1 }, created + 150);
    expect(supersedes(handed, ran)).toBe(true);
    expect(supersedes(next, handed)).toBe(true);
    expect(supersedes(handed, next)).toBe(false);
  });

  it('a step settled without running (canceled, expired) gets its own entry', () => {
    const record = valid(unstartedRecord({ ...bare, pipeline: route(1, [{ model: 'pre', status: 'succeeded', attempts: 1 }]) }, { worker: 'w2', attempts: 0 }, { status: 'canceled' }, created + 400));
    expect(record).toMatchObject({ model: 'pipe', step: 'model', status: 'canceled', attempts: 1 });
    expect(record.steps?.map((s) => `${s.model}:${s.status}`)).toEqual(['pre:succeeded', 'model:canceled']);
  });
});
