import type { PipelineRoute, RequestEnvelope } from './envelope.js';
import { SpillwayError, type ErrorBody } from './errors.js';
import type { PipelineStep, PredictionRecord, StepTimings } from './prediction.js';

/**
 * The named ways a prediction record comes to be. Every record of a prediction repeats what its
 * request said (id, model, metadata, deadline, replay, callback), so they are copied in one
 * place; fields a record does not have are left out rather than set to undefined, so that a
 * record reads the same after a trip through JSON.
 */

/** What every record of a prediction repeats from the request that created it. */
export type RequestFacts = Pick<RequestEnvelope, 'id' | 'model' | 'metadata' | 'created_at' | 'deadline' | 'replay' | 'callback' | 'pipeline' | 'tenant' | 'api_key' | 'priority'>;

/** Who holds a prediction and how many times it has been started. */
export interface Attempt {
  readonly worker: string;
  readonly attempts: number;
}

/** How a prediction ended. */
export type FinalOutcome =
  | { readonly status: 'succeeded'; readonly output: unknown }
  | { readonly status: 'failed' | 'expired'; readonly error: ErrorBody }
  | { readonly status: 'canceled' };

/** The outcome of a prediction that no worker started before its deadline. */
export function expiredOutcome(deadline: string | undefined): FinalOutcome {
  const error = new SpillwayError('SPILLWAY_DEADLINE_EXCEEDED', `the deadline ${deadline ?? ''} passed before a worker started it`);
  return { status: 'expired', error: error.toBody() };
}

/** A request just accepted: nothing has started it yet. */
export function queuedRecord(request: RequestFacts): PredictionRecord {
  const record: Building = { id: request.id, model: request.model, status: 'queued', metadata: request.metadata, created_at: request.created_at, attempts: 0, metrics: {} };
  if (request.pipeline !== undefined) atStep(record, request.pipeline, undefined);
  return withRequestOptions(record, request);
}

/** A worker started attempt `attempt.attempts` at `startedAt` (epoch ms). */
export function runningRecord(request: RequestFacts, attempt: Attempt, startedAt: number): PredictionRecord {
  const record: Building = {
    id: request.id,
    model: request.model,
    status: 'running',
    metadata: request.metadata,
    created_at: request.created_at,
    started_at: iso(startedAt),
    attempts: attempt.attempts,
    worker: attempt.worker,
    metrics: { queue_ms: elapsed(request.created_at, startedAt) },
  };
  if (request.pipeline !== undefined) atStep(record, request.pipeline, stepEntry(request.pipeline, 'running', attempt, startedAt, startedAt));
  return withRequestOptions(record, request);
}

/**
 * A record of a pipeline's prediction is the pipeline's: it carries the pipeline's name, the
 * step it is at, and each step so far (`entry` is the current one, once a worker holds it).
 * Its attempts and metrics add up the steps', so that the store's "newer record wins" order
 * holds across steps as it does across attempts.
 */
function atStep(record: Building, route: PipelineRoute, entry: PipelineStep | undefined): void {
  const steps = entry === undefined ? route.done : [...route.done, entry];
  record.model = route.name;
  record.step = route.steps[route.step] ?? '';
  record.attempts = steps.reduce((n, s) => n + s.attempts, 0);
  if (steps.length > 0) record.steps = [...steps];
  if (entry !== undefined) record.metrics = summed(steps);
  const first = steps[0]?.started_at;
  if (first !== undefined) record.started_at = first;
}

/** The current step as a worker holds it at `at` (epoch ms); `startedAt` if it runs it. */
function stepEntry(route: PipelineRoute, status: 'running' | 'queued', attempt: Attempt, at: number, startedAt?: number): PipelineStep {
  const entry: { -readonly [K in keyof PipelineStep]: PipelineStep[K] } = {
    model: route.steps[route.step] ?? '',
    status,
    attempts: attempt.attempts,
    worker: attempt.worker,
    queue_ms: elapsed(route.queued_at, at),
  };
  if (startedAt !== undefined) entry.started_at = iso(startedAt);
  return entry;
}

/** A pipeline's metrics: each step's waits and timings added up. */
function summed(steps: readonly PipelineStep[]): PredictionRecord['metrics'] {
  const metrics: { -readonly [K in keyof PredictionRecord['metrics']]: PredictionRecord['metrics'][K] } = {};
  for (const key of ['queue_ms', 'decode_ms', 'preprocess_ms', 'inference_ms', 'postprocess_ms'] as const) {
    let total: number | undefined;
    for (const step of steps) if (step[key] !== undefined) total = (total ?? 0) + step[key];
    if (total !== undefined) metrics[key] = micros(total);
  }
  return metrics;
}

type Building = { -readonly [K in keyof PredictionRecord]: PredictionRecord[K] };

/**
 * The optional fields a record repeats from its request, set only when the request has them.
 * Assigned one by one rather than filtered out of a spread: this runs for every record, on the
 * gateway's and the worker's hot paths.
 */
