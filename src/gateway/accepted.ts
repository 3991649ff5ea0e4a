import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem } from '../http/problem.js';
import type { PredictionRecord } from '../protocol/prediction.js';
import { bodyFieldCodes } from './problem.js';

/**
 * Requests whose prediction the queue has accepted (or a sync worker has run), with the record
 * to fall back on. Once accepted, an error while answering must not become a 5xx that invites
 * the client to submit again: the answer is the prediction's Location instead.
 */
const accepted = new WeakMap<FastifyRequest, PredictionRecord>();

export function markAccepted(request: FastifyRequest, record: PredictionRecord): void {
  accepted.set(request, record);
}

/**
 * Answers an accepted request whose answer failed (its result would not serialise, say) with
 * 202 and the Location to poll; undefined when the request was never accepted.
 */
export function answerAccepted(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply | undefined {
  const record = accepted.get(request);
  if (record === undefined) return undefined;
  accepted.delete(request);
  request.log.error({ err: error, id: record.id }, 'answering an accepted prediction failed; answered 202 with its Location');
  return reply.code(202).header('location', `/v1/predictions/${record.id}`).send(record);
}

/** The gateway's error handler: accepted requests get their Location, the rest a problem. */
export function answerError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return answerAccepted(request, reply, error) ?? sendProblem(request, reply, error, bodyFieldCodes);
}
