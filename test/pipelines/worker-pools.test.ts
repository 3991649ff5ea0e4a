import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openBroker } from '../../src/brokers/open-broker.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { topicsFor, workerGroup } from '../../src/protocol/topics.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { until } from '../helpers/until.js';
import { processesOfTest } from '../helpers/processes.js';

const { start, killAll } = processesOfTest();
afterEach(killAll);

/** A gateway, and one worker process per step: each pool runs (and would scale) on its own. */
function deployment() {
  const models = modelRepo({ fixtures: ['words', 'count'] });
  mkdirSync(join(models, 'wordcount'));
  writeFileSync(join(models, 'wordcount', 'pipeline.yaml'), 'steps:\n  - model: words\n  - model: count\n');
  const dataDir = mkdtempSync(join(tmpdir(), 'spillway-pools-'));
  const common = ['--data', dataDir, '--models', models, '--lease-ms', '1500'];
  return {
    dataDir,
    gateway: () => start(['gateway', ...common, '--port', '0']),
    pool: (model: string) => start(['worker', ...common, '--worker-models', model]),
  };
}

async function untilWorker(url: string, model: string): Promise<string> {
  for (let i = 0; i < 800; i++) {
    const res = await request<{ workers: { worker: string; state: string }[] }>(`${url}/v1/models/${model}`);
    const ready = res.body.workers.find((w) => w.state === 'ready');
    if (ready !== undefined) return ready.worker;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no worker serves ${model}`);
}

describe('a pipeline served by a pool of workers per step, as separate processes', () => {
  it('runs each step on the pool that serves it', async () => {
    const d = deployment();
    const gateway = await d.gateway();
    await Promise.all([d.pool('words'), d.pool('count')]);
    const wordsWorker = await untilWorker(gateway.url, 'words');
    const countWorker = await untilWorker(gateway.url, 'count');
    expect(wordsWorker).not.toBe(countWorker);
    const res = await predict(gateway.url, 'wordcount', { text: 'one two three' }, { prefer: 'wait=20' });
    expect(res.body).toMatchObject({ status: 'succeeded', output: { count: 3 } });
    expect(res.body.steps?.map((s) => `${s.model}@${s.worker ?? ''}`)).toEqual([`words@${wordsWorker}`, `count@${countWorker}`]);
  });

  it('loses nothing when the next pool is down between steps: the step waits in its queue', async () => {
    const d = deployment();
    const gateway = await d.gateway();
    await d.pool('words');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await predict(gateway.url, 'wordcount', { text: `a b ${'c '.repeat(i)}` })).body.id);
    // Every prediction gets past its first step (acked only once the next is queued) and waits
    // for a count worker that is not there.
    const broker = await openBroker({ url: 'embedded', dataDir: d.dataDir, leaseMs: 1500 });
    const topics = topicsFor('spillway');
    try {
      await until('the words steps to be acked', async () => ((await broker.backlog(topics.requests('words'), workerGroup)) === 0 ? true : undefined));
      expect(await broker.backlog(topics.requests('count'), workerGroup)).toBe(ids.length);
    } finally {
      await broker.close();
    }
    // A poll says where each is: handed over, queued at the count step.
    for (const id of ids) {
      const polled = await until(`${id} handed over`, async () => {
        const r = (await request<PredictionRecord>(`${gateway.url}/v1/predictions/${id}`)).body;
        return r.step === 'count' ? r : undefined;
      });
      expect(polled).toMatchObject({ status: 'running', step: 'count' });
      expect(polled.steps?.map((s) => `${s.model}:${s.status}`)).toEqual(['words:succeeded', 'count:queued']);
    }
    // A count worker that crashes mid-way, then one that stays.
    const doomed = await d.pool('count');
    await doomed.kill('SIGKILL');
    await d.pool('count');
    const finals = await Promise.all(ids.map((id) => waitForFinal(gateway.url, id)));
    expect(finals.map((f) => f.status)).toEqual(ids.map(() => 'succeeded'));
    expect(finals.map((f) => (f.output as { count: number }).count)).toEqual([2, 3, 4, 5, 6]);
  });
});
