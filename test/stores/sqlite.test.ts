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

// The embedded profile's layout: the store's tables in the queue's file.
describeStoreConformance('sqlite in the queue file', () => ({
  settings: ({ retentionMs }) => ({ kind: 'sqlite', dataDir: mkdtempSync(join(tmpdir(), 'spillway-store-')), file: 'queue.db', retentionMs }),
}));

const base = record('p1');

const claim = (id: string, fingerprint = 'f1') => ({ key: 'k1', fingerprint, id, createdAt: '2026-01-01T00:00:00.000Z' });

// callback_deliveries as results.db held it before tenants (and so as an old file still holds it).
const callbackDeliveriesBeforeTenants = `
CREATE TABLE callback_deliveries (
  webhook_id      TEXT    NOT NULL PRIMARY KEY,
  prediction_id   TEXT    NOT NULL,
  event           TEXT    NOT NULL,
  url             TEXT    NOT NULL,
  body            TEXT    NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  state           TEXT    NOT NULL DEFAULT 'pending',
  last_status     INTEGER,
  last_error      TEXT,
  delivered_at    INTEGER,
  lease_until     INTEGER NOT NULL DEFAULT 0,
  lease_token     TEXT,
  created_at      INTEGER NOT NULL,
  expires_at      INTEGER NOT NULL
);
CREATE INDEX callback_deliveries_due ON callback_deliveries (state, next_attempt_at);`;

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

  it('never purges API keys, and purges capped-set members past their expiry and buckets full again', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const store = SqliteStore.open({ dataDir: mkdtempSync(join(tmpdir(), 'spillway-store-')), retentionMs: 50 });
      const key = { id: 'k1', tenant: 'acme', scopes: ['predict'], hash: 'ab'.repeat(32), createdAt: '2026-01-01T00:00:00.000Z' };
      const fixed = { name: 'fixed', ratePerS: 0, burst: 1 };
      await store.putApiKey(key);
      await store.joinCapped('s', 'm', 5, Date.now() + 100);
      // Full again 100 ms after the take, and so the same as no row.
      await store.takeTokens([{ name: 'quick', ratePerS: 10, burst: 1 }]);
      await store.takeTokens([fixed]);
      expect(store.purge()).toBe(0);
      vi.setSystemTime(Date.now() + 1_000_000_000);
      expect(store.purge()).toBe(2);
      expect(await store.getApiKey('k1')).toEqual(key);
      expect(await store.hasApiKeys()).toBe(true);
      // A bucket that never refills is kept, still empty.
      expect((await store.takeTokens([fixed])).allowed).toBe(false);
      await store.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('adds the tenant and traceparent columns to a results.db made before them, and keeps its deliveries', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'spillway-store-'));
    const old = new Database(join(dataDir, 'results.db'));
    old.exec(callbackDeliveriesBeforeTenants);
    const now = Date.now();
    old
      .prepare('INSERT INTO callback_deliveries (webhook_id, prediction_id, event, url, body, next_attempt_at, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run('old', 'p0', 'completed', 'http://127.0.0.1/', '{}', now, now, now + 60_000);
    old.close();
    // The second handle finds the column there already.
    const first = SqliteStore.open({ dataDir, retentionMs: 60_000 });
    const second = SqliteStore.open({ dataDir, retentionMs: 60_000 });
    try {
      const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      await first.enqueueCallbacks([{ webhookId: 'new', predictionId: 'p1', tenant: 'acme', traceparent, event: 'completed', url: 'http://127.0.0.1/', body: '{}' }]);
      const claimed = await second.claimCallbacks(10, 60_000);
      expect(claimed.find((c) => c.webhookId === 'new')).toMatchObject({ predictionId: 'p1', tenant: 'acme', traceparent });
      expect(claimed.find((c) => c.webhookId === 'old')).toMatchObject({ predictionId: 'p0', attempts: 0 });
      expect(claimed.find((c) => c.webhookId === 'old')).not.toHaveProperty('tenant');
    } finally {
      await first.close();
      await second.close();
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
