import { describe, expect, it } from 'vitest';
import { Backpressure } from '../../src/gateway/backpressure.js';
import { SpillwayError } from '../../src/protocol/errors.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { startDeployment } from '../helpers/deployment.js';
import { predict } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';

interface Problem {
  code: string;
  detail: string;
  retryable: boolean;
}

const sleepTopic = 'spillway.requests.sleep';
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('max_queue_depth over HTTP', () => {
  it('accepts up to the limit, then refuses with 429 SPILLWAY_QUEUE_FULL and queues nothing', async () => {
    const d = await startDeployment({ withWorker: false, models: modelRepo({ sleep: { max_queue_depth: 3 } }) });
    // A burst larger than the limit: exactly the limit gets in.
    const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => predict(d.url, 'sleep', { i })));
    expect(burst.filter((r) => r.status === 202)).toHaveLength(3);
    expect(burst.filter((r) => r.status === 429)).toHaveLength(5);

    const refused = await predict(d.url, 'sleep', 'one more');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    const problem = refused.body as unknown as Problem;
    expect(problem).toMatchObject({ code: 'SPILLWAY_QUEUE_FULL', retryable: true });
    // No worker: nothing drains, so the hint is a bounded guess and the detail says why.
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(300);
    expect(problem.detail).toContain('no worker');
    expect(await d.broker.backlog(sleepTopic, 'workers')).toBe(3);
    // Models without a limit are not affected.
    expect((await predict(d.url, 'echo', 'free')).status).toBe(202);
    await d.close();
  });

  it('gives a Retry-After from the backlog and the drain rate, and accepts again once the queue drains', async () => {
    // One slot of 200 ms: the worker drains at most 5 requests a second.
    const limited = await startDeployment({
      models: modelRepo({ sleep: { per_batch_ms: 200, concurrency: 1, max_batch_size: 1, max_queue_depth: 3 } }),
    });
    // A second gateway on the same data folder, without the limit, fills the queue past it.
    const other = await startDeployment({
      withWorker: false,
      dataDir: limited.dataDir,
      models: modelRepo({ sleep: { per_batch_ms: 200, concurrency: 1, max_batch_size: 1 } }),
    });
    try {
      for (let i = 0; i < 40; i++) expect((await predict(other.url, 'sleep', { i })).status).toBe(202);
      await pause(1500);

      const probe = async () => {
        const depth = await limited.broker.backlog(sleepTopic, 'workers');
        const res = await predict(limited.url, 'sleep', 'probe');
        return { depth, status: res.status, retryAfter: Number(res.headers.get('retry-after')), problem: res.body as unknown as Problem };
      };
      const early = await probe();
      expect(early.status).toBe(429);
      expect(early.problem.detail).toMatch(/drains at about/);
      // Backlog ÷ rate, with the rate at most 5/s and (on a busy machine) perhaps far less.
      const atFullSpeed = (early.depth - 3 + 1) / 5;
      expect(early.retryAfter).toBeGreaterThanOrEqual(Math.floor(atFullSpeed * 0.8));
      expect(early.retryAfter).toBeLessThanOrEqual(Math.ceil(atFullSpeed * 4) + 2);

      await pause(3500);
      const later = await probe();
      expect(later.status).toBe(429);
      expect(later.depth).toBeLessThan(early.depth);
      expect(later.retryAfter).toBeLessThan(early.retryAfter);

      // Once the backlog is under the limit, requests get in again.
      let accepted = false;
      for (let i = 0; i < 120 && !accepted; i++) {
        accepted = (await predict(limited.url, 'sleep', 'after')).status === 202;
        if (!accepted) await pause(250);
      }
      expect(accepted).toBe(true);
    } finally {
      await other.close();
      await limited.close();
    }
  });
});

describe('Backpressure', () => {
  const finished = (model: string): PredictionRecord => ({
    id: 'x',
    model,
    status: 'succeeded',
    metadata: {},
    created_at: '2026-01-01T00:00:00.000Z',
    attempts: 1,
    metrics: {},
  });

  function setup(o: { limit: number; backlog: () => number; workers?: number }) {
    const clock = { t: 0 };
    let queries = 0;
    const backpressure = new Backpressure({
      limits: new Map([['m', o.limit]]),
      backlog: async () => {
        queries += 1;
        return o.backlog();
      },
      workersSeen: () => o.workers ?? 1,
      now: () => clock.t,
    });
    const refusal = async () => {
      const error = await backpressure.admit('m').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SpillwayError);
      return error as SpillwayError;
    };
    return { backpressure, clock, queries: () => queries, refusal };
  }

  it('asks the broker at most once per cache period, counting its own admissions in between', async () => {
    let depth = 0;
    const { backpressure, clock, queries, refusal } = setup({ limit: 5, backlog: () => depth });
    const admissions = await Promise.all(Array.from({ length: 5 }, () => backpressure.admit('m')));
    expect((await refusal()).code).toBe('SPILLWAY_QUEUE_FULL');
    // A publish that failed gives its place back.
    admissions[0]!.abandoned();
    const replacement = await backpressure.admit('m');
    for (const a of [...admissions.slice(1), replacement]) a.accepted();
    await refusal();
    expect(queries()).toBe(1);

    // The next reading replaces the count: the broker holds the five, a worker finished two.
    depth = 3;
    clock.t = 250;
    await backpressure.admit('m');
    await backpressure.admit('m');
    await refusal();
    expect(queries()).toBe(2);
    // Models without a limit are never counted.
    await backpressure.admit('other');
    expect(queries()).toBe(2);
  });

  it('derives Retry-After from the backlog and the drain rate of completions', async () => {
    let depth = 40;
    const { backpressure, clock, refusal } = setup({ limit: 10, backlog: () => depth });
    // Four completions a second for three seconds.
    for (let i = 0; i < 12; i++) {
      clock.t = i * 250;
      backpressure.completed([finished('m'), finished('other')]);
    }
    clock.t = 3000;
    expect(backpressure.drainRate('m')).toBeCloseTo(4, 5);
    const full = await refusal();
    expect(full.retryAfterS).toBeCloseTo((40 - 10 + 1) / 4, 5);

    depth = 20;
    clock.t = 3250;
    const lower = await refusal();
    expect(lower.retryAfterS).toBeCloseTo((20 - 10 + 1) / backpressure.drainRate('m'), 5);
    expect(lower.retryAfterS!).toBeLessThan(full.retryAfterS!);
  });

  it('measures the drain from the fall of the backlog when no completion is heard', async () => {
    let depth = 40;
    const { clock, refusal } = setup({ limit: 10, backlog: () => depth });
    await refusal();
    depth = 30;
    clock.t = 2000;
    // 10 gone in 2 s: 5 a second.
    expect((await refusal()).retryAfterS).toBeCloseTo((30 - 10 + 1) / 5, 5);
  });

  it('gives a bounded guess, and says why, when nothing drains', async () => {
    const idle = setup({ limit: 1, backlog: () => 7 });
    const stuck = await idle.refusal();
    expect(stuck.retryAfterS).toBe(30);
    expect(stuck.message).toContain('nothing has drained');
    const orphan = setup({ limit: 1, backlog: () => 7, workers: 0 });
    expect((await orphan.refusal()).message).toContain('no worker');
  });
});
