// @ts-check
/** Returns its input unchanged: the cheapest model, for measuring Spillway's own overhead. */

/** @type {import('spillway').HandlerModule['predictBatch']} */
export function predictBatch(inputs) {
  return inputs;
}
