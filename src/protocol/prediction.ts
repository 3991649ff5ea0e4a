import { Type, type Static } from '@sinclair/typebox';
import { errorBodySchema } from './errors.js';
import { priorityClassSchema } from './priority.js';
import { stringEnum } from './string-enum.js';

/**
 * The prediction record, defined once: this schema validates and documents it (the gateway's
 * routes and /openapi.json use it) and the TypeScript types below are derived from it.
 */

export const predictionStatuses = ['queued', 'running', 'succeeded', 'failed', 'expired', 'canceled'] as const;
export type PredictionStatus = (typeof predictionStatuses)[number];

/** The events a client may ask to be called back for. */
export const callbackEventNames = ['running', 'completed'] as const;
export type CallbackEventName = (typeof callbackEventNames)[number];

/** Records list only their declared fields: the gateway's serialiser drops any other. */
const closed = { additionalProperties: false } as const;
const timestamp = Type.String({ format: 'date-time' });
const millis = (description: string) => Type.Optional(Type.Number({ minimum: 0, description }));

/**
 * How long each step of serving took for the batch that held the prediction, the way KServe
 * times preprocess, predict and postprocess. One named shape, so that a pipeline can carry one
 * entry per step.
 */
export const stepTimingsSchema = Type.Object(
  {
    decode_ms: millis('Reading the request messages of the batch'),
    preprocess_ms: millis("Turning the inputs into the model's tensors (or the handler's preprocess)"),
    inference_ms: millis('Running the model itself on the batch'),
    postprocess_ms: millis("Turning the model's outputs into the answer (or the handler's postprocess)"),
  },
  closed,
);
export type StepTimings = Readonly<Static<typeof stepTimingsSchema>>;

export const predictionMetricsSchema = Type.Object(
  {
    queue_ms: millis('From acceptance to the start of the attempt that produced this record'),
    ...stepTimingsSchema.properties,
    total_ms: millis('From acceptance to completion'),
  },
  closed,
);
export type PredictionMetrics = Readonly<Static<typeof predictionMetricsSchema>>;

/** One step of a pipeline as the record shows it: who ran it, how long it waited, how long it took. */
export const pipelineStepSchema = Type.Object(
  {
    model: Type.String({ description: 'The model this step runs' }),
    status: stringEnum(predictionStatuses, { description: 'running, or how the step ended' }),
    attempts: Type.Integer({ minimum: 0, description: 'How many times a worker has started this step' }),
    worker: Type.Optional(Type.String()),
    started_at: Type.Optional(timestamp),
    completed_at: Type.Optional(timestamp),
    queue_ms: millis("From the step's request being queued to the start of the attempt that produced this entry"),
    ...stepTimingsSchema.properties,
  },
  { $id: 'PipelineStep', ...closed },
);
export type PipelineStep = Readonly<Static<typeof pipelineStepSchema>>;

export const callbackRequestSchema = Type.Object(
  {
    url: Type.String({ format: 'uri' }),
    events: Type.Array(stringEnum(callbackEventNames)),
  },
  closed,
);
/** A client's callback request, as it travels with the prediction. */
export type CallbackRequest = Readonly<Static<typeof callbackRequestSchema>>;

const deliveryStates = ['pending', 'delivered', 'gone', 'dead'] as const;

export const callbackDeliveryViewSchema = Type.Object(
  {
    event: stringEnum(callbackEventNames),
    webhook_id: Type.String(),
    state: stringEnum(deliveryStates, { description: 'pending, delivered, gone (the receiver answered 410) or dead (attempts ran out)' }),
    attempts: Type.Integer({ minimum: 0 }),
    last_status: Type.Optional(Type.Integer()),
    last_error: Type.Optional(Type.String()),
    delivered_at: Type.Optional(timestamp),
    next_attempt_at: Type.Optional(timestamp),
  },
  closed,
);
/** One owed webhook of a prediction, as GET /v1/predictions/{id} shows it. */
export type CallbackDeliveryView = Readonly<Static<typeof callbackDeliveryViewSchema>>;

/**
 * A queued prediction's place in line, worked out by the gateway when the record is read (never
 * stored, never on the response stream): from the broker's count of requests ahead of it and the
 * model's measured drain rate.
 */
export const queuePlaceViewSchema = Type.Object(
  {
    position: Type.Integer({
      minimum: 0,
      description: 'Requests waiting ahead of this one in its queue (its tenant lane, with fair queuing); 0: it is next',
    }),
    ahead_exact: Type.Boolean({ description: "True when the position is the broker's exact count (embedded, Redis); false for an estimate (Kafka)" }),
    eta: Type.Optional(
      Type.String({
        format: 'date-time',
        description: "When a worker should start it, from the model's drain rate across the deployment; absent while nothing is measured to drain",
      }),
    ),
    measured_at: Type.String({ format: 'date-time', description: 'When the position was read from the broker' }),
  },
  {
    description: 'While queued: its place in line and when it should start (added by the gateway on read; absent when the broker cannot tell)',
    ...closed,
  },
);
export type QueuePlaceView = Readonly<Static<typeof queuePlaceViewSchema>>;

