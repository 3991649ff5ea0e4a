import type { FastifyBaseLogger } from 'fastify';
import { responseMessage, type RequestEnvelope } from '../protocol/envelope.js';
import { SpillwayError } from '../protocol/errors.js';
import type { PredictionRecord } from '../protocol/prediction.js';
import { finishedRecord, runningRecord } from '../protocol/prediction-records.js';
import type { GatewayContext } from './context.js';

/**
 * `dispatch: sync`: the request goes straight to a free worker and the client waits on the
 * connection whatever its Prefer header says; when every worker is busy it is refused (429).
 * The finished record still goes on the response stream, for the store and other subscribers.
 */
export async function runSync(ctx: GatewayContext, envelope: RequestEnvelope, log: FastifyBaseLogger): Promise<PredictionRecord> {
  let ran;
  try {
    ran = await ctx.syncDispatcher.run(envelope.model, { id: envelope.id, input: envelope.input });
  } catch (error) {
    if (error instanceof SpillwayError && error.code === 'SPILLWAY_SATURATED') ctx.metrics.requestAnswered(envelope.model, 429);
    throw error;
  }
  const { worker, result } = ran;
  const running = runningRecord(envelope, { worker, attempts: 1 }, Date.parse(result.started_at));
  const outcome = result.ok ? { status: 'succeeded' as const, output: result.output } : { status: 'failed' as const, error: result.error };
  const record = finishedRecord(running, outcome, Date.parse(result.completed_at), result.timings ?? { inference_ms: result.inference_ms });
  ctx.metrics.requestAnswered(envelope.model, 200);
  ctx.broker
    .publish(ctx.topics.responses, [responseMessage(record)])
    .catch((error: unknown) => log.warn({ err: error, id: record.id }, 'could not publish a sync result to the response stream'));
  return record;
}
