import { Type, type Static } from '@sinclair/typebox';
import { stringEnum } from './string-enum.js';

/**
 * The one error catalogue. Every failure Spillway reports, over HTTP or inside a prediction
 * record, carries one of these codes; docs/errors.md documents each (a test keeps them in step).
 */
export const errorCatalogue = {
  SPILLWAY_MALFORMED_JSON: { status: 400, retryable: false, title: 'The request body is not valid JSON' },
  SPILLWAY_JSON_TOO_DEEP: {
    status: 422,
    retryable: false,
    title: 'The request body nests arrays and objects deeper than the gateway allows',
  },
  SPILLWAY_FORBIDDEN_JSON_KEY: {
    status: 422,
    retryable: false,
    title: 'The request body has a key that could rewrite object prototypes (__proto__, constructor.prototype)',
  },
  SPILLWAY_MALFORMED_REQUEST: {
    status: 400,
    retryable: false,
    title: 'The HTTP request could not be read (bad syntax, or a URL that does not decode)',
  },
  SPILLWAY_URI_TOO_LONG: { status: 414, retryable: false, title: 'A path parameter is longer than the gateway reads' },
  SPILLWAY_HEADERS_TOO_LARGE: {
    status: 431,
    retryable: false,
    title: 'The request headers are larger than the gateway reads',
  },
  SPILLWAY_REQUEST_TIMEOUT: {
    status: 408,
    retryable: true,
    title: 'The request was not received in time',
  },
  SPILLWAY_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    retryable: false,
    title: 'The request body must be application/json',
  },
  SPILLWAY_INVALID_REQUEST: {
    status: 422,
    retryable: false,
    title: 'The request does not match the API schema',
  },
  SPILLWAY_INVALID_INPUT: {
    status: 422,
    retryable: false,
    title: "The input does not match the model's declared inputs",
  },
  SPILLWAY_INVALID_DEADLINE: {
    status: 422,
    retryable: false,
    title: 'The deadline is in the past, unreadable, or given twice',
  },
  SPILLWAY_BODY_TOO_LARGE: { status: 413, retryable: false, title: 'The request body is over the size limit' },
  SPILLWAY_ROUTE_NOT_FOUND: { status: 404, retryable: false, title: 'No such route' },
  SPILLWAY_MODEL_NOT_FOUND: { status: 404, retryable: false, title: 'No such model' },
  SPILLWAY_SCHEMA_NOT_FOUND: { status: 404, retryable: false, title: 'No such message schema' },
  SPILLWAY_PREDICTION_NOT_FOUND: { status: 404, retryable: false, title: 'No such prediction' },
  SPILLWAY_PREDICTION_FINAL: {
    status: 409,
    retryable: false,
    title: 'The prediction is already final and can no longer be canceled',
  },
  SPILLWAY_TOO_MANY_STREAMS: {
    status: 503,
    retryable: true,
    title: 'The gateway is serving as many event streams as it allows',
  },
  SPILLWAY_IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    retryable: false,
    title: 'The Idempotency-Key was already used with a different request',
  },
  SPILLWAY_UNAUTHENTICATED: {
    status: 401,
    retryable: false,
    title: 'The request carries no valid API key (Authorization: Bearer <key>)',
  },
  SPILLWAY_FORBIDDEN: { status: 403, retryable: false, title: 'The API key does not have the scope this operation needs' },
  SPILLWAY_RATE_LIMITED: {
    status: 429,
    retryable: true,
    title: "The tenant's requests come faster than its rate limit; the request was not queued",
  },
  SPILLWAY_TENANT_QUEUE_FULL: {
    status: 429,
    retryable: true,
    title: 'The tenant already has as many predictions open as its limit allows; the request was not queued',
  },
  SPILLWAY_BROKER_UNAVAILABLE: {
    status: 503,
    retryable: true,
    title: 'The queue could not accept the request; nothing was queued',
  },
  SPILLWAY_STORE_UNAVAILABLE: { status: 503, retryable: true, title: 'The result store is unavailable' },
  SPILLWAY_SHUTTING_DOWN: { status: 503, retryable: true, title: 'The gateway is shutting down' },
  SPILLWAY_SATURATED: {
    status: 429,
    retryable: true,
    title: 'Every worker of this synchronously dispatched model is busy; the request was not run',
  },
  SPILLWAY_QUEUE_FULL: {
    status: 429,
    retryable: true,
    title: "The model's queue is at its max_queue_depth; the request was not queued",
  },
  SPILLWAY_PRIORITY_QUEUE_FULL: {
    status: 429,
    retryable: true,
    title: "The model's queue is at the share of its max_queue_depth that the request's priority may fill (priority_limits); the request was not queued",
  },
  SPILLWAY_NO_WORKERS: { status: 503, retryable: true, title: 'No worker is serving this model' },
  SPILLWAY_SYNC_UNAUTHORIZED: {
    status: 401,
    retryable: false,
    title: "The call to a worker's sync endpoint lacks the deployment's sync secret",
  },
  SPILLWAY_WORKER_FAILED: {
    status: 502,
    retryable: true,
    title: 'The worker running this synchronous request failed before answering',
  },
  SPILLWAY_INTERNAL: { status: 500, retryable: true, title: 'Internal error' },
  SPILLWAY_MODEL_FAILED: { status: 500, retryable: false, title: 'The model raised an error' },
  SPILLWAY_MODEL_LOAD_FAILED: { status: 503, retryable: false, title: 'The model could not be loaded' },
  SPILLWAY_STEP_OUTPUT_INVALID: {
    status: 500,
    retryable: false,
    title: "A pipeline step's output does not match the next step's declared input",
  },
  SPILLWAY_ATTEMPTS_EXHAUSTED: {
    status: 500,
    retryable: false,
    title: 'The prediction failed on every allowed attempt',
  },
  SPILLWAY_DEADLINE_EXCEEDED: {
    status: 504,
    retryable: false,
    title: 'The deadline passed before a worker could start the prediction',
  },
  SPILLWAY_UNDECODABLE_MESSAGE: {
    status: 500,
    retryable: false,
    title: 'A message on a request topic could not be decoded',
  },
  SPILLWAY_INVALID_CALLBACK: {
    status: 422,
    retryable: false,
    title: 'The callback is not a valid http(s) URL, or names an unknown event',
  },
  SPILLWAY_CALLBACK_REFUSED: {
    status: 422,
    retryable: false,
    title: 'The callback URL points to a destination Spillway does not send to',
  },
  SPILLWAY_CALLBACK_FAILED: {
    status: 502,
    retryable: false,
    title: 'A callback was not delivered within its attempts',
  },
  SPILLWAY_INVALID_CONFIG: { status: 500, retryable: false, title: 'The configuration is invalid' },
  SPILLWAY_INVALID_MODEL_CONFIG: { status: 500, retryable: false, title: "A model's configuration is invalid" },
} as const satisfies Record<string, { status: number; retryable: boolean; title: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export const errorCodeSchema = stringEnum(Object.keys(errorCatalogue) as ErrorCode[], {
  description: 'Stable SPILLWAY_… code, see docs/errors.md',
});

export const errorDetailSchema = Type.Object(
  {
    pointer: Type.Optional(Type.String({ description: 'Where the problem is: a JSON pointer into the request, a config path, a tensor name' })),
    message: Type.String(),
  },
  { additionalProperties: false },
);
export type ErrorDetail = Readonly<Static<typeof errorDetailSchema>>;

/** The serialisable form of an error, as it appears in a prediction record or a message. */
export const errorBodySchema = Type.Object(
  {
    code: errorCodeSchema,
    message: Type.String(),
    retryable: Type.Boolean(),
    details: Type.Optional(Type.Array(errorDetailSchema)),
  },
  { additionalProperties: false },
);
export type ErrorBody = Readonly<Static<typeof errorBodySchema>>;

export class SpillwayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: readonly ErrorDetail[];
  /** Seconds a client should wait before trying again (the Retry-After of a 429 or 503). */
  readonly retryAfterS: number | undefined;
  /** More headers the HTTP answer carries (WWW-Authenticate of a 401, RateLimit of a 429). */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options: { cause?: unknown; details?: readonly ErrorDetail[]; retryable?: boolean; retryAfterS?: number; headers?: Readonly<Record<string, string>> } = {},
  ) {
    const spec = errorCatalogue[code];
    super(message ?? spec.title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SpillwayError';
    this.code = code;
    this.status = spec.status;
    this.retryable = options.retryable ?? spec.retryable;
    this.details = options.details ?? [];
    this.retryAfterS = options.retryAfterS;
    this.headers = options.headers;
  }

  toBody(): ErrorBody {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.details.length > 0 ? { details: [...this.details] } : {}),
    };
  }
}

/** A readable one-line reason from anything thrown, keeping the cause chain. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause === undefined ? '' : `: ${describeError(error.cause)}`;
  return `${error.message}${cause}`;
}
