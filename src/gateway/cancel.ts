import type { FastifyBaseLogger } from 'fastify';
import { cancelMessage, controlRetentionMs } from '../protocol/control.js';
import { responseMessage } from '../protocol/envelope.js';
import { SpillwayError } from '../protocol/errors.js';
import { isTerminal, type PredictionRecord } from '../protocol/prediction.js';
import { finishedRecord } from '../protocol/prediction-records.js';
import type { GatewayContext } from './context.js';
import { readPrediction, readStored } from './read-prediction.js';
import type { Caller } from './tenancy/authenticator.js';

// Kafka creates a topic on first use with its default retention; ours must be set first.
const ensured = new WeakMap<GatewayContext, Promise<void>>();
function ensureControlTopic(ctx: GatewayContext): Promise<void> {
  let done = ensured.get(ctx);
  if (done === undefined) {
    done = ctx.broker.ensureTopic(ctx.topics.control, { retentionMs: controlRetentionMs });
    done.catch(() => ensured.delete(ctx));
    ensured.set(ctx, done);
  }
  return done;
}

/**
 * Cancels a queued or running prediction: tells the workers first (so a failure leaves nothing
 * changed), then stores the canceled record, publishes it on the response stream for other
 * gateways and subscribers, and wakes the clients waiting here. Returns the stored record.
 */
export async function cancelPrediction(ctx: GatewayContext, caller: Caller, id: string, log: FastifyBaseLogger): Promise<PredictionRecord> {
  const current = await readPrediction(ctx, caller, id);
  if (isTerminal(current.status)) throw new SpillwayError('SPILLWAY_PREDICTION_FINAL', `prediction ${id} is already ${current.status}`);
  const now = Date.now();
  try {
    await ensureControlTopic(ctx);
    await ctx.broker.publish(ctx.topics.control, [cancelMessage({ id, model: current.model, canceled_at: new Date(now).toISOString() })]);
  } catch (error) {
    throw new SpillwayError('SPILLWAY_BROKER_UNAVAILABLE', 'the cancel could not be sent to the workers; nothing changed', { cause: error });
  }
  // From here the workers will not start it; if the store write fails, a worker that reaches
  // the request publishes the canceled record itself.
  let written: readonly PredictionRecord[];
  try {
    written = await ctx.store.put([finishedRecord(current, { status: 'canceled' }, now)]);
  } catch (error) {
    throw new SpillwayError('SPILLWAY_STORE_UNAVAILABLE', undefined, { cause: error });
  }
  const stored = (await readStored(ctx, id)) ?? finishedRecord(current, { status: 'canceled' }, now);
  // The store keeps the first final record: a result that got there first is the outcome.
  if (stored.status !== 'canceled') throw new SpillwayError('SPILLWAY_PREDICTION_FINAL', `prediction ${id} became ${stored.status} first`);
  // Counted here because the store writer will find it already stored (and count nothing) when
  // the copies published below and by the worker that skips the request come by.
  if (written.length > 0) ctx.finished([stored]);
  ctx.waiters.resolve(stored);
  ctx.listeners.notify(stored);
  await ctx.broker
    .publish(ctx.topics.responses, [responseMessage(stored)])
    .catch((error: unknown) => log.warn({ err: error, id }, 'could not publish a cancel to the response stream'));
  return stored;
}
