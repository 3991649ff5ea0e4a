import { Type, type TObject, type TUnion } from '@sinclair/typebox';
import { envelopeVersion } from './envelope.js';
import { errorBodySchema, errorCodeSchema } from './errors.js';
import { callbackRequestSchema, pipelineStepSchema, predictionRecordSchema } from './prediction.js';
import { priorityClassSchema } from './priority.js';
import { stringEnum } from './string-enum.js';

/**
 * The JSON on every topic (docs/messages.md), as JSON Schema 2020-12, defined once here. The
 * files in docs/schemas/v1 are written from these (scripts/write-schemas.mjs; a test fails when
 * they differ) and the gateway serves them at /v1/schemas, so a consumer that is not Spillway's
 * code can check what it reads. The TypeScript interfaces of these messages (RequestEnvelope,
 * WorkerHeartbeat, …) are checked against these schemas in test/protocol/message-types.test.ts.
 */

/** Where the published schemas live: `$id` is this plus `<name>.json`; the `v1` is the messages' `v`. */
export const schemaBaseUrl = `https://spillway.dev/schemas/v${envelopeVersion}/`;

/** The `$id` of the schema `name`, which carries the version. */
export const schemaId = (name: string): string => `${schemaBaseUrl}${name}.json`;

/** Producers may add fields in a later `v`; within v1 the messages list only these. */
const closed = { additionalProperties: false } as const;
const timestamp = (description?: string) => Type.String({ format: 'date-time', ...(description === undefined ? {} : { description }) });
const version = Type.Literal(envelopeVersion, { description: 'Message version' });

export const pipelineRouteSchema = Type.Object(
  {
    name: Type.String({ description: 'The pipeline the client addressed; every record of the prediction carries it as model' }),
    steps: Type.Array(Type.String(), { minItems: 1, description: 'The model of each step, in order' }),
    step: Type.Integer({ minimum: 0, description: 'Index in steps of the step this request is for (steps[step] is model)' }),
    queued_at: timestamp("When this step's request was queued, where its queue wait starts"),
    done: Type.Array(pipelineStepSchema, { description: 'The steps before this one, as the record shows them' }),
  },
  closed,
);

export const requestMessageSchema = Type.Object(
  {
    v: version,
    id: Type.String({ description: 'Prediction id; the same id across retries' }),
    model: Type.String(),
    input: Type.Unknown({ description: "The request's input, as the client sent it" }),
    metadata: Type.Record(Type.String(), Type.Unknown(), { description: 'Client metadata, copied to the record' }),
    created_at: timestamp('When the gateway accepted it'),
    reply_to: Type.Optional(Type.String({ description: "Id of the gateway holding the client's connection" })),
    traceparent: Type.Optional(Type.String({ description: 'W3C trace context' })),
    deadline: Type.Optional(timestamp('No worker starts it after this (it becomes expired)')),
    replay: Type.Optional(Type.Integer({ minimum: 0, description: 'Replay generation, set by dlq replay' })),
    callback: Type.Optional(callbackRequestSchema),
    pipeline: Type.Optional(pipelineRouteSchema),
    tenant: Type.Optional(Type.String({ description: 'The tenant whose API key submitted it' })),
    api_key: Type.Optional(Type.String({ description: 'The id (public part) of the API key that submitted it' })),
    priority: Type.Optional(priorityClassSchema),
  },
  { description: 'A prediction request on <prefix>.requests.<model>', ...closed },
);

/** The record plus `v`: the same object GET /v1/predictions/{id} returns, at one moment. */
export const responseMessageSchema = Type.Object(
  { v: version, ...predictionRecordSchema.properties },
  { description: 'A status change on <prefix>.responses: the whole prediction record at that moment', ...closed },
);

const requestLetterSchema = Type.Object(
  {
    v: version,
    topic: Type.String({ description: 'The topic the failed message came from' }),
    position: Type.String({ description: 'Where it was on that topic' }),
    attempts: Type.Integer({ minimum: 0 }),
    reason: errorBodySchema,
    failed_at: timestamp(),
    value: Type.String({ description: 'The failed message, as it was' }),
  },
  { title: 'request letter', ...closed },
);

