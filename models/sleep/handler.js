// @ts-check
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Simulates a model with a fixed service time: `per_batch_ms` for each run plus `per_item_ms`
 * for each input in the batch, the cost shape of a batched GPU model. Holds no CPU meanwhile.
 *
 * @type {import('spillway').HandlerModule['predictBatch']}
 */
export async function predictBatch(inputs, { parameters, signal }) {
  const perBatch = Number(parameters['per_batch_ms'] ?? 50);
  const perItem = Number(parameters['per_item_ms'] ?? 0);
  const serviceMs = perBatch + perItem * inputs.length;
  await sleep(serviceMs, undefined, { signal });
  return inputs.map((input) => ({ input, batch_size: inputs.length, service_ms: serviceMs }));
}
