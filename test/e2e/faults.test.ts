import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { processesOfTest } from '../helpers/processes.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const { start, killAll } = processesOfTest();
afterEach(killAll);

function setup(sleepMs: number, fixtures: readonly string[] = []) {
  const models = modelRepo({ sleep: { per_batch_ms: sleepMs }, fixtures });
  const common = ['--data', mkdtempSync(join(tmpdir(), 'spillway-faults-')), '--models', models, '--lease-ms', '1500'];
  return {
    gateway: () => start(['gateway', ...common, '--port', '0']),
    worker: () => start(['worker', ...common]),
  };
}

/** Waits until the model's workers report this many requests in flight. */
async function untilInFlight(url: string, model: string, atLeast: number) {
  for (let i = 0; i < 800; i++) {
    const res = await request<{ workers: { in_flight: number }[] }>(`${url}/v1/models/${model}`);
    if (res.body.workers.reduce((n, w) => n + w.in_flight, 0) >= atLeast) return;
    await sleep(25);
  }
  throw new Error(`no worker reported ${atLeast} requests in flight`);
}

/** Waits until a worker of the model reports that it is draining. */
async function untilDraining(url: string, model: string) {
  for (let i = 0; i < 400; i++) {
    const res = await request<{ workers: { draining: boolean }[] }>(`${url}/v1/models/${model}`);
    if (res.body.workers.some((w) => w.draining)) return;
    await sleep(25);
  }
  throw new Error('no worker reported draining');
}

describe('faults, with every part in its own process', () => {
  it('a worker killed while it holds requests: another finishes them, each client sees one outcome', async () => {
    const s = setup(300);
    const gateway = await s.gateway();
    const first = await s.worker();
    const count = 40;
    const answers = Array.from({ length: count }, (_, i) => predict(gateway.url, 'sleep', { i }, { prefer: 'wait=60' }));
    await untilInFlight(gateway.url, 'sleep', 1);
    expect(await first.kill('SIGKILL')).toBe(null);
    await s.worker();
    const results = await Promise.all(answers);
    expect(results.map((r) => r.status)).toEqual(Array(count).fill(200));
    expect(new Set(results.map((r) => r.body.id)).size).toBe(count);
    expect(results.map((r) => (r.body.output as { input: { i: number } }).input.i).sort((a, b) => a - b)).toEqual(
      Array.from({ length: count }, (_, i) => i),
    );
    // The requests the dead worker held ran again: their attempt count shows it.
    expect(results.some((r) => r.body.attempts >= 2)).toBe(true);
    // The outcome a client got is the outcome the store keeps.
    for (const r of results) {
      expect((await request<PredictionRecord>(`${gateway.url}/v1/predictions/${r.body.id}`)).body).toEqual(r.body);
    }
  });

  it('a gateway restarted after accepting requests: they stay retrievable and complete', async () => {
    const s = setup(200);
    const first = await s.gateway();
    await s.worker();
    const accepted = await Promise.all(Array.from({ length: 20 }, (_, i) => predict(first.url, 'sleep', { i })));
    expect(accepted.every((r) => r.status === 202)).toBe(true);
    await first.kill('SIGKILL');
    const second = await s.gateway();
    for (const r of accepted) {
      const final = await waitForFinal(second.url, r.body.id);
      expect(final.status).toBe('succeeded');
      expect(final.created_at).toBe(r.body.created_at);
    }
  });

  it('SIGTERM drains a worker: it finishes what it holds, takes nothing new, and exits 0', async () => {
    // The gate model holds each request until the test releases it, so "in flight" and
    // "draining" are states the test waits for rather than windows it races.
    const s = setup(20, ['gate']);
    const release = join(mkdtempSync(join(tmpdir(), 'spillway-gate-')), 'release');
    const gateway = await s.gateway();
    const worker = await s.worker();
    const held = await Promise.all(Array.from({ length: 2 }, (_, i) => predict(gateway.url, 'gate', { release, i })));
    await untilInFlight(gateway.url, 'gate', 2);
    // Both slots are busy, so this one waits in the queue until a slot frees.
    const later = await predict(gateway.url, 'gate', { release, late: true });
    const exit = worker.kill('SIGTERM');
    await untilDraining(gateway.url, 'gate');
    writeFileSync(release, '');
    expect(await exit).toBe(0);
    for (const r of held) {
      const final = await waitForFinal(gateway.url, r.body.id, 5000);
      expect(final).toMatchObject({ status: 'succeeded', attempts: 1 });
    }
    // Its slots came free while it drained, and it still did not take the waiting request.
    expect((await request<PredictionRecord>(`${gateway.url}/v1/predictions/${later.body.id}`)).body.status).toBe('queued');
    await s.worker();
    expect((await waitForFinal(gateway.url, later.body.id)).status).toBe('succeeded');
  });

  it('two gateways: a client is answered even when the other gateway stored its result', async () => {
    const s = setup(20);
    const [a, b] = await Promise.all([s.gateway(), s.gateway()]);
    await s.worker();
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => predict((i % 2 === 0 ? a : b).url, 'sleep', { i }, { prefer: 'wait=30' })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(60).fill(200));
    for (const r of results.slice(0, 10)) {
      expect((await request<PredictionRecord>(`${b.url}/v1/predictions/${r.body.id}`)).body).toEqual(r.body);
    }
  });

  it('several workers share one queue file with a gateway in another process', async () => {
    const s = setup(200);
    const gateway = await s.gateway();
    await Promise.all([s.worker(), s.worker()]);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => predict(gateway.url, 'sleep', { i }, { prefer: 'wait=60' })));
    expect(results.every((r) => r.status === 200 && r.body.status === 'succeeded')).toBe(true);
    expect(new Set(results.map((r) => r.body.worker)).size).toBe(2);
    const model = await request<{ workers: unknown[] }>(`${gateway.url}/v1/models/sleep`);
    expect(model.body.workers).toHaveLength(2);
  });
});