const callbackLetterSchema = Type.Object(
  {
    v: version,
    kind: Type.Literal('callback'),
    webhook_id: Type.String(),
    prediction_id: Type.String(),
    url: Type.String({ format: 'uri' }),
    attempts: Type.Integer({ minimum: 0 }),
    reason: Type.Object({ code: errorCodeSchema, message: Type.String() }, closed),
    failed_at: timestamp(),
  },
  { title: 'callback letter', ...closed },
);

export const deadLetterSchema = Type.Union([requestLetterSchema, callbackLetterSchema], {
  description: 'A dead letter on <prefix>.dlq: a request that failed, or a webhook that was never delivered',
});

export const cancelNoticeSchema = Type.Object(
  {
    v: version,
    type: Type.Literal('cancel', { description: 'Readers ignore notices of another type' }),
    id: Type.String(),
    model: Type.String(),
    canceled_at: timestamp(),
  },
  { description: 'A cancel notice on <prefix>.control', ...closed },
);

const workerModelStateSchema = Type.Object(
  {
    state: stringEnum(['ready', 'failed'] as const),
    error: Type.Optional(Type.String()),
    dispatch: Type.Optional(stringEnum(['async', 'sync'] as const)),
    concurrency: Type.Optional(Type.Integer({ minimum: 1 })),
    busy_ms: Type.Optional(Type.Number({ minimum: 0, description: 'Slot-milliseconds spent running the model since the worker started' })),
    load_ms: Type.Optional(Type.Number({ minimum: 0, description: 'How long loading the model took on this worker' })),
  },
  closed,
);

export const workerHeartbeatSchema = Type.Object(
  {
    v: version,
    worker: Type.String(),
    host: Type.String(),
    pid: Type.Integer({ minimum: 0 }),
    sent_at: timestamp(),
    models: Type.Record(Type.String(), workerModelStateSchema),
    in_flight: Type.Integer({ minimum: 0 }),
    draining: Type.Boolean(),
    endpoint: Type.Optional(Type.String({ format: 'uri', description: 'Where gateways send dispatch: sync requests to this worker' })),
  },
  { description: 'A worker heartbeat on <prefix>.workers', ...closed },
);

/** Each published schema: its name (the file and URL name) and the topic whose messages it describes. */
export const messageSchemas = [
  { name: 'request', topic: '<prefix>.requests.<model>', schema: requestMessageSchema },
  { name: 'response', topic: '<prefix>.responses', schema: responseMessageSchema },
  { name: 'dead-letter', topic: '<prefix>.dlq', schema: deadLetterSchema },
  { name: 'cancel-notice', topic: '<prefix>.control', schema: cancelNoticeSchema },
  { name: 'worker-heartbeat', topic: '<prefix>.workers', schema: workerHeartbeatSchema },
] as const satisfies readonly { name: string; topic: string; schema: TObject | TUnion }[];

export type MessageSchemaName = (typeof messageSchemas)[number]['name'];

/** A published schema document: JSON (TypeBox's symbols dropped), with its own `$schema`, `$id` and title. */
export type JsonSchemaDocument = { readonly $schema: string; readonly $id: string; readonly title: string } & Readonly<Record<string, unknown>>;

/**
 * The schema as published. Shared parts carry `$id`s of their own for /openapi.json
 * (PredictionRecord, PipelineStep); those are dropped here so that each document stands alone
 * and two documents loaded into one validator do not claim the same id.
 */
export function publishedSchema(name: MessageSchemaName): JsonSchemaDocument {
  const entry = messageSchemas.find((s) => s.name === name);
  if (entry === undefined) throw new Error(`no message schema ${name}`);
  const body = withoutIds(JSON.parse(JSON.stringify(entry.schema)) as unknown) as Record<string, unknown>;
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: schemaId(name),
    title: `Spillway ${name} message, v${envelopeVersion}`,
    ...body,
  };
}

/** The text of docs/schemas/v1/<name>.json, as scripts/write-schemas.mjs writes it. */
export function schemaFileText(name: MessageSchemaName): string {
  return `${JSON.stringify(publishedSchema(name), null, 2)}\n`;
}

function withoutIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutIds);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (key !== '$id') out[key] = withoutIds(v);
  return out;
}
