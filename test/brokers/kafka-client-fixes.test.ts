import { ConnectionPool, type Broker } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import '../../src/brokers/kafka/kafka-client-fixes.js';

/**
 * The uncaught TypeError that ended a gateway in the broker-restart fault test: a group operation
 * asked the pool for the coordinator while the metadata cached after the restart lacked it.
 */
describe('the Kafka client asked for a broker its metadata does not know (Kafka)', () => {
  const pools: ConnectionPool[] = [];
  const pool = () => {
    const p = new ConnectionPool('spillway-test');
    pools.push(p);
    return p;
  };
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  it('calls back with a retriable error that marks the metadata stale, instead of throwing from the callback', () => {
    const errors: unknown[] = [];
    for (const missing of [undefined, { host: undefined, port: undefined }]) {
      expect(() => pool().get(missing as unknown as Broker, (error) => errors.push(error))).not.toThrow();
    }
    expect(errors).toHaveLength(2);
    for (const error of errors) expect(error).toMatchObject({ code: 'PLT_KFK_NETWORK', canRetry: true, hasStaleMetadata: true });
  });

  it('rejects the promise form the same way', async () => {
    await expect(pool().get(undefined as unknown as Broker)).rejects.toMatchObject({ code: 'PLT_KFK_NETWORK', hasStaleMetadata: true });
  });

  it('leaves a known broker to the client', async () => {
    const p = pool();
    await p.close();
    await expect(p.get({ host: '127.0.0.1', port: 1 })).rejects.toThrow('Connection pool is closed.');
  });
});
