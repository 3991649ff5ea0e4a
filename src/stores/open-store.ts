import type { ResultStore } from './store.js';

/** Names a store: plain data, so another process can open the same store from it. */
export interface StoreSettings {
  readonly kind: 'sqlite';
  readonly dataDir: string;
  readonly retentionMs: number;
  readonly busyTimeoutMs?: number;
  /** How often a listener checks for stored notices from other processes. */
  readonly pollMs?: number;
}

export async function openStore(settings: StoreSettings): Promise<ResultStore> {
  switch (settings.kind) {
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite/sqlite-store.js');
      return SqliteStore.open(settings);
    }
  }
}