function withRequestOptions(record: Building, request: RequestFacts): PredictionRecord {
  if (request.deadline !== undefined) record.deadline = request.deadline;
  if (request.replay !== undefined) record.replay = request.replay;
  if (request.callback !== undefined) record.callback = request.callback;
  if (request.tenant !== undefined) record.tenant = request.tenant;
  if (request.api_key !== undefined) record.api_key = request.api_key;
  if (request.priority !== undefined) record.priority = request.priority;
  return record;
}

/**
 * `record` ended at `completedAt` (epoch ms) with `outcome`: whatever output or error it had is
 * replaced by the outcome's, and `timings` (the steps of the run that produced it) are added.
 * Built field by field, not as a rest-and-spread copy (three times slower): every prediction
 * passes here on the worker's hot path. test/protocol/prediction-records.test.ts checks that no
 * field of the schema is dropped.
 */
export function finishedRecord(record: PredictionRecord, outcome: FinalOutcome, completedAt: number, timings?: StepTimings): PredictionRecord {
  const finished: Building = {
    id: record.id,
    model: record.model,
    status: outcome.status,
    metadata: record.metadata,
    created_at: record.created_at,
    attempts: record.attempts,
    metrics: finishedMetrics(record, completedAt, timings),
  };
  if (outcome.status === 'succeeded') finished.output = outcome.output;
  else if (outcome.status !== 'canceled') finished.error = outcome.error;
  if (record.started_at !== undefined) finished.started_at = record.started_at;
  finished.completed_at = iso(completedAt);
  if (record.worker !== undefined) finished.worker = record.worker;
  if (record.step !== undefined) finished.step = record.step;
  if (record.steps !== undefined) {
    finished.steps = finishedSteps(record.steps, outcome, completedAt, timings);
    finished.metrics = { ...summed(finished.steps), total_ms: elapsed(record.created_at, completedAt) };
  }
  return withRequestOptions(finished, record);
}

/** The last step ended with the prediction; the earlier ones are kept as they were. */
function finishedSteps(steps: readonly PipelineStep[], outcome: FinalOutcome, completedAt: number, timings: StepTimings | undefined): PipelineStep[] {
  const last = steps.at(-1);
  if (last === undefined) return [];
  const entry: { -readonly [K in keyof PipelineStep]: PipelineStep[K] } = { ...last, status: outcome.status, completed_at: iso(completedAt) };
  if (timings?.decode_ms !== undefined) entry.decode_ms = micros(timings.decode_ms);
  if (timings?.preprocess_ms !== undefined) entry.preprocess_ms = micros(timings.preprocess_ms);
  if (timings?.inference_ms !== undefined) entry.inference_ms = micros(timings.inference_ms);
  if (timings?.postprocess_ms !== undefined) entry.postprocess_ms = micros(timings.postprocess_ms);
  return [...steps.slice(0, -1), entry];
}

function finishedMetrics(record: PredictionRecord, completedAt: number, timings: StepTimings | undefined): PredictionRecord['metrics'] {
  const metrics: { -readonly [K in keyof PredictionRecord['metrics']]: PredictionRecord['metrics'][K] } = { ...record.metrics };
  if (timings !== undefined) {
    // Field by field rather than by a loop over keys; finer than a microsecond is noise.
    if (timings.decode_ms !== undefined) metrics.decode_ms = micros(timings.decode_ms);
    if (timings.preprocess_ms !== undefined) metrics.preprocess_ms = micros(timings.preprocess_ms);
    if (timings.inference_ms !== undefined) metrics.inference_ms = micros(timings.inference_ms);
    if (timings.postprocess_ms !== undefined) metrics.postprocess_ms = micros(timings.postprocess_ms);
  }
  metrics.total_ms = elapsed(record.created_at, completedAt);
  return metrics;
}

/**
 * A pipeline's step succeeded and its output is queued for `nextModel`: the prediction is still
 * running, now at the next step, whose entry is `queued` until a worker starts it.
 */
export function handedOverRecord(succeeded: PredictionRecord, nextModel: string): PredictionRecord {
  const { total_ms: _total, ...metrics } = succeeded.metrics;
  const record: Building = { ...succeeded, status: 'running', step: nextModel, metrics, steps: [...(succeeded.steps ?? []), { model: nextModel, status: 'queued', attempts: 0 }] };
  delete record.output;
  delete record.completed_at;
  return record;
}

/**
 * A worker settled a request at `now` without running it (canceled, past its deadline, or
 * unreadable): it waited in the queue the whole time.
 */
export function unstartedRecord(request: RequestFacts, attempt: Attempt, outcome: FinalOutcome, now: number): PredictionRecord {
  const queued = queuedRecord(request);
  const held: Building = { ...queued, attempts: attempt.attempts, worker: attempt.worker, metrics: { queue_ms: elapsed(request.created_at, now) } };
  if (request.pipeline !== undefined) atStep(held, request.pipeline, stepEntry(request.pipeline, 'queued', attempt, now));
  return finishedRecord(held, outcome, now);
}

const iso = (ms: number) => new Date(ms).toISOString();

function elapsed(createdAt: string, at: number): number {
  return Math.max(0, at - Date.parse(createdAt));
}

const micros = (ms: number) => Math.round(ms * 1000) / 1000;