/**
 * What a client reads from GET /v1/predictions/{id}, and what the response stream carries: each
 * event on that stream is the whole record at one moment, so any reader can rebuild state.
 * Build records with the builders in prediction-records.ts, not by hand.
 */
export const predictionRecordSchema = Type.Object(
  {
    id: Type.String(),
    model: Type.String(),
    status: stringEnum(predictionStatuses),
    output: Type.Optional(Type.Unknown()),
    error: Type.Optional(errorBodySchema),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    created_at: timestamp,
    started_at: Type.Optional(timestamp),
    completed_at: Type.Optional(timestamp),
    attempts: Type.Integer({ minimum: 0, description: 'How many times a worker has started this prediction' }),
    worker: Type.Optional(Type.String()),
    deadline: Type.Optional(Type.String({ format: 'date-time', description: 'When the client stops wanting the result: no worker starts it after this' })),
    replay: Type.Optional(
      Type.Integer({ minimum: 0, description: 'How many times an operator replayed it from the dead letters; a later replay supersedes an earlier one' }),
    ),
    callback: Type.Optional(
      Type.Object(
        {
          ...callbackRequestSchema.properties,
          deliveries: Type.Optional(
            Type.Array(callbackDeliveryViewSchema, { description: 'The webhooks owed for this prediction and how their delivery went (added by the store on read)' }),
          ),
        },
        closed,
      ),
    ),
    metrics: predictionMetricsSchema,
    step: Type.Optional(Type.String({ description: 'For a pipeline: the model of the step running now, or of the step that ended it' })),
    queue: Type.Optional(queuePlaceViewSchema),
    tenant: Type.Optional(Type.String({ description: 'The tenant whose API key submitted it; only that tenant sees it (absent when the gateway runs without keys)' })),
    api_key: Type.Optional(Type.String({ description: 'The id (public part, never the secret) of the API key that submitted it' })),
    priority: Type.Optional(priorityClassSchema),
    steps: Type.Optional(
      Type.Array(pipelineStepSchema, {
        description: "For a pipeline: each step started so far, in order; the record's metrics sum them (total_ms is end to end)",
      }),
    ),
  },
  { $id: 'PredictionRecord', description: 'A prediction and its lifecycle', ...closed },
);
export type PredictionRecord = Readonly<Static<typeof predictionRecordSchema>> & {
  /** Only in a stored `queued` record, never shown to a client: see {@link QueueSlot}. */
  readonly queue_slot?: QueueSlot;
};

/**
 * Where the broker holds a queued request: its topic (lane) and position there. The gateway that
 * published it stores it with the `queued` record, so that any gateway can read the request's
 * place in line. Clients never see it: every answer is serialised by the public schema, which
 * leaves it out, and the event stream drops it ({@link clientRecord}).
 */
export interface QueueSlot {
  readonly topic: string;
  readonly position: string;
}

/** The record as a client may see it: without what only gateways read. */
export function clientRecord(record: PredictionRecord): PredictionRecord {
  if (record.queue_slot === undefined) return record;
  const { queue_slot: _slot, ...shown } = record;
  return shown;
}

export function isTerminal(status: PredictionStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'expired' || status === 'canceled';
}

/**
 * Status only moves forward, and the first terminal status recorded wins: a redelivered request
 * that runs twice cannot change what a client has already been told.
 */
export function statusRank(status: PredictionStatus): number {
  switch (status) {
    case 'queued':
      return 0;
    case 'running':
      return 1;
    case 'succeeded':
    case 'failed':
    case 'expired':
    case 'canceled':
      return 2;
  }
}

/**
 * Order of records for one id across replays: a dead-lettered request that an operator replays
 * starts a new generation, whose records (even `queued`) supersede the old terminal one.
 */
export function storeRank(record: Pick<PredictionRecord, 'status' | 'replay'>): number {
  return (record.replay ?? 0) * 3 + statusRank(record.status);
}

/**
 * Order of `running` records within one generation: a later attempt's comes after an earlier
 * one's. A pipeline's record counts every step's attempts, and one that has handed over to the
 * next step (whose entry is still `queued`) comes after the step that handed over and before the
 * next step's first start.
 */
export function storeProgress(record: Pick<PredictionRecord, 'attempts' | 'steps'>): number {
  return record.attempts * 2 + (record.steps?.at(-1)?.status === 'queued' ? 1 : 0);
}

export function supersedes(next: PredictionRecord, current: PredictionRecord | undefined): boolean {
  if (current === undefined) return true;
  const rankNext = storeRank(next);
  const rankCurrent = storeRank(current);
  if (rankNext !== rankCurrent) return rankNext > rankCurrent;
  // A later "running" replaces an earlier one; terminal records are never replaced.
  return next.status === 'running' && storeProgress(next) > storeProgress(current);
}
