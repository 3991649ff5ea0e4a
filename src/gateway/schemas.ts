import { Type, type Static } from '@sinclair/typebox';
import { maxDeadlineMs } from '../protocol/envelope.js';
import { callbackEventNames } from '../protocol/prediction.js';
import { priorityRequestSchema } from '../protocol/priority.js';
import { stringEnum } from '../protocol/string-enum.js';

/** Route schemas: they validate requests and are the source of /openapi.json. */

/** Response objects list only their declared fields: the serialiser drops any other. */
const closed = { additionalProperties: false } as const;

export const predictionRequestSchema = Type.Object(
  {
    input: Type.Unknown({ description: "The model's input: see GET /v1/models/{model} for its form" }),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Kept with the prediction' })),
    deadline: Type.Optional(
      Type.String({
        format: 'date-time',
        description: 'RFC 3339 time, with a zone, after which no worker starts the prediction (it becomes expired); at most 7 days ahead',
      }),
    ),
    timeout_ms: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: maxDeadlineMs,
        description: 'The deadline as milliseconds from acceptance (instead of deadline); at most 7 days',
      }),
    ),
    priority: Type.Optional(priorityRequestSchema),
    callback: Type.Optional(
      Type.Object(
        {
          url: Type.String({ format: 'uri', maxLength: 2048, description: 'http(s) URL that receives signed Standard Webhooks POSTs' }),
          events: Type.Optional(
            Type.Array(stringEnum(callbackEventNames), {
              minItems: 1,
              description: 'Which status changes to send (default: completed)',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type PredictionRequestBody = Static<typeof predictionRequestSchema>;

const tensorSpecSchema = Type.Object({ name: Type.String(), dtype: Type.String(), shape: Type.Array(Type.Integer()) }, closed);
const dispatchSchema = stringEnum(['async', 'sync'] as const, { description: 'async: through the queue; sync: straight to a free worker' });

export const workerSightingSchema = Type.Object(
  {
    worker: Type.String(),
    host: Type.String(),
    pid: Type.Integer(),
    last_seen: Type.String({ format: 'date-time' }),
    in_flight: Type.Integer({ minimum: 0 }),
    draining: Type.Boolean(),
    state: stringEnum(['ready', 'failed'] as const, { description: 'failed: the worker could not load the model; see error' }),
    error: Type.Optional(Type.String()),
    dispatch: Type.Optional(dispatchSchema),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, description: 'Slots: batches this worker runs at once for the model' })),
    busy_ms: Type.Optional(
      Type.Number({ minimum: 0, description: 'Slot-milliseconds spent running the model since the worker started' }),
    ),
    load_ms: Type.Optional(Type.Number({ minimum: 0, description: 'How long loading the model took on this worker' })),
    endpoint: Type.Optional(Type.String({ description: 'Where gateways send sync-dispatch requests' })),
  },
  closed,
);

export const modelSummarySchema = Type.Object(
  {
    name: Type.String(),
    kind: stringEnum(['model', 'pipeline'] as const, {
      description: 'pipeline: addressed like a model, run as the models in steps, one after another',
    }),
    state: stringEnum(['ready', 'failed'] as const, {
      description: 'failed: the gateway could not read the model config; see error',
    }),
    error: Type.Optional(Type.String()),
    description: Type.Optional(Type.String()),
    runtime: Type.Optional(Type.String()),
    inputs: Type.Optional(Type.Array(tensorSpecSchema)),
    outputs: Type.Optional(Type.Array(tensorSpecSchema)),
    features: Type.Optional(Type.Array(Type.String())),
    labels: Type.Optional(Type.Array(Type.String())),
    max_batch_size: Type.Optional(Type.Integer({ minimum: 1 })),
    concurrency: Type.Optional(Type.Integer({ minimum: 1 })),
    max_attempts: Type.Optional(Type.Integer({ minimum: 1 })),
    dispatch: Type.Optional(dispatchSchema),
    queue_depth: Type.Optional(Type.Integer({ minimum: 0, description: 'Requests waiting or running' })),
    steps: Type.Optional(Type.Array(Type.String(), { description: "A pipeline's steps: the model each runs, in order" })),
    workers: Type.Array(workerSightingSchema, { description: 'Workers seen recently' }),
  },
  { $id: 'ModelSummary', ...closed },
);

/** Model names and prediction ids are at most this long; the document says so, and longer is a 422. */
const maxNameLength = 128;
export const modelParamsSchema = Type.Object({
  model: Type.String({ maxLength: maxNameLength, description: 'A model of the repository (GET /v1/models lists them)' }),
});
export const schemaParamsSchema = Type.Object({
  name: Type.String({ maxLength: maxNameLength, description: 'A message schema (GET /v1/schemas lists them)' }),
});
export const predictionParamsSchema = Type.Object({
  id: Type.String({ maxLength: maxNameLength, description: 'The id a submission answered with' }),
});

/** The longest catch-up target the scaling route takes: a day; past that nobody is scaling. */
export const maxScalingTargetS = 86_400;
/** The catch-up target when none is asked for, and the one the desired-workers gauge uses. */
export const defaultScalingTargetS = 60;

// Open, as every route's query is: a parameter the API does not know is ignored.
export const scalingQuerySchema = Type.Object({
  target_s: Type.Optional(
    Type.String({
      pattern: '^[0-9]+(\\.[0-9]+)?$',
      description: `Seconds within which the backlog should be cleared (> 0, at most ${maxScalingTargetS}); default ${defaultScalingTargetS}`,
    }),
  ),
});

const rate = (description: string) => Type.Number({ minimum: 0, description });
const count = (description: string) => Type.Integer({ minimum: 0, description });

/** One model's scaling signals, for the deployment as a whole (KEDA's metrics-api scaler reads one field). */
export const scalingFiguresSchema = Type.Object(
  {
    model: Type.String(),
    backlog: count('Requests waiting for a worker (not leased), summed over the lanes of the model'),
    in_flight: count('Requests a worker holds and has not finished'),
    oldest_age_s: rate('Age of the oldest waiting request in seconds; 0 when none waits'),
    drain_rate_per_s: rate('Final records per second over the window'),
    arrival_rate_per_s: rate('Requests queued per second over the window: the drain plus the growth of backlog + in flight'),
    workers_seen: count('Workers serving the model with fresh heartbeats, ready and not draining'),
    slots_per_worker: rate('Batches one worker runs at once (its concurrency)'),
    per_worker_rate_per_s: Type.Union([rate('One worker\'s throughput, requests per second (μ × slots)'), Type.Null()]),
    target_s: rate('The catch-up target these figures were computed for'),
    desired_workers: count('Workers that clear backlog + in flight within target_s while arrivals go on: ⌈(λ + B/T) / (μ·slots)⌉'),
    window_s: rate('The span the rates were measured over, in seconds'),
  },
  { $id: 'ScalingFigures', ...closed },
);
export type ScalingFigures = Static<typeof scalingFiguresSchema>;
