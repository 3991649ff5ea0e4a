import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
    await store.put([succeeded]);
    await store.put([running, base, duplicate]);
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

  it('forgets records after the retention period', async () => {
    const store = open(50);
    await store.put([base]);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await store.get('p1')).toBeUndefined();
    expect(store.purge()).toBe(1);
    await store.close();
  });
});
