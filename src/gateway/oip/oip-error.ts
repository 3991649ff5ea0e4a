import type { FastifyReply, FastifyRequest } from 'fastify';
import { toSpillwayError } from '../../http/problem.js';
import { SpillwayError } from '../../protocol/errors.js';
import { answerAccepted } from '../accepted.js';

/**
 * The protocol's status for one of Spillway's: the protocol has no 422, and its clients treat a
 * request they got wrong as 400, so Spillway's 422s (invalid input, schema, deadline, callback)
 * answer 400 here. Every other status stands.
 */
export function oipErrorStatus(status: number): number {
  return status === 422 ? 400 : status;
}

/** The protocol's error body, `{"error": "..."}`, with Spillway's stable code beside it. */
export function oipErrorBody(error: SpillwayError): { error: string; code: string } {
  // Clients show only `error`, so the first problems found are spelled out in it.
  const details = error.details.slice(0, 5).map((d) => `${d.pointer ?? ''} ${d.message}`.trim());
  const more = error.details.length > 5 ? `; and ${error.details.length - 5} more` : '';
  const message = details.length === 0 ? error.message : `${error.message}: ${details.join('; ')}${more}`;
  return { error: message, code: error.code };
}

/**
 * The error handler of /v2 routes: every error, Spillway's own (auth, limits, backpressure)
 * included, answers as the protocol states, with the same Retry-After and WWW-Authenticate
 * headers as on /v1. A request the queue already accepted is answered with its Location instead.
 */
export function answerOipError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const accepted = answerAccepted(request, reply, error);
  if (accepted !== undefined) return accepted;
  const e = toSpillwayError(error);
  if (e.status >= 500) request.log.error({ err: error }, e.message);
  if (e.headers !== undefined) reply.headers(e.headers);
  if (e.retryAfterS !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(e.retryAfterS))));
  else if (e.status === 503 || e.status === 429) reply.header('retry-after', '1');
  return reply.code(oipErrorStatus(e.status)).type('application/json').send(oipErrorBody(e));
}

/** Unknown paths under /v2 (the repository and shared-memory extensions, say) answer 404 in the protocol's form. */
export function answerOipNotFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return answerOipError(new SpillwayError('SPILLWAY_ROUTE_NOT_FOUND', `no route ${request.method} ${request.url}`), request, reply);
}
