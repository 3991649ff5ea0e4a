import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { responseMessage } from '../../src/protocol/envelope.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { topicsFor } from '../../src/protocol/topics.js';
import type { DuckDbTap } from '../../src/taps/duckdb-tap.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { repoRoot } from '../helpers/paths.js';
import { caughtUp, startTestTap, tempDbPath, until } from './tap-test-kit.js';

/** Every SQL block of docs/analytics.md, run against the file of a real tap. */
const doc = readFileSync(join(repoRoot, 'docs', 'analytics.md'), 'utf8');
const queries = [...doc.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => (m[1] ?? '').trim());
const exportDir = mkdtempSync(join(tmpdir(), 'spillway-tap-export-'));
// The doc writes beside the reader; the test writes into a folder of its own.
const localised = (sql: string) => sql.replaceAll(/'([\w-]+\.parquet)'/g, (_, file: string) => `'${join(exportDir, file)}'`);

describe('the queries of docs/analytics.md', () => {
  let deployment: Deployment;
  let tap: DuckDbTap;

  beforeAll(async () => {
    deployment = await startDeployment({ models: modelRepo({ fixtures: ['flaky'] }) });
    tap = await startTestTap({ broker: deployment.broker, prefix: deployment.prefix, dbPath: tempDbPath() });
    const d = deployment;
    const ok = await Promise.all(Array.from({ length: 8 }, (_, i) => predict(d.url, 'echo', { i }, { prefer: 'wait=30' })));
    const failed = await predict(d.url, 'flaky', { key: 'doc', fail_times: 9, retryable: false }, { prefer: 'wait=30' });
    expect(failed.body.status).toBe('failed');
    // A record as pipelines will publish it, so the per-step query has rows to read.
    const first = ok[0]!.body;
    const steps = [
      { model: 'echo', status: 'succeeded' },
      { model: 'flaky', status: 'failed' },
    ];
    const pipeline = { ...first, id: `${first.id}-pipeline`, status: 'failed', steps } as PredictionRecord;
    await d.broker.publish(topicsFor(d.prefix).responses, [responseMessage(pipeline)]);
    await until('the tap to catch up', async () => ((await caughtUp(d.broker, d.prefix)) ? true : undefined));
  });
  afterAll(async () => {
    await tap.stop();
    await deployment.close();
  });

  it('finds the queries the page promises', () => {
    expect(queries.length).toBeGreaterThanOrEqual(6);
    expect(queries.some((q) => q.includes('quantile_cont'))).toBe(true);
    expect(queries.some((q) => q.includes('json_each'))).toBe(true);
    expect(queries.some((q) => q.includes('FORMAT parquet'))).toBe(true);
  });

  it.each(queries.filter((q) => !q.startsWith('COPY')))('runs and returns rows: %s', async (sql) => {
    const rows = await tap.query(sql);
    expect(rows.length).toBeGreaterThan(0);
  });

  it('reads the failing step out of the steps JSON', async () => {
    const sql = queries.find((q) => q.includes('json_each'))!;
    const rows = await tap.query(sql);
    expect(rows).toContainEqual(expect.objectContaining({ step_index: 1, step_model: 'flaky', failed: '1' }));
  });

  it.each(queries.filter((q) => q.startsWith('COPY')))('exports to Parquet that reads back: %s', async (sql) => {
    const [file] = [...localised(sql).matchAll(/'([^']+\.parquet)'/g)].map((m) => m[1]!);
    await tap.query(localised(sql));
    expect(existsSync(file!)).toBe(true);
    const [back] = await tap.query(`SELECT count(*) AS n FROM '${file!}'`);
    expect(Number(back?.['n'])).toBeGreaterThan(0);
  });
});
