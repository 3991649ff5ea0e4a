import { describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { AnalyticsDb } from '../../src/taps/analytics-db.js';
import { recordRow } from '../../src/taps/tap-rows.js';
import { tempDbPath } from './tap-test-kit.js';

const record: PredictionRecord = {
  id: 'p1',
  model: 'echo',
  status: 'succeeded',
  metadata: { tenant: 'acme' },
  created_at: '2026-12-02T05:00:00.000Z',
  attempts: 1,
  metrics: { total_ms: 4 },
};

describe('the tap database', () => {
  it('takes a metadata field named after the file was made: old rows NULL, new rows filled', async () => {
    const path = tempDbPath();
    const before = await AnalyticsDb.open(path, []);
    await before.write([recordRow(record, [])], []);
    await before.close();
    const after = await AnalyticsDb.open(path, ['tenant']);
    await after.write([recordRow({ ...record, id: 'p2' }, ['tenant'])], []);
    expect(await after.query('SELECT id, meta_tenant FROM predictions ORDER BY id')).toEqual([
      { id: 'p1', meta_tenant: null },
      { id: 'p2', meta_tenant: 'acme' },
    ]);
    await after.close();
  });

  it('rolls a failed batch back whole, so its acks are never sent for half of it', async () => {
    const db = await AnalyticsDb.open(tempDbPath(), []);
    const good = recordRow(record, []);
    // A cell of the wrong type for its column makes DuckDB refuse the second upsert.
    const bad = { id: 'p2', cells: good.cells.map((c, i) => (i === 0 ? 'p2' : i === 14 ? 'not a number' : c)) };
    await expect(db.write([good, bad], [])).rejects.toThrow();
    expect(await db.query('SELECT count(*) AS n FROM predictions')).toEqual([{ n: '0' }]);
    await db.write([good], []);
    expect(await db.query('SELECT count(*) AS n FROM predictions')).toEqual([{ n: '1' }]);
    await db.close();
  });
});
