import { describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { jsonBytes, latestPerId, metadataCell, recordRow, timestampCell } from '../../src/taps/tap-rows.js';
import { recordColumns, schemaStatements } from '../../src/taps/tap-schema.js';

const base: PredictionRecord = {
  id: 'p1',
  model: 'echo',
  status: 'running',
  metadata: { tenant: 'acme', n: 3 },
  created_at: '2026-12-02T05:00:00.000Z',
  attempts: 1,
  metrics: {},
};

describe('tap rows', () => {
  it('keeps per id the record the store would keep: first terminal wins, a replay starts over', () => {
    const done = { ...base, status: 'succeeded' } as const;
    const late = { ...base, status: 'failed', attempts: 2 } as const;
    const replayed = { ...base, status: 'running', replay: 1 } as const;
    expect(latestPerId([base, done, late])).toEqual([done]);
    expect(latestPerId([done, replayed])).toEqual([replayed]);
    expect(latestPerId([base, { ...base, id: 'p2' }])).toHaveLength(2);
  });

  it('fills one cell per column, metadata columns last', () => {
    const row = recordRow({ ...base, output: { a: 'é' } }, ['tenant', 'n', 'missing']);
    expect(row.cells).toHaveLength(recordColumns.length + 3);
    expect(row.cells.slice(-3)).toEqual(['acme', '3', null]);
    expect(row.cells[recordColumns.findIndex(([c]) => c === 'output_bytes')]).toBe(jsonBytes({ a: 'é' }));
  });

  it('turns timestamps into UTC values DuckDB reads, and a bad one into NULL rather than a stuck batch', () => {
    expect(timestampCell('2026-12-02T06:00:00+01:00')).toBe('2026-12-02 05:00:00.000');
    expect(timestampCell('yesterday-ish')).toBeNull();
    expect(timestampCell(undefined)).toBeNull();
  });

  it('reads metadata fields as text', () => {
    expect(metadataCell({ a: 'x', b: { c: 1 }, d: null }, 'a')).toBe('x');
    expect(metadataCell({ a: 'x', b: { c: 1 }, d: null }, 'b')).toBe('{"c":1}');
    expect(metadataCell({ d: null }, 'd')).toBeNull();
    expect(metadataCell({}, 'toString')).toBeNull();
  });

  it('adds a metadata column to an existing table rather than needing a new file', () => {
    expect(schemaStatements(['tenant'])[1]).toBe('ALTER TABLE predictions ADD COLUMN IF NOT EXISTS "meta_tenant" VARCHAR');
  });
});
