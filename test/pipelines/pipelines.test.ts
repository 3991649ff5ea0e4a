import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayDeadLetters } from '../../src/dlq/dead-letters.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { topicsFor, workerGroup } from '../../src/protocol/topics.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { testBrokers } from '../helpers/paths.js';
import { readEvents } from '../helpers/sse.js';
import { until } from '../helpers/until.js';

const pipelines: Record<string, string[]> = {
  wordcount: ['words', 'count'],
  misfit: ['echo', 'count'],
  'echo-flaky': ['echo', 'flaky'],
  'gate-echo': ['gate', 'echo'],
};

function repository(): string {
  const dir = modelRepo({ fixtures: ['words', 'count', 'flaky', 'gate'] });
  for (const [name, steps] of Object.entries(pipelines)) {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'pipeline.yaml'), `description: test pipeline ${name}\nsteps:\n${steps.map((m) => `  - model: ${m}\n`).join('')}`);
  }
  return dir;
}

/** The step of every record the response stream carried for `id`, read by a group of our own. */
async function stepsOnStream(d: Deployment, id: string): Promise<string[]> {
  const sub = await d.broker.subscribe({ topic: topicsFor(d.prefix).responses, group: `probe-${randomUUID()}`, from: 'earliest', ephemeral: true });
  const seen: string[] = [];
  for (let batch = await sub.take(1000, { timeoutMs: 300 }); batch.length > 0; batch = await sub.take(1000, { timeoutMs: 300 })) {
    for (const delivery of batch) {
      const record = JSON.parse(delivery.value) as PredictionRecord;
      if (record.id === id && record.step !== undefined) seen.push(record.step);
      await delivery.ack();
    }
  }
  await sub.close();
  return seen;
}

