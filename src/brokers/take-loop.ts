import { SubscriptionClosedError, type Delivery, type TakeOptions } from './broker.js';

export type Signals = readonly (AbortSignal | undefined)[];

/**
 * The shape every adapter's take() shares: look for work, and if there is none, wait for a sign
 * of some (or the timeout, or an abort), then look again.
 */
export async function takeLoop(
  max: number,
  options: TakeOptions,
  closing: AbortSignal,
  step: {
    /** Up to `max` deliveries, or [] when none is ready now. */
    attempt(max: number): Delivery[] | Promise<Delivery[]>;
    /** Resolves when work may have arrived, after at most `ms`, or when a signal aborts. */
    wait(ms: number, signals: Signals): Promise<void>;
  },
): Promise<Delivery[]> {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`take(max) needs a positive integer, got ${max}`);
  if (closing.aborted) throw new SubscriptionClosedError();
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  const signals: Signals = [options.signal, closing];
  for (;;) {
    if (signals.some((s) => s?.aborted === true)) return [];
    const taken = await step.attempt(max);
    if (taken.length > 0) return taken;
    const remaining = deadline - Date.now();
    if (remaining <= 0) return [];
    await step.wait(remaining, signals);
  }
}
