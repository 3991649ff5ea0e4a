import type { ResultStore } from './store.js';

/** Names a store: plain data, so another process can open the same store from it. */
export type StoreSettings = SqliteStoreSettings | RedisStoreSettings;

export interface SqliteStoreSettings {
  readonly kind: 'sqlite';
  readonly dataDir: string;
  /** `queue.db` to share the embedded queue's file (see SqliteStoreOptions.file); default `results.db`. */
  readonly file?: 'results.db' | 'queue.db';
  readonly retentionMs: number;
  readonly busyTimeoutMs?: number;
  /** How often a listener checks for stored notices from other processes. */
  readonly pollMs?: number;
}

export interface RedisStoreSettings {
  readonly kind: 'redis';
  /** `redis://host:port[/db]`; a malformed one fails the open, naming the problem. */
  readonly url: string;
  /** Before every key and channel (`spillway:`), so several deployments may share a server. */
  readonly keyPrefix: string;
  readonly retentionMs: number;
}

export async function openStore(settings: StoreSettings): Promise<ResultStore> {
  switch (settings.kind) {
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite/sqlite-store.js');
      return SqliteStore.open(settings);
    }
    case 'redis': {
      const { RedisStore } = await import('./redis/redis-store.js');
      return RedisStore.open(settings);
    }
  }
}
