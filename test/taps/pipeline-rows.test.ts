import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DuckDbTap } from '../../src/taps/duckdb-tap.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { testBrokers } from '../helpers/paths.js';
import { startTestTap, tempDbPath, until } from './tap-test-kit.js';

describe.each(testBrokers)('the tap and pipelines on the $name broker', ({ url }) => {
  let deployment: Deployment | undefined;
  let tap: DuckDbTap | undefined;
  afterEach(async () => {
    await tap?.stop();
    await deployment?.close();
  });

  it("keeps one row per pipeline prediction, under the pipeline's name, with the client's input size and every step", async () => {
    const models = modelRepo({ fixtures: ['words', 'count', 'flaky'] });
    for (const [name, steps] of [['wordcount', ['words', 'count']], ['echo-flaky', ['echo', 'flaky']]] as const) {
      mkdirSync(join(models, name));
      writeFileSync(join(models, name, 'pipeline.yaml'), `steps:\n${steps.map((m) => `  - model: ${m}\n`).join('')}`);
    }
    deployment = await startDeployment({ broker: url, models });
    tap = await startTestTap({ broker: deployment.broker, prefix: deployment.prefix, dbPath: tempDbPath(), models: ['words', 'count', 'echo', 'flaky'] });
    const input = { text: 'one two three four' };
    const ok = await predict(deployment.url, 'wordcount', input, { prefer: 'wait=30' });
    const failed = await predict(deployment.url, 'echo-flaky', { key: 'k', fail_times: 9, retryable: false }, { prefer: 'wait=30' });
    expect([ok.body.status, failed.body.status]).toEqual(['succeeded', 'failed']);
    const t = tap;
    const rows = await until('both rows, final and sized', async () => {
      const got = await t.query(`SELECT id, model, status, input_bytes FROM predictions WHERE id IN ('${ok.body.id}', '${failed.body.id}') ORDER BY model`);
      return got.length === 2 && got.every((r) => r['input_bytes'] !== null && (r['status'] === 'succeeded' || r['status'] === 'failed')) ? got : undefined;
    });
    expect(rows.map((r) => [r['model'], r['status']])).toEqual([
      ['echo-flaky', 'failed'],
      ['wordcount', 'succeeded'],
    ]);
    expect(rows.find((r) => r['model'] === 'wordcount')?.['input_bytes']).toBe(String(Buffer.byteLength(JSON.stringify(input))));
    // The per-step form of docs/analytics.md: each step of each pipeline, and which failed.
    const perStep = await t.query(`
      SELECT step.key::INTEGER AS step_index, step.value->>'model' AS step_model,
             count(*) AS runs, count(*) FILTER (step.value->>'status' = 'failed') AS failed
      FROM predictions, json_each(predictions.steps) AS step
      WHERE predictions.id IN ('${ok.body.id}', '${failed.body.id}')
      GROUP BY step_index, step_model ORDER BY step_index, step_model`);
    expect(perStep.map((r) => [Number(r['step_index']), r['step_model'], Number(r['runs']), Number(r['failed'])])).toEqual([
      [0, 'echo', 1, 0],
      [0, 'words', 1, 0],
      [1, 'count', 1, 0],
      [1, 'flaky', 1, 1],
    ]);
  });
});
