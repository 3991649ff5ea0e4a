import type { ResultStore } from './store.js';

export interface StoreSettings {
  readonly kind: 'sqlite';
  readonly dataDir: string;
  readonly retentionMs: number;
  readonly busyTimeoutMs?: number;
}

export async function openStore(settings: StoreSettings): Promise<ResultStore> {
  switch (settings.kind) {
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite/sqlite-store.js');
      return SqliteStore.open(settings);
    }
  }
}
