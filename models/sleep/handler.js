// @ts-check
import { setTimeout as sleep } from 'node:timers/promises';

/** Longest extra time one request may ask for: ten minutes. */
const maxRequestedMs = 600_000;

/** The extra `sleep_ms` an input object asks for, or 0. */
function requestedMs(/** @type {unknown} */ input) {
  const ms = typeof input === 'object' && input !== null ? /** @type {{ sleep_ms?: unknown }} */ (input).sleep_ms : undefined;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? Math.min(ms, maxRequestedMs) : 0;
}

/**
 * Simulates a model with a fixed service time: `per_batch_ms` for each run plus `per_item_ms`
 * for each input in the batch, the cost shape of a batched GPU model. Holds no CPU meanwhile.
 * An input object may ask for more with `sleep_ms` (the batch takes the largest such extra):
 * a slow request to watch, follow or cancel by hand.
 *
 * @type {import('spillway').HandlerModule['predictBatch']}
 */
export async function predictBatch(inputs, { parameters, signal }) {
  const perBatch = Number(parameters['per_batch_ms'] ?? 50);
  const perItem = Number(parameters['per_item_ms'] ?? 0);
  const serviceMs = perBatch + perItem * inputs.length + Math.max(0, ...inputs.map(requestedMs));
  await sleep(serviceMs, undefined, { signal });
  return inputs.map((input) => ({ input, batch_size: inputs.length, service_ms: serviceMs }));
}
