import { errorCatalogue, type ErrorCode } from '../protocol/errors.js';
import { problemContentType } from '../http/problem.js';

/**
 * The problem answers of each operation, for its route schema's `response`: one entry per
 * status its codes have in the catalogue, so /openapi.json lists every status the route can
 * send, and Fastify serialises each problem with the Problem schema (it picks a serialiser by
 * status and content type, and problems go out as application/problem+json).
 */

/** What any request can meet: an unreadable request (Node's parser, a URL that does not decode, no Host), a slow one, huge headers, a bug. */
export const anyRequestCodes = ['SPILLWAY_MALFORMED_REQUEST', 'SPILLWAY_REQUEST_TIMEOUT', 'SPILLWAY_HEADERS_TOO_LARGE', 'SPILLWAY_INTERNAL'] as const satisfies readonly ErrorCode[];

/** A path parameter past the router's reach (414) or past the schema's maxLength (422). */
export const pathParamCodes = ['SPILLWAY_URI_TOO_LONG', 'SPILLWAY_INVALID_REQUEST'] as const satisfies readonly ErrorCode[];

/** A route that needs an API key: none or a bad one (401), or one without the route's scope (403); the key store may be down. */
export const authCodes = ['SPILLWAY_UNAUTHENTICATED', 'SPILLWAY_FORBIDDEN', 'SPILLWAY_STORE_UNAVAILABLE'] as const satisfies readonly ErrorCode[];

/**
 * A request body, which the JSON parser reads on any method that may carry one (a POST with
 * no schema for its body too): not JSON, too big, not UTF-8, too deep, a poisoned key.
 */
export const jsonBodyCodes = [
  'SPILLWAY_MALFORMED_JSON',
  'SPILLWAY_BODY_TOO_LARGE',
  'SPILLWAY_UNSUPPORTED_MEDIA_TYPE',
  'SPILLWAY_JSON_TOO_DEEP',
  'SPILLWAY_FORBIDDEN_JSON_KEY',
  'SPILLWAY_INVALID_REQUEST',
] as const satisfies readonly ErrorCode[];

/** Response headers as @fastify/swagger reads them: a schema each, its description lifted out. */
export type ResponseHeaders = Readonly<Record<string, { readonly type: 'string' | 'integer'; readonly description: string }>>;

const retryAfterHeader: ResponseHeaders = {
  'retry-after': { type: 'integer', description: 'Seconds to wait before trying again' },
};

/** Problem, narrowed to one status and the codes that status stands for on this operation. */
interface ProblemOfStatus {
  readonly allOf: readonly [
    { readonly $ref: 'Problem#' },
    {
      readonly type: 'object';
      readonly properties: { readonly status: { readonly enum: readonly [number] }; readonly code: { readonly enum: readonly ErrorCode[] } };
    },
  ];
}

export interface ProblemResponse {
  readonly description: string;
  readonly headers?: ResponseHeaders;
  readonly content: { readonly [problemContentType]: { readonly schema: ProblemOfStatus } };
}

/** The problem answers for `codes` (plus `anyRequestCodes`), keyed by HTTP status. */
export function problemResponses(...codes: readonly (readonly ErrorCode[])[]): Record<number, ProblemResponse> {
  const byStatus = new Map<number, Set<ErrorCode>>();
  for (const code of [...anyRequestCodes, ...codes.flat()]) {
    const { status } = errorCatalogue[code];
    byStatus.set(status, (byStatus.get(status) ?? new Set()).add(code));
  }
  const responses: Record<number, ProblemResponse> = {};
  for (const [status, set] of [...byStatus].sort(([a], [b]) => a - b)) {
    const codes = [...set].sort();
    const listed = codes.map((code) => `- \`${code}\`: ${errorCatalogue[code].title}`);
    responses[status] = {
      description: `Problem details, \`code\` one of:\n\n${listed.join('\n')}`,
      // sendProblem sets Retry-After on every 429 and 503.
      ...(status === 429 || status === 503 ? { headers: retryAfterHeader } : {}),
      // Problem first: the serialiser writes the fields in the order of the schemas it merges.
      // enum, not const: for a const it writes the schema's value, whatever the problem holds.
      content: {
        [problemContentType]: {
          schema: { allOf: [{ $ref: 'Problem#' }, { type: 'object', properties: { status: { enum: [status] }, code: { enum: codes } } }] },
        },
      },
    };
  }
  return responses;
}

/** A JSON answer whose body is `schema`, for a route schema's `response`. */
export function jsonResponse<S extends object>(description: string, schema: S, headers?: ResponseHeaders) {
  return { description, ...(headers === undefined ? {} : { headers }), content: { 'application/json': { schema } } };
}
