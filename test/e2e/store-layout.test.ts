import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js';
import { predict, request } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { processesOfTest } from '../helpers/processes.js';
import { record } from '../stores/conformance.js';

const { start, killAll } = processesOfTest();
afterEach(killAll);

const storedIds = (file: string): string[] => {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT id FROM predictions ORDER BY id').pluck().all() as string[];
  } finally {
    db.close();
  }
};
const hasTable = (file: string, table: string): boolean => {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
  } finally {
    db.close();
  }
};

describe('where `spillway serve` keeps prediction records on the embedded profile', () => {
  const models = modelRepo({});

  it('in the queue file of a new data folder, and no file of its own', async () => {
    const data = mkdtempSync(join(tmpdir(), 'spillway-layout-'));
    const serve = await start(['serve', '--data', data, '--models', models, '--port', '0']);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => predict(serve.url, 'echo', { i }, { prefer: 'wait=30' })));
    expect(answers.map((a) => [a.status, a.body.status])).toEqual(Array(20).fill([200, 'succeeded']));
    const ids = answers.map((a) => a.body.id).sort();
    expect(storedIds(join(data, 'queue.db'))).toEqual(ids);
    expect(existsSync(join(data, 'results.db'))).toBe(false);
    const polled = await request<PredictionRecord>(`${serve.url}/v1/predictions/${ids[0]}`);
    expect(polled.body).toEqual(answers.find((a) => a.body.id === ids[0])!.body);
  });

  it('in results.db for a data folder an earlier Spillway made, which it goes on using', async () => {
    const data = mkdtempSync(join(tmpdir(), 'spillway-layout-'));
    const earlier = SqliteStore.open({ dataDir: data, retentionMs: 3_600_000 });
    await earlier.put([record('from-before', { model: 'echo', status: 'succeeded', created_at: new Date().toISOString(), attempts: 1, output: { kept: true } })]);
    await earlier.close();

    const serve = await start(['serve', '--data', data, '--models', models, '--port', '0']);
    expect((await request<PredictionRecord>(`${serve.url}/v1/predictions/from-before`)).body).toMatchObject({ id: 'from-before', output: { kept: true } });
    const answer = await predict(serve.url, 'echo', { now: true }, { prefer: 'wait=30' });
    expect(answer.body.status).toBe('succeeded');
    expect(storedIds(join(data, 'results.db'))).toEqual([answer.body.id, 'from-before'].sort());
    expect(hasTable(join(data, 'queue.db'), 'predictions')).toBe(false);
  });
});
