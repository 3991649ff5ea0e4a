import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js';

const base: PredictionRecord = {
  id: 'p1',
  model: 'iris',
  status: 'queued',
  metadata: {},
  created_at: '2026-01-01T00:00:00.000Z',
  attempts: 0,
  metrics: {},
};

function open(retentionMs = 60_000) {
  return SqliteStore.open({ dataDir: mkdtempSync(join(tmpdir(), 'spillway-store-')), retentionMs });
}

describe('sqlite result store', () => {
  it('returns what was put and nothing for unknown ids', async () => {
    const store = open();
    await store.put([base]);
    expect(await store.get('p1')).toEqual(base);
    expect(await store.get('nope')).toBeUndefined();
    await store.close();
  });

  it('moves status forward only, and the first terminal record wins', async () => {
    const store = open();
    const running = { ...base, status: 'running' as const, attempts: 1 };
    const succeeded = { ...base, status: 'succeeded' as const, attempts: 1, output: { label: 'a' } };
    const duplicate = { ...base, status: 'failed' as const, attempts: 2 };
    expect(await store.put([succeeded])).toEqual([succeeded]);
    // put answers what it wrote: nothing here, so a counter of outcomes counts the first only.
    expect(await store.put([running, base, duplicate, succeeded])).toEqual([]);
    expect(await store.get('p1')).toEqual(succeeded);
    await store.close();
  });

  it("lets a later attempt's running record replace an earlier one", async () => {
    const store = open();
    await store.put([{ ...base, status: 'running', attempts: 1, worker: 'w1' }]);
    await store.put([{ ...base, status: 'running', attempts: 2, worker: 'w2' }]);
    expect((await store.get('p1'))?.worker).toBe('w2');
    await store.close();
  });

  it('starts over for a replayed generation: its records supersede the old terminal one, never the reverse', async () => {
    const store = open();
    await store.put([{ ...base, status: 'failed', attempts: 3 }]);
    await store.put([{ ...base, status: 'queued', replay: 1 }]);
    expect(await store.get('p1')).toMatchObject({ status: 'queued', replay: 1 });
    // A late copy of the first generation's outcome changes nothing.
    await store.put([{ ...base, status: 'succeeded', attempts: 3 }]);
    await store.put([{ ...base, status: 'running', attempts: 1, replay: 1 }]);
    await store.put([{ ...base, status: 'running', attempts: 2, replay: 1 }]);
    expect(await store.get('p1')).toMatchObject({ status: 'running', attempts: 2, replay: 1 });
    await store.put([{ ...base, status: 'succeeded', attempts: 2, replay: 1 }]);
    await store.put([{ ...base, status: 'failed', attempts: 3, replay: 1 }]);
    expect(await store.get('p1')).toMatchObject({ status: 'succeeded', replay: 1 });
    await store.close();
  });

  it('forgets records after the retention period', async () => {
    const store = open(50);
    await store.put([base]);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await store.get('p1')).toBeUndefined();
    expect(store.purge()).toBe(1);
    await store.close();
  });

  describe('idempotency keys', () => {
    // Ids are p<n>; each claim's createdAt differs, so a test can tell whose claim it reads.
    const claim = (id: string, fingerprint = 'f1', key = 'k1') => ({
      key,
      fingerprint,
      id,
      createdAt: new Date(Date.UTC(2026, 0, 1) + Number(id.slice(1)) * 1000).toISOString(),
    });

    it('of concurrent claims of one key exactly one wins, across stores sharing the folder', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'spillway-store-'));
      const first = SqliteStore.open({ dataDir, retentionMs: 60_000 });
      const second = SqliteStore.open({ dataDir, retentionMs: 60_000 });
      const ids = Array.from({ length: 20 }, (_, i) => `p${i}`);
      const results = await Promise.all(ids.map((id, i) => (i % 2 === 0 ? first : second).claimIdempotencyKey(claim(id))));
      const winners = ids.filter((_, i) => results[i]!.claimed);
      expect(winners).toHaveLength(1);
      for (const result of results) {
        const holder = { claimed: false, id: winners[0], fingerprint: 'f1', createdAt: claim(winners[0]!).createdAt };
        if (!result.claimed) expect(result).toEqual(holder);
      }
      await Promise.all([first.close(), second.close()]);
    });

    it('answers a later claim with the holder, whatever its fingerprint, and keys are independent', async () => {
      const store = open();
      expect(await store.claimIdempotencyKey(claim('p1'))).toEqual({ claimed: true });
      expect(await store.claimIdempotencyKey(claim('p2', 'other'))).toMatchObject({ claimed: false, id: 'p1', fingerprint: 'f1' });
      expect(await store.claimIdempotencyKey(claim('p3', 'f1', 'k2'))).toEqual({ claimed: true });
      await store.close();
    });

    it('frees a key released by its holder, and only by its holder', async () => {
      const store = open();
      await store.claimIdempotencyKey(claim('p1'));
      await store.releaseIdempotencyKey('k1', 'someone-else');
      expect(await store.claimIdempotencyKey(claim('p2'))).toMatchObject({ claimed: false, id: 'p1' });
      await store.releaseIdempotencyKey('k1', 'p1');
      expect(await store.claimIdempotencyKey(claim('p2'))).toEqual({ claimed: true });
      await store.close();
    });

    it('frees a key after the retention period, and the purge removes it', async () => {
      // The store's clock is Date.now; moving it by hand keeps a slow machine from expiring p2 early.
      vi.useFakeTimers({ toFake: ['Date'] });
      try {
        const store = open(50);
        await store.claimIdempotencyKey(claim('p1'));
        vi.setSystemTime(Date.now() + 80);
        expect(await store.claimIdempotencyKey(claim('p2', 'other'))).toEqual({ claimed: true });
        expect(await store.claimIdempotencyKey(claim('p3'))).toMatchObject({ claimed: false, id: 'p2', fingerprint: 'other' });
        vi.setSystemTime(Date.now() + 80);
        expect(store.purge()).toBe(1);
        await store.close();
      } finally {
        vi.useRealTimers();
      }
    });
  });
});
