import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { request, waitForFinal } from '../helpers/http.js';
import { repoRoot } from '../helpers/paths.js';
import { runSpillway, spawnSpillway, type SpillwayProcess } from '../helpers/processes.js';

/**
 * docs/models.md walks a handler model through success, a refused input, retries and the dead
 * letters. This runs the same steps on the same files, so the tutorial cannot drift from the code.
 */
const doc = readFileSync(join(repoRoot, 'docs', 'models.md'), 'utf8');
const tutorial = doc.slice(doc.indexOf('## Tutorial'));
const fixture = join(repoRoot, 'test', 'fixtures', 'models', 'shout');

/** The bodies the tutorial's curl commands send, in order. */
const bodies = {
  hello: { input: { text: 'hello' } },
  refused: { input: { text: 42, colour: 'red' } },
  retried: { input: { text: 'try again', fail_times: 2 } },
  doomed: { input: { text: 'never', fail_times: 5 } },
};

describe('the handler-model tutorial in docs/models.md', () => {
  let server: SpillwayProcess;
  let dataDir: string;
  let doomedId: string;
  beforeAll(async () => {
    const models = mkdtempSync(join(tmpdir(), 'spillway-tutorial-models-'));
    cpSync(fixture, join(models, 'shout'), { recursive: true });
    dataDir = mkdtempSync(join(tmpdir(), 'spillway-tutorial-data-'));
    server = await spawnSpillway(['serve', '--models', models, '--data', dataDir, '--port', '0']);
  });
  afterAll(async () => {
    await server?.kill('SIGTERM');
  });

  const submit = (body: unknown, wait = true) =>
    request<PredictionRecord & { code?: string; errors?: { pointer: string }[] }>(`${server.url}/v1/models/shout/predictions`, {
      body,
      headers: wait ? { prefer: 'wait=10' } : {},
    });
  const dlq = (...args: string[]) => runSpillway(['dlq', ...args, '--data', dataDir]);

  it('shows the files and the requests that this test uses', () => {
    for (const file of ['handler.js', 'model.yaml']) expect(tutorial).toContain(readFileSync(join(fixture, file), 'utf8'));
    const sent = [...tutorial.matchAll(/-d '([^']*)'/g)].map((m) => JSON.parse(m[1] ?? '') as unknown);
    expect(sent).toEqual(Object.values(bodies));
    expect(tutorial).toContain('node dist/cli/main.js serve --models ./my-models --data ./my-data --port 8081');
  });

  it('serves the model and answers a request, with the parameter applied', async () => {
    const model = await request<{ state: string; runtime: string; max_attempts: number }>(`${server.url}/v1/models/shout`);
    expect(model.body).toMatchObject({ state: 'ready', runtime: 'handler', max_attempts: 3 });
    const res = await submit(bodies.hello);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'succeeded', attempts: 1, output: { text: 'HELLO!', attempt: 1 } });
  });

  it('refuses an input that does not match input_schema, naming each problem', async () => {
    const res = await submit(bodies.refused, false);
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('SPILLWAY_INVALID_INPUT');
    expect(res.body.errors?.map((e) => e.pointer).sort()).toEqual(['/input', '/input/text']);
  });

  it('retries a retryable failure after the backoff, and succeeds on the third attempt', async () => {
    const res = await submit(bodies.retried);
    expect(res.body).toMatchObject({ status: 'succeeded', attempts: 3, output: { text: 'TRY AGAIN!', attempt: 3 } });
    // 200 ms after the first failure, 400 ms after the second, waiting in the queue.
    expect(res.body.metrics.queue_ms).toBeGreaterThanOrEqual(600);
  });

  it('fails for good after max_attempts and dead-letters the request', async () => {
    const res = await submit(bodies.doomed);
    expect(res.body).toMatchObject({
      status: 'failed',
      attempts: 3,
      error: { code: 'SPILLWAY_MODEL_FAILED', message: 'upstream busy (attempt 3)', retryable: true },
    });
    doomedId = res.body.id;
    const listed = await dlq('list');
    expect(listed.code).toBe(0);
    const row = listed.output.split('\n').find((line) => line.includes(doomedId));
    expect(row).toMatch(/request +shout +\S+ +3 +waiting +SPILLWAY_MODEL_FAILED: upstream busy \(attempt 3\)/);
  });

  it('replays the dead letter, which then succeeds under the same id', async () => {
    const replayed = await dlq('replay', '--id', doomedId);
    expect(replayed.code).toBe(0);
    expect(replayed.output).toContain(`replayed 1 letter(s): ${doomedId}`);
    let record = await waitForFinal(server.url, doomedId);
    for (let i = 0; i < 200 && record.status !== 'succeeded'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      record = await waitForFinal(server.url, doomedId);
    }
    expect(record).toMatchObject({ status: 'succeeded', replay: 1, output: { text: 'NEVER!', attempt: 6 } });
    expect((await dlq('list')).output).toMatch(new RegExp(`${doomedId} +3 +replayed`));
  });

  it('stops on SIGTERM with exit status 0', async () => {
    expect(await server.kill('SIGTERM')).toBe(0);
  });
});
