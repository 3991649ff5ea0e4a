import { afterEach, describe, expect, it } from 'vitest';
import { responseMessage } from '../../src/protocol/envelope.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { topicsFor } from '../../src/protocol/topics.js';
import type { DuckDbTap } from '../../src/taps/duckdb-tap.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { testBrokers } from '../helpers/paths.js';
import { caughtUp, startTestTap, tempDbPath, until } from './tap-test-kit.js';

const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

describe.each(testBrokers)('the DuckDB tap on the $name broker', ({ url }) => {
  let deployment: Deployment | undefined;
  let tap: DuckDbTap | undefined;
  afterEach(async () => {
    await tap?.stop();
    await deployment?.close();
    tap = undefined;
    deployment = undefined;
  });

  async function setup() {
    deployment = await startDeployment({ broker: url, models: modelRepo({ fixtures: ['flaky'] }) });
    const dbPath = tempDbPath();
    tap = await startTestTap({ broker: deployment.broker, prefix: deployment.prefix, dbPath });
    return { d: deployment, dbPath };
  }

  async function row(t: DuckDbTap, id: string) {
    const rows = await t.query(`SELECT * FROM predictions WHERE id = '${id}'`);
    return rows[0];
  }

  it('writes one row per prediction with its values, succeeded or failed', async () => {
    const { d } = await setup();
    const input = { text: 'hello tap' };
    const ok = await predict(d.url, 'echo', input, { prefer: 'wait=30' });
    const bad = await fetch(`${d.url}/v1/models/flaky/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'wait=30' },
      body: JSON.stringify({ input: { key: 'k', fail_times: 9, retryable: false }, metadata: { tenant: 'acme', other: 1 } }),
    });
    const badRecord = (await bad.json()) as PredictionRecord;
    expect(ok.body.status).toBe('succeeded');
    expect(badRecord.status).toBe('failed');

    const t = tap!;
    const good = await until('the succeeded row with its input size', async () => {
      const r = await row(t, ok.body.id);
      return r?.['status'] === 'succeeded' && r['input_bytes'] !== null ? r : undefined;
    });
    const m = ok.body.metrics;
    expect(good).toMatchObject({
      model: 'echo',
      attempts: ok.body.attempts,
      worker: ok.body.worker,
      error_code: null,
      input_bytes: String(bytes(input)),
      output_bytes: String(bytes(ok.body.output)),
      total_ms: m.total_ms,
      queue_ms: m.queue_ms,
      inference_ms: m.inference_ms,
      steps: null,
      meta_tenant: null,
    });
    // DuckDB prints a TIMESTAMP without trailing zeros of its fraction (…26.08 for …26.080Z): compare instants.
    expect(Date.parse(`${(good['created_at'] as string).replace(' ', 'T')}Z`)).toBe(Date.parse(ok.body.created_at));
    expect(good['completed_at']).not.toBeNull();
    expect(good['started_at']).not.toBeNull();

    const failedRow = await until('the failed row', async () => {
      const r = await row(t, badRecord.id);
      return r?.['status'] === 'failed' && r['input_bytes'] !== null ? r : undefined;
    });
    expect(failedRow).toMatchObject({ model: 'flaky', error_code: badRecord.error?.code, output_bytes: null, meta_tenant: 'acme' });
    expect(badRecord.error?.code).toMatch(/^SPILLWAY_/);
  });

  it('a redelivered or second terminal record adds no row and changes nothing', async () => {
    const { d } = await setup();
    const ok = await predict(d.url, 'echo', { n: 1 }, { prefer: 'wait=30' });
    expect(ok.body.status).toBe('succeeded');
    const t = tap!;
    await until('the row', async () => ((await row(t, ok.body.id))?.['status'] === 'succeeded' ? true : undefined));
    const responses = topicsFor(d.prefix).responses;
    const late: PredictionRecord = { ...ok.body, status: 'failed', error: { code: 'SPILLWAY_MODEL_FAILED', message: 'late', retryable: false }, attempts: 2 };
    const running: PredictionRecord = { ...ok.body, status: 'running', attempts: 3 };
    // The same message again, a later terminal one and a stale running one, in one batch; then
    // each in a batch of its own, so the upsert itself must refuse them (not only the batch merge).
    const batches = [[ok.body, late, running], [ok.body], [late], [running]];
    for (const batch of batches) {
      await d.broker.publish(responses, batch.map((r) => responseMessage(r)));
      await until('the tap to catch up', async () => ((await caughtUp(d.broker, d.prefix)) ? true : undefined));
    }
    const rows = await t.query(`SELECT status, attempts, error_code FROM predictions WHERE id = '${ok.body.id}'`);
    expect(rows).toEqual([{ status: 'succeeded', attempts: ok.body.attempts, error_code: null }]);
  });

  it('keeps the steps a pipeline record carries as queryable JSON', async () => {
    const { d } = await setup();
    const ok = await predict(d.url, 'echo', { n: 2 }, { prefer: 'wait=30' });
    const steps = [
      { model: 'echo', status: 'succeeded', inference_ms: 1.5 },
      { model: 'flaky', status: 'failed', error_code: 'SPILLWAY_MODEL_FAILED' },
    ];
    const withSteps = { ...ok.body, id: `${ok.body.id}-pipeline`, steps } as PredictionRecord;
    await d.broker.publish(topicsFor(d.prefix).responses, [responseMessage(withSteps)]);
    const t = tap!;
    const found = await until('the pipeline row', async () => {
      const rows = await t.query(`SELECT steps->>'$[1].error_code' AS failed_step FROM predictions WHERE id = '${withSteps.id}'`);
      return rows[0];
    });
    expect(found).toEqual({ failed_step: 'SPILLWAY_MODEL_FAILED' });
  });

  it('a stopped tap does not hold serving back, and catches up when it starts again', async () => {
    const { d, dbPath } = await setup();
    await tap!.stop();
    tap = undefined;
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => predict(d.url, 'echo', { i }, { prefer: 'wait=30' })));
    expect(answers.map((a) => a.body.status)).toEqual(Array.from({ length: 20 }, () => 'succeeded'));
    tap = await startTestTap({ broker: d.broker, prefix: d.prefix, dbPath });
    const t = tap;
    await until('the tap to catch up', async () => ((await caughtUp(d.broker, d.prefix)) ? true : undefined));
    const [counts] = await t.query(`SELECT count(*) AS n, count(DISTINCT id) AS ids, count(*) FILTER (status = 'succeeded') AS done FROM predictions`);
    expect(counts).toEqual({ n: '20', ids: '20', done: '20' });
  });
});
