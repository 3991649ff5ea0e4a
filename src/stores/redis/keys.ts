/**
 * The names the Redis store uses, all under the deployment's key prefix, so several deployments
 * may share a server. Records and idempotency keys are single-key operations and spread freely;
 * the callback keys share one hash tag, `{cb}`, because the claim and list scripts read delivery
 * keys named by the members of a set, which Redis Cluster allows only within one slot.
 */
export interface StoreKeys {
  record(id: string): string;
  idempotencyKey(key: string): string;
  /** Sorted set of pending webhook ids, scored by when each may next be claimed. */
  readonly callbacksDue: string;
  /** Prefix of a delivery's hash; the webhook id follows. */
  readonly deliveryPrefix: string;
  /** Prefix of a prediction's delivery index (a sorted set by enqueue time); the prediction id follows. */
  readonly indexPrefix: string;
  /** Pub/sub channel of stored notices. */
  readonly notices: string;
}

export function storeKeys(prefix: string): StoreKeys {
  return {
    record: (id) => `${prefix}prediction:${id}`,
    idempotencyKey: (key) => `${prefix}idempotency:${key}`,
    callbacksDue: `${prefix}{cb}:due`,
    deliveryPrefix: `${prefix}{cb}:delivery:`,
    indexPrefix: `${prefix}{cb}:prediction:`,
    notices: `${prefix}stored`,
  };
}
