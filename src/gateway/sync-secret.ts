/**
 * How the deployment's sync secret (`worker.sync_secret`) reaches the SyncDispatcher of a
 * gateway. createGateway builds its dispatcher from the worker registry alone and its options
 * have no field for the secret yet, so the caller wraps it:
 *
 *     const gateway = await withSyncSecret(secret, () => createGateway(options));
 *
 * Every dispatcher constructed during that call (createGateway builds its dispatcher before its
 * first await, so within the synchronous part) takes `secret`; none constructed later does, so
 * nothing lingers between gateways of one process. A dispatcher built without a secret refuses
 * sync calls (503) rather than make them unauthenticated, which the sync tests would notice.
 *
 * Interim: once GatewayOptions carries `syncSecret` and createGateway passes it on
 * (`new SyncDispatcher(registry, { secret: o.syncSecret })`), this file goes.
 */

let constructing: string | undefined;

export function withSyncSecret<T>(secret: string | undefined, create: () => T): T {
  const outer = constructing;
  constructing = secret;
  try {
    return create();
  } finally {
    constructing = outer;
  }
}

/** The secret given to the withSyncSecret call now running, if any. */
export function syncSecretInConstruction(): string | undefined {
  return constructing;
}