describe.each(testBrokers)('pipelines on the $name broker', ({ url }) => {
  let d: Deployment;
  const gates = mkdtempSync(join(tmpdir(), 'spillway-gates-'));
  beforeAll(async () => {
    d = await startDeployment({ models: repository(), broker: url });
  });
  afterAll(async () => d.close());

  it('lists a pipeline with its steps beside the models it runs', async () => {
    const res = await request<{ models: { name: string; kind: string; steps?: string[] }[] }>(`${d.url}/v1/models`);
    expect(res.body.models).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'wordcount', kind: 'pipeline', state: 'ready', steps: ['words', 'count'], description: 'test pipeline wordcount' }),
        expect.objectContaining({ name: 'words', kind: 'model' }),
      ]),
    );
    const one = await request(`${d.url}/v1/models/wordcount`);
    expect(one.body).toMatchObject({ name: 'wordcount', kind: 'pipeline', steps: ['words', 'count'] });
  });

  it('runs each step as a stream job and answers a held wait with the last step output, timed per step', async () => {
    const res = await predict(d.url, 'wordcount', { text: 'the quick brown fox' }, { prefer: 'wait=20' });
    expect(res.status).toBe(200);
    const r = res.body;
    expect(r).toMatchObject({ model: 'wordcount', status: 'succeeded', step: 'count', output: { count: 4, longest: 'quick' }, attempts: 2 });
    expect(r.steps).toHaveLength(2);
    for (const [i, model] of ['words', 'count'].entries()) {
      const step = r.steps![i]!;
      expect(step).toMatchObject({ model, status: 'succeeded', attempts: 1, worker: 'test-worker' });
      expect(step.queue_ms).toBeGreaterThanOrEqual(0);
      expect(step.inference_ms).toBeGreaterThanOrEqual(0);
      expect(Date.parse(step.completed_at!)).toBeGreaterThanOrEqual(Date.parse(step.started_at!));
    }
    // The second step started after the first ended: they ran one after the other, through the queue.
    expect(Date.parse(r.steps![1]!.started_at!)).toBeGreaterThanOrEqual(Date.parse(r.steps![0]!.completed_at!));
    expect(r.metrics.total_ms).toBeGreaterThanOrEqual(r.metrics.queue_ms ?? 0);
    expect(r.started_at).toBe(r.steps![0]!.started_at);
    const polled = await request<PredictionRecord>(`${d.url}/v1/predictions/${r.id}`);
    expect(polled.body).toEqual(r);
  });

  it('answers 202 at once, and the poll and the event stream show one event per step', async () => {
    const release = join(gates, randomUUID());
    const res = await predict(d.url, 'gate-echo', { release });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ model: 'gate-echo', status: 'queued', step: 'gate' });
    // The gate holds its step until released, and it is released only once the stream has shown
    // it running: a stream that connects late (a busy machine) cannot miss the step by design.
    let gateShown = false;
    const streamed = readEvents(`${d.url}/v1/predictions/${res.body.id}/events`, ({ data }) => {
      if (data.status === 'running' && data.step === 'gate') gateShown = true;
    });
    await until('the event stream showing the gate step running', () => (gateShown ? true : undefined));
    await until('a poll showing the gate step running', async () => {
      const polled = await request<PredictionRecord>(`${d.url}/v1/predictions/${res.body.id}`);
      return polled.body.status === 'running' && polled.body.step === 'gate' ? true : undefined;
    });
    writeFileSync(release, '');
    const final = await waitForFinal(d.url, res.body.id);
    expect(final).toMatchObject({ status: 'succeeded', step: 'echo', output: { released: release } });
    // The stream starts from the record it finds: queued, unless the gate step began first. Each
    // later step shows as queued (handed over) and then started, unless it started first.
    const seen = (await streamed).events.map(({ data: e }) => `${e.status}:${e.step ?? ''}:${e.steps?.at(-1)?.status ?? ''}`).filter((e) => !e.startsWith('queued:'));
    expect(seen.filter((e) => e !== 'running:echo:queued')).toEqual(['running:gate:running', 'running:echo:running', 'succeeded:echo:succeeded']);
  });

  it("checks the first step's declared input at submit and queues nothing", async () => {
    const res = await predict(d.url, 'wordcount', { words: 'not text' }, { prefer: 'wait=5' });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ code: 'SPILLWAY_INVALID_INPUT' });
  });

  it("fails the step whose output does not fit the next step's declared input, naming it", async () => {
    const res = await predict(d.url, 'misfit', { text: 'hello' }, { prefer: 'wait=20' });
    expect(res.body).toMatchObject({ model: 'misfit', status: 'failed', step: 'echo', error: { code: 'SPILLWAY_STEP_OUTPUT_INVALID' } });
    expect(res.body.error?.message).toMatch(/output of step echo does not fit the input of the next step, count/);
    expect(res.body.steps?.map((s) => s.status)).toEqual(['failed']);
  });

  it('a failure at a later step is the outcome, and names that step', async () => {
    const res = await predict(d.url, 'echo-flaky', { key: `fatal-${randomUUID()}`, fail_times: 1, retryable: false }, { prefer: 'wait=20' });
    expect(res.body).toMatchObject({ status: 'failed', step: 'flaky', error: { code: 'SPILLWAY_MODEL_FAILED' } });
    expect(res.body.steps?.map((s) => `${s.model}:${s.status}`)).toEqual(['echo:succeeded', 'flaky:failed']);
  });

  it('retries a step on its own, dead-letters it, and a replay resumes at that step', async () => {
    const key = `exhaust-${randomUUID()}`;
    // flaky fails its first three calls for this key: every attempt the step has (max_attempts 3).
    const failed = await predict(d.url, 'echo-flaky', { key, fail_times: 3, retryable: true }, { prefer: 'wait=30' });
    expect(failed.body).toMatchObject({ status: 'failed', step: 'flaky', attempts: 4 });
    expect(failed.body.steps?.map((s) => `${s.model}:${s.attempts}`)).toEqual(['echo:1', 'flaky:3']);
    const { replayed } = await replayDeadLetters(d.broker, topicsFor(d.prefix), (l) => l.id === failed.body.id, async () => false);
    expect(replayed.map((l) => l.kind)).toEqual(['request']);
    const final = await until('the replay to finish', async () => {
      const r = await waitForFinal(d.url, failed.body.id);
      return r.status === 'succeeded' ? r : undefined;
    });
    expect(final).toMatchObject({ status: 'succeeded', step: 'flaky', replay: 1, output: { calls: 4 } });
    // The first step did not run again: its entry is the one from before the dead letter.
    expect(final.steps![0]).toEqual(failed.body.steps![0]);
    expect(final.steps![1]).toMatchObject({ model: 'flaky', status: 'succeeded', attempts: 1 });
  });

  it('a cancel aborts the running step and no later step starts', async () => {
    const release = join(gates, randomUUID());
    const res = await predict(d.url, 'gate-echo', { release });
    await until('the gate step running', async () => {
      const polled = await request<PredictionRecord>(`${d.url}/v1/predictions/${res.body.id}`);
      return polled.body.status === 'running' ? true : undefined;
    });
    const canceled = await request<PredictionRecord>(`${d.url}/v1/predictions/${res.body.id}/cancel`, { method: 'POST' });
    expect(canceled.body).toMatchObject({ status: 'canceled', model: 'gate-echo' });
    writeFileSync(release, '');
    const final = await waitForFinal(d.url, res.body.id);
    expect(final.status).toBe('canceled');
    // Once the gate step is settled (acked), a next step it had queued would be waiting, running
    // or done: none is, and no record of this prediction ever reached the echo step.
    const topics = topicsFor(d.prefix);
    await until('the gate step to be settled', async () => ((await d.broker.backlog(topics.requests('gate'), workerGroup)) === 0 ? true : undefined));
    expect(await d.broker.backlog(topics.requests('echo'), workerGroup)).toBe(0);
    const steps = await stepsOnStream(d, res.body.id);
    expect(steps).not.toContain('echo');
    expect(steps).toContain('gate');
  });

  it('no step starts after the deadline: a request past it when its step comes up expires there', async () => {
    const release = join(gates, randomUUID());
    const res = await request<PredictionRecord>(`${d.url}/v1/models/gate-echo/predictions`, { body: { input: { release }, timeout_ms: 1500 } });
    expect(res.status).toBe(202);
    const deadline = Date.parse(res.body.deadline!);
    await until('the deadline to pass', async () => (Date.now() > deadline + 50 ? true : undefined));
    writeFileSync(release, '');
    const final = await waitForFinal(d.url, res.body.id);
    expect(final).toMatchObject({ status: 'expired', step: 'echo', error: { code: 'SPILLWAY_DEADLINE_EXCEEDED' } });
    expect(final.steps?.map((s) => `${s.model}:${s.status}`)).toEqual(['gate:succeeded', 'echo:expired']);
    expect(existsSync(release)).toBe(true);
  });
});
