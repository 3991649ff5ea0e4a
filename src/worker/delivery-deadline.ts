import type { Delivery } from '../brokers/broker.js';
import { headerNames } from '../protocol/envelope.js';

/**
 * A request's deadline (epoch ms) without decoding it: from the header the gateway sets, or,
 * for a message published before that header existed, from its JSON. Undefined: none.
 */
export function deliveryDeadline(delivery: Delivery): number | undefined {
  const header = delivery.headers[headerNames.deadline];
  if (header !== undefined) return Date.parse(header);
  if (!delivery.value.includes('"deadline"')) return undefined;
  try {
    const deadline = (JSON.parse(delivery.value) as { deadline?: unknown }).deadline;
    return typeof deadline === 'string' ? Date.parse(deadline) : undefined;
  } catch {
    return undefined; // not a request: the batch runner dead-letters it
  }
}

/** The earliest deadline of a batch (epoch ms), or undefined when none has one. */
export function earliestDeadline(deliveries: readonly Delivery[]): number | undefined {
  let earliest: number | undefined;
  for (const d of deliveries) {
    const deadline = deliveryDeadline(d);
    if (deadline !== undefined && !Number.isNaN(deadline) && (earliest === undefined || deadline < earliest)) earliest = deadline;
  }
  return earliest;
}
