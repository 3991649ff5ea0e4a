import { Type, type Static } from '@sinclair/typebox';
import { maxDeadlineMs } from '../protocol/envelope.js';
import { callbackEventNames, predictionStatuses, type CallbackEventName } from '../protocol/prediction.js';

/** Route schemas: they validate requests and are the source of /openapi.json. */

export const predictionRecordSchema = Type.Object(
  {
    id: Type.String(),
    model: Type.String(),
    status: Type.Union(predictionStatuses.map((s) => Type.Literal(s))),
    output: Type.Optional(Type.Unknown()),
    error: Type.Optional(
      Type.Object({
        code: Type.String(),
        message: Type.String(),
        retryable: Type.Boolean(),
        details: Type.Optional(Type.Array(Type.Object({ pointer: Type.Optional(Type.String()), message: Type.String() }))),
      }),
    ),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    created_at: Type.String({ format: 'date-time' }),
    started_at: Type.Optional(Type.String({ format: 'date-time' })),
    completed_at: Type.Optional(Type.String({ format: 'date-time' })),
    attempts: Type.Integer(),
    worker: Type.Optional(Type.String()),
    deadline: Type.Optional(Type.String({ format: 'date-time' })),
    replay: Type.Optional(Type.Integer({ description: 'How many times an operator replayed it from the dead letters' })),
    callback: Type.Optional(
      Type.Object({
        url: Type.String(),
        events: Type.Array(Type.String()),
        deliveries: Type.Optional(
          Type.Array(
            Type.Object({
              event: Type.String(),
              webhook_id: Type.String(),
              state: Type.String({ description: 'pending, delivered, gone (the receiver answered 410) or dead (attempts ran out)' }),
              attempts: Type.Integer(),
              last_status: Type.Optional(Type.Integer()),
              last_error: Type.Optional(Type.String()),
              delivered_at: Type.Optional(Type.String({ format: 'date-time' })),
              next_attempt_at: Type.Optional(Type.String({ format: 'date-time' })),
            }),
            { description: 'The webhooks owed for this prediction and how their delivery went' },
          ),
        ),
      }),
    ),
    metrics: Type.Object({
      queue_ms: Type.Optional(Type.Number()),
      inference_ms: Type.Optional(Type.Number()),
      total_ms: Type.Optional(Type.Number()),
    }),
  },
  { $id: 'PredictionRecord', description: 'A prediction and its lifecycle' },
);

export const problemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.String(),
    code: Type.String({ description: 'Stable SPILLWAY_… code, see docs/errors.md' }),
    retryable: Type.Boolean(),
    errors: Type.Optional(Type.Array(Type.Object({ pointer: Type.String(), detail: Type.String() }))),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details' },
);

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
    callback: Type.Optional(
      Type.Object(
        {
          url: Type.String({ format: 'uri', maxLength: 2048, description: 'http(s) URL that receives signed Standard Webhooks POSTs' }),
          events: Type.Optional(
            Type.Array(Type.Unsafe<CallbackEventName>({ type: 'string', enum: [...callbackEventNames] }), {
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

const tensorSpecSchema = Type.Object({ name: Type.String(), dtype: Type.String(), shape: Type.Array(Type.Integer()) });

export const workerSightingSchema = Type.Object({
  worker: Type.String(),
  host: Type.String(),
  pid: Type.Integer(),
  last_seen: Type.String(),
  in_flight: Type.Integer(),
  draining: Type.Boolean(),
  state: Type.String(),
  error: Type.Optional(Type.String()),
  dispatch: Type.Optional(Type.String()),
  concurrency: Type.Optional(Type.Integer({ description: 'Slots: batches this worker runs at once for the model' })),
  busy_ms: Type.Optional(
    Type.Number({ description: 'Slot-milliseconds spent running the model since the worker started' }),
  ),
  endpoint: Type.Optional(Type.String({ description: 'Where gateways send sync-dispatch requests' })),
});

export const modelSummarySchema = Type.Object(
  {
    name: Type.String(),
    state: Type.Union([Type.Literal('ready'), Type.Literal('failed')], {
      description: 'failed: the gateway could not read the model config; see error',
    }),
    error: Type.Optional(Type.String()),
    description: Type.Optional(Type.String()),
    runtime: Type.Optional(Type.String()),
    inputs: Type.Optional(Type.Array(tensorSpecSchema)),
    outputs: Type.Optional(Type.Array(tensorSpecSchema)),
    features: Type.Optional(Type.Array(Type.String())),
    labels: Type.Optional(Type.Array(Type.String())),
    max_batch_size: Type.Optional(Type.Integer()),
    concurrency: Type.Optional(Type.Integer()),
    max_attempts: Type.Optional(Type.Integer()),
    dispatch: Type.Optional(Type.String({ description: 'async: through the queue; sync: straight to a free worker' })),
    queue_depth: Type.Optional(Type.Integer({ description: 'Requests waiting or running' })),
    workers: Type.Array(workerSightingSchema, { description: 'Workers seen recently' }),
  },
  { $id: 'ModelSummary' },
);

export const modelParamsSchema = Type.Object({ model: Type.String({ maxLength: 128 }) });
export const predictionParamsSchema = Type.Object({ id: Type.String({ maxLength: 128 }) });
