import type { OutgoingMessage } from './message.js';
import type { CallbackRequest, PipelineStep, PredictionRecord } from './prediction.js';
import type { PriorityClass } from './priority.js';

/** Version of the JSON messages on the request and response topics (docs/messages.md). */
export const envelopeVersion = 1;

/**
 * How far ahead a request's deadline may lie: 7 days. Further is a mistake (a unit error in
 * timeout_ms, say) rather than a plan, and the bound keeps every deadline a valid timestamp and
 * every timer within what setTimeout can hold.
 */
export const maxDeadlineMs = 7 * 24 * 60 * 60 * 1000;

/** A prediction request as it travels on `<prefix>.requests.<model>`. */
export interface RequestEnvelope {
  readonly v: typeof envelopeVersion;
  readonly id: string;
  readonly model: string;
  readonly input: unknown;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly created_at: string;
  /** The gateway instance that accepted it, so that gateway can find its waiting client. */
  readonly reply_to?: string;
  /** W3C trace context of the HTTP request that created it. */
  readonly traceparent?: string;
  /** RFC 3339: no worker starts the request after this; it becomes `expired` instead. */
  readonly deadline?: string;
  /** How many times an operator replayed it from the dead-letter topic (absent: never). */
  readonly replay?: number;
  /** Where to POST the prediction's status changes (checked by the gateway at submit). */
  readonly callback?: CallbackRequest;
  /** Set when the request is a step of a pipeline (then `model` is that step's model). */
  readonly pipeline?: PipelineRoute;
  /** The tenant whose API key submitted it (absent when the gateway runs without keys). */
  readonly tenant?: string;
  /** The id (public part) of the API key that submitted it. */
  readonly api_key?: string;
  /** The class the client asked for (absent: normal); it also names the topic, on a model with priorities. */
  readonly priority?: PriorityClass;
}

/** Where a pipeline's request is: which pipeline, which step, and what the earlier steps did. */
export interface PipelineRoute {
  /** The pipeline the client addressed; every record of the prediction carries it as `model`. */
  readonly name: string;
  /** The model of each step, in order. */
  readonly steps: readonly string[];
  /** Index in `steps` of the step this request is for. */
  readonly step: number;
  /** RFC 3339: when this step's request was queued, where its queue wait starts. */
  readonly queued_at: string;
  /** The steps before this one, as the record shows them. */
  readonly done: readonly PipelineStep[];
}

/** A new request's envelope, from what the gateway knows of it (optional fields it lacks are left out). */
export function requestEnvelope(f: Omit<RequestEnvelope, 'v'>): RequestEnvelope {
  // Field by field, not a filtered spread: one object per request on the gateway's hot path.
  const e: { -readonly [K in keyof RequestEnvelope]: RequestEnvelope[K] } = {
    v: envelopeVersion,
    id: f.id,
    model: f.model,
    input: f.input,
    metadata: f.metadata,
    created_at: f.created_at,
  };
  if (f.reply_to !== undefined) e.reply_to = f.reply_to;
  if (f.traceparent !== undefined) e.traceparent = f.traceparent;
  if (f.deadline !== undefined) e.deadline = f.deadline;
  if (f.replay !== undefined) e.replay = f.replay;
  if (f.callback !== undefined) e.callback = f.callback;
  if (f.pipeline !== undefined) e.pipeline = f.pipeline;
  if (f.tenant !== undefined) e.tenant = f.tenant;
  if (f.api_key !== undefined) e.api_key = f.api_key;
  if (f.priority !== undefined) e.priority = f.priority;
  return e;
}

/** A request as a message on its model's topic, keyed by its id; the headers let tools route without parsing. */
export function requestMessage(envelope: RequestEnvelope): OutgoingMessage {
  const headers: Record<string, string> = { [headerNames.id]: envelope.id, [headerNames.model]: envelope.model };
  if (envelope.traceparent !== undefined) headers[headerNames.traceparent] = envelope.traceparent;
  // A worker's batch window reads it to stop waiting in time, without decoding the request.
  if (envelope.deadline !== undefined) headers[headerNames.deadline] = envelope.deadline;
  return { key: envelope.id, headers, value: JSON.stringify(envelope) };
}

/** A status change as it travels on `<prefix>.responses`: the whole record at that moment. */
export interface ResponseEnvelope extends PredictionRecord {
  readonly v: typeof envelopeVersion;
}

/** A worker's periodic "I am here" on `<prefix>.workers`. */
export interface WorkerHeartbeat {
  readonly v: typeof envelopeVersion;
  readonly worker: string;
  readonly host: string;
  readonly pid: number;
  readonly sent_at: string;
  readonly models: Readonly<Record<string, WorkerModelState>>;
  readonly in_flight: number;
  readonly draining: boolean;
  /** Where gateways send `dispatch: sync` requests to this worker; absent if it serves none. */
  readonly endpoint?: string;
}

/** One model as a worker holds it. */
export interface WorkerModelState {
  readonly state: 'ready' | 'failed';
  readonly error?: string;
  readonly dispatch?: 'async' | 'sync';
  /** Slots: batches this worker runs at once for the model. */
  readonly concurrency?: number;
  /** Slot-milliseconds spent running the model since the worker started (utilisation = its rate ÷ concurrency). */
  readonly busy_ms?: number;
  /** How long loading the model took on this worker, in whole ms as busy_ms is (absent for a model that failed to load). */
  readonly load_ms?: number;
}

/**
 * A record as a message on the response stream, keyed by its id. The callback header tells the
 * callback dispatcher which records it may skip unparsed (most have no callback).
 */
export function responseMessage(record: PredictionRecord, traceparent?: string): OutgoingMessage {
  const headers: Record<string, string> = { [headerNames.id]: record.id, [headerNames.callback]: record.callback === undefined ? 'no' : 'yes' };
  if (traceparent !== undefined) headers[headerNames.traceparent] = traceparent;
  // A ResponseEnvelope: the version spliced in front of the record's own JSON, rather than a
  // copy of every record with `v` added, on the worker's hot path.
  return { key: record.id, headers, value: `{"v":${envelopeVersion},${JSON.stringify(record).slice(1)}` };
}

/**
 * Headers a message carries, so tools can route without parsing the body: requests carry id,
 * model, traceparent and deadline (when they have one), responses id and callback (`yes` or `no`; absent from messages of
 * versions before it, which must then be read), and traceparent when the worker traced the run
 * (its callback's delivery joins that trace). A response the broker wrote into the result store
 * as it published it (a records view: embedded, or Redis for both) carries `stored` (`yes`), so
 * the store writer passes it over.
 */
export const headerNames = {
  id: 'spillway-id',
  model: 'spillway-model',
  traceparent: 'traceparent',
  callback: 'spillway-callback',
  deadline: 'spillway-deadline',
  stored: 'spillway-stored',
} as const;
