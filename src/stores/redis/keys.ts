/**
 * The names the Redis store uses, all under the deployment's key prefix, so several deployments
 * may share a server. Records, idempotency keys and capped sets are single-key operations and
 * spread freely; the callback keys share one hash tag, `{cb}`, because the claim and list scripts
 * read delivery keys named by the members of a set, which Redis Cluster allows only within one
 * slot. API keys share `{apikeys}` for the same reason (the list reads the hashes its index
 * names), and token buckets `{rate}` because one take spends from several buckets at once.
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
  /** An API key's hash. */
  apiKey(id: string): string;
  /** Prefix of an API key's hash; the key id follows. */
  readonly apiKeyPrefix: string;
  /** Sorted set of every API key id, scored by creation time (epoch ms): the list, oldest first. */
  readonly apiKeyIndex: string;
  /** A token bucket's hash: {tokens, ts}. */
  rateBucket(name: string): string;
  /** A capped set: a sorted set of members scored by when each stops counting (epoch ms). */
  cappedSet(name: string): string;
}

export function storeKeys(prefix: string): StoreKeys {
  return {
    record: (id) => `${prefix}prediction:${id}`,
    idempotencyKey: (key) => `${prefix}idempotency:${key}`,
    callbacksDue: `${prefix}{cb}:due`,
    deliveryPrefix: `${prefix}{cb}:delivery:`,
    indexPrefix: `${prefix}{cb}:prediction:`,
    notices: `${prefix}stored`,
    apiKey: (id) => `${prefix}{apikeys}:key:${id}`,
    apiKeyPrefix: `${prefix}{apikeys}:key:`,
    apiKeyIndex: `${prefix}{apikeys}:created`,
    rateBucket: (name) => `${prefix}{rate}:bucket:${name}`,
    cappedSet: (name) => `${prefix}capped:${name}`,
  };
}
