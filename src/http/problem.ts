import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { SpillwayError, errorCatalogue, errorCodeSchema, type ErrorCode } from '../protocol/errors.js';

/**
 * RFC 9457 problem+json, the one way any Spillway HTTP server (the gateway, a worker's sync
 * endpoint) answers an error. Fastify-based, so both servers map the framework's errors alike.
 */

export const problemContentType = 'application/problem+json';

/** Problem objects list only their declared fields: the serialiser drops any other. */
const closed = { additionalProperties: false } as const;

/** An RFC 9457 problem details body, with our stable code and retry hint as extensions. */
export const problemSchema = Type.Object(
  {
    type: Type.String({ format: 'uri', description: 'urn:spillway:problem:… named after the code' }),
    title: Type.String(),
    status: Type.Integer({ minimum: 400, maximum: 599, description: 'The HTTP status, repeated' }),
    detail: Type.String(),
    instance: Type.String({ format: 'uri-reference', description: 'The request path (empty when the request could not be read)' }),
    code: errorCodeSchema,
    retryable: Type.Boolean(),
    errors: Type.Optional(
      Type.Array(
        Type.Object(
          {
            pointer: Type.String({ description: 'JSON pointer into the request: the body, or /params/…, /headers/…' }),
            detail: Type.String(),
          },
          closed,
        ),
        { minItems: 1 },
      ),
    ),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details', ...closed },
);

export type Problem = Readonly<Static<typeof problemSchema>>;

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
  FST_ERR_BAD_URL: 'SPILLWAY_MALFORMED_REQUEST',
  FST_ERR_MAX_PARAM_LENGTH: 'SPILLWAY_URI_TOO_LONG',
};

/**
 * Body fields (JSON pointer prefixes) whose schema violations keep a code of their own instead
 * of SPILLWAY_INVALID_REQUEST. Which fields those are is the server's business.
 */
export type FieldCodes = readonly (readonly [string, ErrorCode])[];

/** The one place where any error becomes an HTTP answer. */
export function toSpillwayError(error: unknown, fieldCodes: FieldCodes = []): SpillwayError {
  if (error instanceof SpillwayError) return error;
  const e = error as Partial<FastifyError> & Error;
  if (Array.isArray(e.validation)) {
    const where = e.validationContext ?? 'body';
    const field = where === 'body' ? fieldCodes.find(([prefix]) => e.validation?.some((v) => v.instancePath.startsWith(prefix))) : undefined;
    const details = e.validation.map((v) => ({
      pointer: `${where === 'body' ? '' : `/${where}`}${v.instancePath}`,
      message: validationMessage(v),
    }));
    const first = details[0] === undefined ? '' : `: ${details[0].pointer || '(root)'} ${details[0].message}`;
    return new SpillwayError(field?.[1] ?? 'SPILLWAY_INVALID_REQUEST', `the ${where} does not match the schema${first}`, { details });
  }
  const mapped = e.code === undefined ? undefined : fastifyCodes[e.code];
  // The router's message repeats the whole path, however long.
  if (mapped === 'SPILLWAY_URI_TOO_LONG') return new SpillwayError(mapped, 'a path parameter is longer than the router reads', { cause: error });
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

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: unknown, fieldCodes: FieldCodes = []): FastifyReply {
  const spillwayError = toSpillwayError(error, fieldCodes);
  if (spillwayError.status >= 500) request.log.error({ err: error }, spillwayError.message);
  if (spillwayError.headers !== undefined) reply.headers(spillwayError.headers);
  if (spillwayError.retryAfterS !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(spillwayError.retryAfterS))));
  else if (spillwayError.status === 503 || spillwayError.status === 429) reply.header('retry-after', '1');
  return reply
    .code(spillwayError.status)
    .type(problemContentType)
    .send(toProblem(spillwayError, asUriReference(request.url)));
}

/**
 * `instance` must be a URI reference (RFC 9457), and a refused URL may hold a `%` that starts
 * no escape (the very reason it was refused): such a `%` is escaped itself.
 */
function asUriReference(url: string): string {
  return url.replace(/%(?![0-9A-Fa-f]{2})/g, '%25');
}

/** Ajv's message, with the names it leaves out: the unknown property, the allowed values. */
function validationMessage(v: NonNullable<FastifyError['validation']>[number]): string {
  const params = v.params as { additionalProperty?: unknown; allowedValues?: unknown };
  if (v.keyword === 'additionalProperties') return `unknown property "${String(params.additionalProperty)}"`;
  if (v.keyword === 'enum' && Array.isArray(params.allowedValues)) return `must be one of: ${params.allowedValues.join(', ')}`;
  return v.message ?? 'invalid';
}

/** Node's HTTP parser errors, answered before any route runs, by the code Node gives them. */
const clientErrorCodes: Readonly<Record<string, ErrorCode>> = {
  HPE_HEADER_OVERFLOW: 'SPILLWAY_HEADERS_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'SPILLWAY_REQUEST_TIMEOUT',
};

/**
 * Fastify's `clientErrorHandler`: a request Node could not parse gets a problem+json answer
 * written straight to the socket (there is no request object yet), then the socket is closed.
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const code = (error.code === undefined ? undefined : clientErrorCodes[error.code]) ?? 'SPILLWAY_MALFORMED_REQUEST';
  const spillwayError = new SpillwayError(code, code === 'SPILLWAY_MALFORMED_REQUEST' ? `the HTTP request could not be parsed (${error.code ?? error.message})` : undefined);
  const body = JSON.stringify(toProblem(spillwayError, ''));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${spillwayError.status} ${STATUS_CODES[spillwayError.status] ?? 'Error'}\r\n` +
        `Content-Type: ${problemContentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

