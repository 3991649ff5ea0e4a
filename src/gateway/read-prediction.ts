import { SpillwayError } from '../protocol/errors.js';
import type { PredictionRecord } from '../protocol/prediction.js';
import type { GatewayContext } from './context.js';
import { mayAccess } from './tenancy/auth-hook.js';
import type { Caller } from './tenancy/authenticator.js';

/** The stored record of `id`, if any; SPILLWAY_STORE_UNAVAILABLE when the store does not answer. */
export async function readStored(ctx: Pick<GatewayContext, 'store'>, id: string): Promise<PredictionRecord | undefined> {
  try {
    return await ctx.store.get(id);
  } catch (error) {
    throw new SpillwayError('SPILLWAY_STORE_UNAVAILABLE', undefined, { cause: error });
  }
}

/**
 * The prediction `caller` asks for. Another tenant's is as unknown as a missing one (404, never
 * 403), so that an id is not confirmed to someone who may not see it.
 */
export async function readPrediction(ctx: Pick<GatewayContext, 'store'>, caller: Caller, id: string): Promise<PredictionRecord> {
  const found = await readStored(ctx, id);
  if (found === undefined || !mayAccess(caller, found.tenant)) throw new SpillwayError('SPILLWAY_PREDICTION_NOT_FOUND', `no prediction with id "${id}"`);
  return found;
}
