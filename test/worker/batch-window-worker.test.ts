import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';

// batch-probe: every batch takes 150 ms whatever its size, and each output says its batch's size.
// Each case has a copy of its own, so each window learns only from that case's batches. The gaps
// the cases rely on are a few times apart (50 ms against 150 ms, 150 ms against 5 s), and what is
// checked is which requests shared a batch, never how long anything took.
const cases = ['under-load', 'idle', 'deadline'] as const;

function repository(): string {
  const dir = modelRepo({ fixtures: ['batch-probe'] });
  for (const c of cases) cpSync(join(dir, 'batch-probe'), join(dir, `probe-${c}`), { recursive: true });
  return dir;
}

type Output = { tag: string; batch: number };

describe('the adaptive batch window in a worker (embedded broker)', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ models: repository() });
  });
  afterAll(async () => d.close());

  /** Ten requests at once, run in two batches: the window learns the batch time and sees requests come fast. */
  async function teach(model: string): Promise<void> {
    const sent = await Promise.all(Array.from({ length: 10 }, (_, i) => predict(d.url, model, { tag: `teach-${i}` })));
    await Promise.all(sent.map((res) => waitForFinal(d.url, res.body.id)));
  }

  /** A, and B 50 ms later: the batch each ran in. */
  async function pair(model: string): Promise<[Output, Output]> {
    const a = predict(d.url, model, { tag: 'A' }, { prefer: 'wait=30' });
    await sleep(50);
    const b = predict(d.url, model, { tag: 'B' }, { prefer: 'wait=30' });
    const done = await Promise.all([a, b]);
    for (const res of done) expect(res.body).toMatchObject({ status: 'succeeded' });
    return [done[0].body.output as Output, done[1].body.output as Output];
  }

  it('batches under load: while requests come fast, a request waits for the next one', async () => {
    await teach('probe-under-load');
    const outputs = await pair('probe-under-load');
    expect(outputs.map((o) => o.batch)).toEqual([2, 2]);
  });

  it('does not wait when requests have stopped coming: an idle model runs a request alone', async () => {
    await teach('probe-idle');
    await sleep(5000);
    const [a] = await pair('probe-idle');
    expect(a.batch).toBe(1);
  });

  it('never holds a request past its deadline, even while it would wait for more', async () => {
    await teach('probe-deadline');
    // The window would wait up to 150 ms for a second request; this one must start within 90.
    const res = await request<PredictionRecord>(`${d.url}/v1/models/probe-deadline/predictions`, {
      body: { input: { tag: 'hurried' }, timeout_ms: 90 },
      headers: { prefer: 'wait=30' },
    });
    expect(res.body).toMatchObject({ status: 'succeeded', output: { tag: 'hurried', batch: 1 } });
  });
});
