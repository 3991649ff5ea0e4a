import type { FastifyBaseLogger } from 'fastify';
import { responseMessage } from '../protocol/envelope.js';
import type { PredictionRecord } from '../protocol/prediction.js';
import type { GatewayContext } from './context.js';
import { overdue } from './deadline.js';

/**
 * A worker that started a request just before its deadline announces `running` within
 * `worker.running_after_ms` (100 ms by default); waiting this long after the deadline before
 * declaring a queued request expired keeps such a request from being expired while it runs.
 */
export const expiryGraceMs = 250;

/**
 * If `record` (or what the store now holds for it) is still queued past its deadline plus the
 * grace, no worker will start it: store it as expired, tell the response stream and any client
 * waiting here, and return the stored record.
 */
export async function expireIfOverdue(ctx: GatewayContext, record: PredictionRecord, log: FastifyBaseLogger): Promise<PredictionRecord | undefined> {
  try {
    const now = Date.now();
    if (record.deadline === undefined || Date.parse(record.deadline) + expiryGraceMs > now) return undefined;
    const current = (await ctx.store.get(record.id)) ?? record;
    const expired = overdue(current, now);
    if (expired === undefined) return undefined;
    const written = await ctx.store.put([expired]);
    const stored = (await ctx.store.get(record.id)) ?? expired;
    // The store writer counts only what it writes itself; this record it will find stored.
    if (written.length > 0) ctx.finished([stored]);
    ctx.waiters.resolve(stored);
    ctx.broker.publish(ctx.topics.responses, [responseMessage(stored)]).catch((error: unknown) => log.warn({ err: error, id: record.id }, 'could not publish an expiry'));
    return stored;
  } catch (error) {
    log.warn({ err: error, id: record.id }, 'could not check the deadline');
    return undefined;
  }
}
