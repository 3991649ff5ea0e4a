import { ConnectionPool, NetworkError, type Broker } from '@platformatic/kafka';

const patched = Symbol.for('spillway.kafka.guardMissingBroker');

type Get = (this: ConnectionPool, broker: Broker, callback?: (error: Error | null, connection?: unknown) => void) => unknown;

/**
 * Fixes to @platformatic/kafka 1.x that its 1.x releases lack, applied once when this module is
 * imported (kafka-broker.ts does). Each one guards a path where the client throws inside one of
 * its own callbacks: nothing can catch that, so it is an uncaught exception that ends the process.
 */

/**
 * A broker missing from the client's metadata. While a broker shuts down or restarts, the
 * metadata the client caches can lack the node FindCoordinator named, and a group operation (the
 * heartbeat, a join) then asks its pool for `metadata.brokers.get(coordinatorId)`, which is
 * undefined. 1.35.0's ConnectionPool reads `broker.host` off it and throws a TypeError inside the
 * client's callbacks: a gateway or worker exits just as the broker goes away (seen in the
 * broker-restart fault test). Here it is a retriable network error that marks the metadata stale
 * instead: the operation fails like any other during an outage, a later one (the client refreshes
 * metadata older than 5 s) finds the coordinator, and our subscriptions recover as they do from a
 * broker outage. The same fix as upstream's f8699b9 ("handle stale/incomplete metadata during
 * group rejoin instead of crashing"), which is only in 2.x; drop this when moving to 2.x.
 */
function guardMissingBroker(): void {
  const proto = ConnectionPool.prototype as ConnectionPool & { [patched]?: true };
  if (proto[patched] === true) return;
  const get = Object.getOwnPropertyDescriptor(proto, 'get')?.value as Get;
  const guarded: Get = function (broker, callback) {
    if (isUsableBroker(broker)) return get.call(this, broker, callback);
    const error = new NetworkError('Cannot get a connection: the broker is not in the current cluster metadata.', {
      canRetry: true,
      hasStaleMetadata: true,
      broker,
    });
    if (callback === undefined) return Promise.reject(error);
    callback(error);
    return undefined;
  };
  Object.defineProperty(proto, 'get', { value: guarded, writable: true, configurable: true });
  Object.defineProperty(proto, patched, { value: true });
}

function isUsableBroker(broker: Broker | undefined | null): broker is Broker {
  return broker != null && broker.host != null && broker.port != null;
}

guardMissingBroker();
