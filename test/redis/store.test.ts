import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SpillwayError } from '../../src/protocol/errors.js';
import { openStore, type RedisStoreSettings } from '../../src/stores/open-store.js';
import type { ResultStore } from '../../src/stores/store.js';
import { describeStoreConformance, record } from '../stores/conformance.js';
import { closedPort } from '../helpers/ports.js';
import { startOwnRedis, suiteRedis, type SuiteRedis } from './redis-server.js';

let server: SuiteRedis;
let inspector: Redis;

beforeAll(async () => {
  server = await suiteRedis();
  inspector = new Redis(server.url);
});

afterAll(async () => {
  await inspector?.quit();
  await server?.release();
});

// A fresh prefix per store: tests on a shared server never see each other's keys.
const settings = (retentionMs: number, url = server.url): RedisStoreSettings => ({
  kind: 'redis',
  url,
  keyPrefix: `test-${randomUUID()}:`,
  retentionMs,
});

describeStoreConformance('redis', () => ({ settings: ({ retentionMs }) => settings(retentionMs) }));

/** Runs `test` on a store of its own, closing it after. */
async function withStore(s: RedisStoreSettings, test: (store: ResultStore) => Promise<void>): Promise<void> {
  const store = await openStore(s);
  try {
    await test(store);
  } finally {
    await store.close();
  }
}

/** Fails `operation` if it takes longer than this: a store that is down must answer, not hang. */
const promptMs = 3000;

async function unavailable(operation: Promise<unknown>): Promise<SpillwayError> {
  const started = Date.now();
  const error = await operation.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(Date.now() - started).toBeLessThan(promptMs);
  expect(error).toBeInstanceOf(SpillwayError);
  expect((error as SpillwayError).code).toBe('SPILLWAY_STORE_UNAVAILABLE');
  expect((error as SpillwayError).status).toBe(503);
  return error as SpillwayError;
}

function expectEveryOperationUnavailable(store: ResultStore): Promise<unknown> {
  return Promise.all([
    unavailable(store.get('p1')),
    unavailable(store.put([record('p1')])),
    unavailable(store.claimIdempotencyKey({ key: 'k', fingerprint: 'f', id: 'p1', createdAt: '2026-01-01T00:00:00.000Z' })),
    unavailable(store.releaseIdempotencyKey('k', 'p1')),
    unavailable(store.enqueueCallbacks([{ webhookId: 'w', predictionId: 'p1', event: 'completed', url: 'http://127.0.0.1/', body: '{}' }])),
    unavailable(store.claimCallbacks(10, 1000)),
    unavailable(store.callbackDeliveries('p1')),
    unavailable(store.putApiKey({ id: 'k1', tenant: 't', scopes: [], hash: 'ab', createdAt: '2026-01-01T00:00:00.000Z' })),
    unavailable(store.getApiKey('k1')),
    unavailable(store.listApiKeys()),
    unavailable(store.hasApiKeys()),
    unavailable(store.takeTokens([{ name: 'b', ratePerS: 1, burst: 1 }])),
    unavailable(store.joinCapped('s', 'm', 1, Date.now() + 60_000)),
    unavailable(store.leaveCapped('s', ['m'])),
    unavailable(store.ping()),
  ]);
}

