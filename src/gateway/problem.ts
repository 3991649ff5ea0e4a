import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { SpillwayError, errorCatalogue, type ErrorCode } from '../protocol/errors.js';

export const problemContentType = 'application/problem+json';

/** An RFC 9457 problem details body, with our stable code and retry hint as extensions. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly instance: string;
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly errors?: readonly { readonly pointer: string; readonly detail: string }[];
}

export function problemType(code: ErrorCode): string {
  return `urn:spillway:problem:${code.replace(/^SPILLWAY_/, '').toLowerCase().replaceAll('_', '-')}`;
}

/** Fastify's own errors, by code, and the catalogue entry each becomes. */
const fastifyCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'SPILLWAY_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'SPILLWAY_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'SPILLWAY_MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'SPILLWAY_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'SPILLWAY_MALFORMED_JSON',
};

/** The one place where any error becomes an HTTP answer. */
export function toSpillwayError(error: unknown): SpillwayError {
  if (error instanceof SpillwayError) return error;
  const e = error as Partial<FastifyError> & Error;
  if (Array.isArray(e.validation)) {
    const where = e.validationContext ?? 'body';
    return new SpillwayError('SPILLWAY_INVALID_REQUEST', `the ${where} does not match the schema`, {
      details: e.validation.map((v) => ({
        pointer: `${where === 'body' ? '' : `/${where}`}${v.instancePath}`,
        message:
          v.keyword === 'additionalProperties'
            ? `unknown property "${String((v.params as { additionalProperty?: unknown }).additionalProperty)}"`
            : (v.message ?? 'invalid'),
      })),
    });
  }
  const mapped = e.code === undefined ? undefined : fastifyCodes[e.code];
  if (mapped !== undefined) return new SpillwayError(mapped, e.message, { cause: error });
  if (error instanceof SyntaxError && e.statusCode === 400) {
    return new SpillwayError('SPILLWAY_MALFORMED_JSON', `malformed JSON: ${e.message}`, { cause: error });
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new SpillwayError('SPILLWAY_INVALID_REQUEST', e.message, { cause: error });
  }
  return new SpillwayError('SPILLWAY_INTERNAL', 'internal error', { cause: error });
}

export function toProblem(error: SpillwayError, instance: string): Problem {
  return {
    type: problemType(error.code),
    title: errorCatalogue[error.code].title,
    status: error.status,
    detail: error.message,
    instance,
    code: error.code,
    retryable: error.retryable,
    ...(error.details.length > 0
      ? { errors: error.details.map((d) => ({ pointer: d.pointer ?? '', detail: d.message })) }
      : {}),
  };
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  const spillwayError = toSpillwayError(error);
  if (spillwayError.status >= 500) request.log.error({ err: error }, spillwayError.message);
  if (spillwayError.retryAfterS !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(spillwayError.retryAfterS))));
  else if (spillwayError.status === 503 || spillwayError.status === 429) reply.header('retry-after', '1');
  return reply
    .code(spillwayError.status)
    .type(problemContentType)
    .send(toProblem(spillwayError, request.url));
}
