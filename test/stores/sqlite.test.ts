import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, vi } from 'vitest';
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js';
import { describeStoreConformance, record } from './conformance.js';

describeStoreConformance('sqlite', () => ({
  settings: ({ retentionMs }) => ({ kind: 'sqlite', dataDir: mkdtempSync(join(tmpdir(), 'spillway-store-')), retentionMs }),
}));

const base = record('p1');

const claim = (id: string, fingerprint = 'f1') => ({ key: 'k1', fingerprint, id, createdAt: '2026-01-01T00:00:00.000Z' });

describe('sqlite result store', () => {
  it('keeps its data in results.db in write-ahead-log mode, beside the queue', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'spillway-store-'));
    const store = SqliteStore.open({ dataDir, retentionMs: 60_000 });
    await store.put([base]);
    expect(existsSync(join(dataDir, 'results.db'))).toBe(true);
    // WAL is what lets other processes read while one writes.
    expect(existsSync(join(dataDir, 'results.db-wal'))).toBe(true);
    await store.close();
  });

  it('purges records, keys and callbacks past their retention, and nothing younger', async () => {
    // The store's clock is Date.now; moving it by hand keeps a slow machine from expiring early.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const store = SqliteStore.open({ dataDir: mkdtempSync(join(tmpdir(), 'spillway-store-')), retentionMs: 50 });
      await store.put([base]);
      await store.claimIdempotencyKey(claim('p1'));
      await store.enqueueCallbacks([{ webhookId: 'w', predictionId: 'p1', event: 'completed', url: 'http://127.0.0.1/', body: '{}' }]);
      expect(store.purge()).toBe(0);
      vi.setSystemTime(Date.now() + 80);
      // Expired but not yet purged: already gone to readers, and the key is free to claim.
      expect(await store.get('p1')).toBeUndefined();
      expect(await store.claimIdempotencyKey(claim('p2', 'other'))).toEqual({ claimed: true });
      expect(store.purge()).toBe(2);
      vi.setSystemTime(Date.now() + 80);
      expect(store.purge()).toBe(1);
      await store.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('writes notices only while another process listens, and drops them once no waiter could still want them', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const dataDir = mkdtempSync(join(tmpdir(), 'spillway-store-'));
    try {
      const store = SqliteStore.open({ dataDir, retentionMs: 60_000 });
      const rows = () => {
        const db = new Database(join(dataDir, 'results.db'), { readonly: true });
        try {
          return db.prepare('SELECT count(*) FROM stored_notice_ids').pluck().get() as number;
        } finally {
          db.close();
        }
      };
      // Alone, a store writes no notices: no other process would read them.
      store.announceStored([record('p0', { status: 'succeeded' })]);
      expect(rows()).toBe(0);
      // A listener in another process, renewed throughout (seen_at ahead of the faked clock).
      const db = new Database(join(dataDir, 'results.db'));
      db.prepare('INSERT INTO notice_listeners (listener, origin, seen_at) VALUES (?, ?, ?)').run('elsewhere:1:x', 'elsewhere:1', Date.now() + 600_000);
      db.close();
      store.announceStored([record('p1', { status: 'succeeded' })]);
      store.announceStored([record('p2', { status: 'succeeded' })]);
      expect(rows()).toBe(2);
      vi.setSystemTime(Date.now() + 60_000);
      store.announceStored([record('p3', { status: 'succeeded' })]);
      expect(rows()).toBe(1);
      await store.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
