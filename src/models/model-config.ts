import { Type, type Static } from '@sinclair/typebox';
import { stringEnum } from '../protocol/string-enum.js';
import { maxDeadlineMs } from '../protocol/envelope.js';

export const tensorDtypes = ['float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'bool'] as const;
export type TensorDtype = (typeof tensorDtypes)[number];

const tensorSpec = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    dtype: stringEnum(tensorDtypes),
    shape: Type.Array(Type.Integer({ minimum: -1 }), {
      minItems: 1,
      description: 'Dimensions; -1 marks a dynamic one. The first is the batch dimension.',
    }),
  },
  { additionalProperties: false },
);
export type TensorSpec = Static<typeof tensorSpec>;

/** The schema of models/<name>/model.yaml. */
export const modelConfigSchema = Type.Object(
  {
    description: Type.Optional(Type.String()),
    runtime: stringEnum(['onnx', 'handler']),
    file: Type.String({
      minLength: 1,
      description: 'The ONNX file, or the JavaScript module exporting predict/predictBatch, relative to the folder.',
    }),
    inputs: Type.Optional(Type.Array(tensorSpec, { minItems: 1 })),
    outputs: Type.Optional(Type.Array(tensorSpec, { minItems: 1 })),
    features: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: 'Names of the single input row, so an instance may also be sent as an object.',
      }),
    ),
    classification: Type.Optional(
      Type.Object(
        {
          labels: Type.Array(Type.String(), { minItems: 2 }),
          label_output: Type.String(),
          probabilities_output: Type.String(),
        },
        { additionalProperties: false },
      ),
    ),
    input_schema: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: 'JSON Schema that handler inputs must match.' }),
    ),
    parameters: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
    max_batch_size: Type.Integer({ minimum: 1, maximum: 4096, default: 1 }),
    batch_wait_ms: Type.Integer({
      minimum: 0,
      maximum: 10_000,
      default: 0,
      description: 'How long a worker waits to fill a batch once it holds at least one request.',
    }),
    concurrency: Type.Integer({ minimum: 1, maximum: 1024, default: 1, description: 'Batches run at once per worker.' }),
    dispatch: stringEnum(['async', 'sync'], {
      default: 'async',
      description:
        'async: requests go through the queue. sync: the gateway sends each straight to a free worker over HTTP and ' +
        'refuses it (429) when every worker is busy, as a synchronous server would.',
    }),
    max_queue_depth: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          'Most requests waiting or running; at this depth the gateway refuses new ones (429 SPILLWAY_QUEUE_FULL with a ' +
          'Retry-After from the measured drain rate). Approximate across gateways. No limit when absent; async dispatch only.',
      }),
    ),
    priorities: Type.Boolean({
      default: false,
      description:
        'Queue high and low requests on topics of their own, which workers serve in order (high, normal, low) with aging; ' +
        'without it every request is served in arrival order, whatever priority it asks for (docs/priorities.md).',
    }),
    priority_aging_takes: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 8,
      description:
        'With priorities: after this many takes in a row that never reached a lower class, the next take serves that class first ' +
        '(up to half of the take), so low requests are never starved.',
    }),
    priority_limits: Type.Optional(
      Type.Object(
        {
          low: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'Share of max_queue_depth the queue may hold when a low request is accepted' })),
          normal: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'The same for a normal request' })),
          high: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'The same for a high request (default 1)' })),
        },
        {
          additionalProperties: false,
          description:
            'How full the queue may be, as a share of max_queue_depth, for a request of each class to be accepted; past it, ' +
            '429 SPILLWAY_PRIORITY_QUEUE_FULL. Keeps room for more urgent work. Needs max_queue_depth.',
        },
      ),
    ),
    max_attempts: Type.Integer({ minimum: 1, maximum: 100, default: 3 }),
    timeout_ms: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: maxDeadlineMs,
        description: 'Default deadline of a request, ms after it is accepted, when the request gives none',
      }),
    ),
    retry_backoff_ms: Type.Integer({ minimum: 0, default: 500 }),
    limits: Type.Object(
      {
        max_input_bytes: Type.Integer({ minimum: 1, default: 1_048_576 }),
        max_instances: Type.Integer({ minimum: 1, default: 1024 }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);
export type ModelConfig = Static<typeof modelConfigSchema>;

/** The models that queue high and low requests apart (`priorities: true`), for topicsFor. */
export function prioritizedModels(specs: Iterable<ModelSpec>): ReadonlySet<string> {
  return new Set([...specs].filter((s) => s.config.priorities && s.config.dispatch === 'async').map((s) => s.name));
}

/** A model as the repository found it: its validated config and where its files live. */
export interface ModelSpec {
  readonly name: string;
  readonly dir: string;
  readonly config: ModelConfig;
}
