import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js';
import type { NewCallbackDelivery } from '../../src/stores/store.js';

const delivery = (id: string): NewCallbackDelivery => ({
  webhookId: `msg_${id}_completed_0`,
  predictionId: id,
  event: 'completed',
  url: 'http://127.0.0.1/hooks',
  body: `{"id":"${id}"}`,
});

describe('callback schedule in the sqlite store', () => {
  it('schedules a webhook once however often it is enqueued', async () => {
    const store = SqliteStore.open({ dataDir: mkdtempSync(join(tmpdir(), 'spillway-cb-')), retentionMs: 60_000 });
    expect(await store.enqueueCallbacks([delivery('a'), delivery('a')])).toBe(1);
    expect(await store.enqueueCallbacks([delivery('a'), delivery('b')])).toBe(1);
    expect(await store.callbackDeliveries('a')).toEqual([
      expect.objectContaining({ event: 'completed', webhook_id: 'msg_a_completed_0', state: 'pending', attempts: 0 }),
    ]);
    await store.close();
  });

  it('leases a due delivery to one claimer at a time, across processes sharing the file', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'spillway-cb-'));
    const one = SqliteStore.open({ dataDir, retentionMs: 60_000 });
    const two = SqliteStore.open({ dataDir, retentionMs: 60_000 });
    await one.enqueueCallbacks([delivery('a'), delivery('b'), delivery('c')]);
    const [x, y] = await Promise.all([one.claimCallbacks(2, 10_000), two.claimCallbacks(2, 10_000)]);
    const ids = [...x, ...y].map((c) => c.webhookId).sort();
    expect(ids).toEqual(['msg_a_completed_0', 'msg_b_completed_0', 'msg_c_completed_0']);
    expect(await one.claimCallbacks(10, 10_000)).toEqual([]);

    // A retry becomes due again at its time; a stale lease cannot record over a newer one.
    const first = x[0]!;
    expect(await one.recordCallbackAttempt({ webhookId: first.webhookId, leaseToken: 'stale', state: 'delivered' })).toBe(false);
    expect(
      await one.recordCallbackAttempt({ ...first, state: 'pending', status: 500, error: 'answered 500', nextAttemptAt: Date.now() }),
    ).toBe(true);
    const again = await two.claimCallbacks(10, 10_000);
    expect(again.map((c) => [c.webhookId, c.attempts])).toEqual([[first.webhookId, 1]]);
    expect(await two.recordCallbackAttempt({ ...again[0]!, state: 'delivered', status: 204 })).toBe(true);
    const [view] = await one.callbackDeliveries(first.predictionId);
    expect(view).toMatchObject({ state: 'delivered', attempts: 2, last_status: 204 });
    expect(view?.delivered_at).toBeDefined();
    expect(view?.next_attempt_at).toBeUndefined();
    await one.close();
    await two.close();
  });
});