describe('redis result store', () => {
  it('keeps records, keys and deliveries under its prefix, each with a Redis TTL of the retention', async () => {
    const retentionMs = 3_600_000;
    const s = settings(retentionMs);
    await withStore(s, async (store) => {
      await store.put([record('p1')]);
      await store.claimIdempotencyKey({ key: 'k1', fingerprint: 'f', id: 'p1', createdAt: '2026-01-01T00:00:00.000Z' });
      await store.enqueueCallbacks([{ webhookId: 'w1', predictionId: 'p1', event: 'completed', url: 'http://127.0.0.1/', body: '{}' }]);
      const keys = (await inspector.keys(`${s.keyPrefix}*`)).sort();
      expect(keys).toEqual(
        [`${s.keyPrefix}prediction:p1`, `${s.keyPrefix}idempotency:k1`, `${s.keyPrefix}{cb}:delivery:w1`, `${s.keyPrefix}{cb}:prediction:p1`, `${s.keyPrefix}{cb}:due`].sort(),
      );
      for (const key of keys.filter((k) => !k.endsWith(':due'))) {
        const ttl = await inspector.pttl(key);
        expect(ttl, key).toBeGreaterThan(0);
        expect(ttl, key).toBeLessThanOrEqual(retentionMs);
      }
      // The due set holds only pending deliveries, and drops expired ones as it meets them.
      expect(await inspector.pttl(`${s.keyPrefix}{cb}:due`)).toBe(-1);
    });
  });

  it('keeps API keys without a TTL, a bucket until it would be full again, a capped set until its last member expires', async () => {
    const s = settings(60_000);
    await withStore(s, async (store) => {
      await store.putApiKey({ id: 'k1', tenant: 'acme', scopes: ['predict'], hash: 'ab', createdAt: '2026-01-01T00:00:00.000Z' });
      // 2 tokens short of full at 0.01 per s: 200 s.
      await store.takeTokens([{ name: 'tenant:acme', ratePerS: 0.01, burst: 2 }]);
      await store.takeTokens([{ name: 'tenant:acme', ratePerS: 0.01, burst: 2 }]);
      await store.takeTokens([{ name: 'fixed', ratePerS: 0, burst: 1 }]);
      await store.joinCapped('tenant:acme:queued', 'soon', 5, Date.now() + 60_000);
      await store.joinCapped('tenant:acme:queued', 'later', 5, Date.now() + 120_000);
      const p = s.keyPrefix;
      expect((await inspector.keys(`${p}*`)).sort()).toEqual(
        [`${p}{apikeys}:key:k1`, `${p}{apikeys}:created`, `${p}{rate}:bucket:tenant:acme`, `${p}{rate}:bucket:fixed`, `${p}capped:tenant:acme:queued`].sort(),
      );
      expect(await inspector.pttl(`${p}{apikeys}:key:k1`)).toBe(-1);
      expect(await inspector.pttl(`${p}{apikeys}:created`)).toBe(-1);
      // A bucket that never refills is kept; one that does, until it would be full (then the same as none).
      expect(await inspector.pttl(`${p}{rate}:bucket:fixed`)).toBe(-1);
      const bucketTtl = await inspector.pttl(`${p}{rate}:bucket:tenant:acme`);
      expect(bucketTtl).toBeGreaterThan(150_000);
      expect(bucketTtl).toBeLessThanOrEqual(200_000);
      const setTtl = await inspector.pttl(`${p}capped:tenant:acme:queued`);
      expect(setTtl).toBeGreaterThan(60_000);
      expect(setTtl).toBeLessThanOrEqual(120_000);
    });
  });

  it("decides buckets and capped sets by the server's clock, not the caller's", async () => {
    await withStore(settings(60_000), async (store) => {
      const slow = { name: 'tenant:acme', ratePerS: 0.001, burst: 1 };
      const expiresAt = Date.now() + 3_600_000;
      expect((await store.takeTokens([slow])).allowed).toBe(true);
      expect((await store.joinCapped('s', 'a', 1, expiresAt)).joined).toBe(true);
      // This gateway's clock jumps two days ahead; the server's does not, so nothing refilled or expired.
      vi.useFakeTimers({ toFake: ['Date'] });
      try {
        vi.setSystemTime(Date.now() + 2 * 86_400_000);
        expect((await store.takeTokens([slow])).allowed).toBe(false);
        expect(await store.joinCapped('s', 'b', 1, Date.now() + 3_600_000)).toEqual({ joined: false, size: 1 });
      } finally {
        vi.useRealTimers();
      }
    });
  });

  it('lets Redis expire a record once its retention has passed', async () => {
    const s = settings(300);
    await withStore(s, async (store) => {
      await store.put([record('short')]);
      const key = `${s.keyPrefix}prediction:short`;
      expect(await inspector.exists(key)).toBe(1);
      await vi.waitFor(async () => expect(await inspector.exists(key)).toBe(0), { timeout: 10_000, interval: 25 });
      expect(await store.get('short')).toBeUndefined();
    });
  });

  it('claims a due delivery even after one whose hash expired by TTL, and drops the expired one', async () => {
    const s = settings(3_600_000);
    await withStore(s, async (store) => {
      await store.enqueueCallbacks([
        { webhookId: 'gone', predictionId: 'p1', event: 'completed', url: 'http://127.0.0.1/', body: '{}' },
        { webhookId: 'kept', predictionId: 'p2', event: 'completed', url: 'http://127.0.0.1/', body: '{}' },
      ]);
      // As if its retention had run out: the hash is gone, its member in the due set is not.
      await inspector.del(`${s.keyPrefix}{cb}:delivery:gone`);
      expect((await store.claimCallbacks(1, 60_000)).map((c) => c.webhookId)).toEqual(['kept']);
      expect(await inspector.zrange(`${s.keyPrefix}{cb}:due`, 0, '-1')).toEqual(['kept']);
    });
  });

  it('answers 503 promptly, never hanging, when nothing listens at its address, and opens all the same', async () => {
    await withStore(settings(60_000, `redis://127.0.0.1:${await closedPort()}`), async (store) => {
      await expectEveryOperationUnavailable(store);
      // Notices are best effort: announcing to a store that is down neither throws nor hangs.
      store.announceStored([record('p1', { status: 'succeeded' })]);
      store.onStored(() => {})();
    });
  });

  it('answers 503 while its server is down, and works again, with what it stored, once the server is back', async () => {
    const own = await startOwnRedis();
    const store = await openStore(settings(60_000, own.url));
    try {
      const p = record('p1', { status: 'succeeded', attempts: 1 });
      await store.put([p]);
      await own.stop();
      await expectEveryOperationUnavailable(store);
      await own.start();
      // ioredis reconnects with backoff (at most 2 s between attempts).
      await vi.waitFor(() => store.ping(), { timeout: 15_000, interval: 100 });
      // appendfsync always: what put had resolved survived the restart.
      expect(await store.get('p1')).toEqual(p);
      // The restarted server knows no scripts: they are loaded again on first use, and the rule holds.
      expect(await store.put([record('p1', { status: 'failed', attempts: 2 })])).toEqual([]);
      expect(await store.claimIdempotencyKey({ key: 'k', fingerprint: 'f', id: 'p2', createdAt: '2026-01-01T00:00:00.000Z' })).toEqual({ claimed: true });
    } finally {
      await store.close();
      await own.destroy();
    }
  });

  it('refuses a malformed URL at open, naming the setting and the problem', async () => {
    for (const [url, problem] of [
      ['redis://127.0.0.1:99999', /port 99999 is out of range/],
      ['http://127.0.0.1:6379', /does not start with redis:\/\//],
      ['redis://user:secret@127.0.0.1:6379', /credentials/],
    ] as const) {
      const error = await openStore(settings(60_000, url)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SpillwayError);
      expect((error as SpillwayError).code).toBe('SPILLWAY_INVALID_CONFIG');
      expect((error as SpillwayError).message).toMatch(problem);
      expect((error as SpillwayError).message).toContain('store');
    }
  });
});
