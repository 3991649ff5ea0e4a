import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerPool } from '../../../src/cli/autoscale/worker-pool.js';
import type { PredictionRecord } from '../../../src/protocol/prediction.js';
import { startDeployment, type Deployment } from '../../helpers/deployment.js';
import { predict, request, waitForFinal } from '../../helpers/http.js';
import { modelRepo } from '../../helpers/model-repo.js';
import { runSpillway, spawnSpillway, type SpillwayProcess } from '../../helpers/processes.js';
import { inBrokerLegSuite, testBrokers } from '../../helpers/paths.js';
import { until } from '../../helpers/until.js';

const running: { deployment?: Deployment; autoscaler?: SpillwayProcess }[] = [];
afterEach(async () => {
  for (const { deployment, autoscaler } of running.splice(0)) {
    await autoscaler?.kill('SIGTERM');
    await deployment?.close();
  }
});

interface LogLine {
  msg?: string;
  to?: number;
}
const lines = (p: SpillwayProcess): LogLine[] => p.logs.flatMap((l) => (l.startsWith('{') ? [JSON.parse(l) as LogLine] : []));
const scaledTo = (p: SpillwayProcess) => lines(p).filter((l) => l.msg?.startsWith('scaling sleep to')).map((l) => l.to);
const drained = (p: SpillwayProcess) => lines(p).filter((l) => l.msg === 'worker drained and stopped').length;

/** A gateway with no worker of its own, and the autoscaler running workers on the same queue. */
async function start(sleep: { per_batch_ms: number }, flags: readonly string[], broker = 'embedded') {
  const dataDir = mkdtempSync(join(tmpdir(), 'spillway-autoscale-'));
  const models = modelRepo({ sleep: { ...sleep, concurrency: 1, max_batch_size: 1 } });
  const deployment = await startDeployment({ withWorker: false, dataDir, models, broker });
  const entry: { deployment?: Deployment; autoscaler?: SpillwayProcess } = { deployment };
  running.push(entry);
  const where = ['--broker', broker, '--prefix', deployment.prefix, '--data', dataDir, '--models', models];
  const autoscaler = await spawnSpillway(['autoscale', '--model', 'sleep', ...where, '--tick-ms', '200', ...flags]);
  entry.autoscaler = autoscaler;
  const workersSeen = async () => (await request<{ workers: unknown[] }>(`${deployment.url}/v1/models/sleep`)).body.workers.length;
  return { deployment, autoscaler, workersSeen };
}

describe.each(testBrokers)('spillway autoscale on the $name broker', ({ url }) => {
  it('scales up under a backlog to catch up in time, then to zero once idle, every request served', { timeout: 180_000 }, async () => {
    // One worker serves 5 requests a second; 80 queued (16 s of work for one) with a 4 s target
    // need both workers allowed, for long enough that a slow machine still sees the second start.
    const { deployment, autoscaler, workersSeen } = await start(
      { per_batch_ms: 200 },
      [...['--min', '0', '--max', '2', '--target-s', '4'], ...['--cooldown-s', '4', '--idle-s', '1', '--window-s', '6']],
      url,
    );
    expect(scaledTo(autoscaler)).toEqual([]);
    const ids: string[] = [];
    for (let i = 0; i < 80; i++) ids.push((await predict(deployment.url, 'sleep', { i })).body.id);
    // First one worker (nothing measured yet), then as many as the planner asks for.
    await until('two workers', async () => (scaledTo(autoscaler).includes(2) && (await workersSeen()) === 2 ? true : undefined), 60_000);
    expect(scaledTo(autoscaler)[0]).toBe(1);
    const finals = await Promise.all(ids.map((id) => waitForFinal(deployment.url, id, 90_000)));
    expect(finals.map((r) => r.status)).toEqual(ids.map(() => 'succeeded'));
    await until('scaled to zero', () => (scaledTo(autoscaler).at(-1) === 0 && drained(autoscaler) === 2 ? true : undefined), 60_000);
    // Drained, not killed: nothing ran twice, nothing is left.
    expect(finals.every((r: PredictionRecord) => r.attempts === 1)).toBe(true);
    expect(await deployment.broker.backlog(`${deployment.prefix}.requests.sleep`, 'workers')).toBe(0);
  });
});

describe.skipIf(inBrokerLegSuite)('spillway autoscale', () => {
  it('drains its workers on SIGTERM: work in flight finishes, the rest stays queued', async () => {
    const { deployment, autoscaler } = await start({ per_batch_ms: 1500 }, ['--min', '1', '--max', '1']);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await predict(deployment.url, 'sleep', { i })).body.id);
    const status = async (id: string) => (await request<PredictionRecord>(`${deployment.url}/v1/predictions/${id}`)).body.status;
    const first = await until('one request running', async () => {
      for (const id of ids) if ((await status(id)) === 'running') return id;
      return undefined;
    }, 30_000);
    expect(await autoscaler.kill('SIGTERM')).toBe(0);
    expect(drained(autoscaler)).toBe(1);
    expect((await waitForFinal(deployment.url, first, 10_000)).status).toBe('succeeded');
    const rest = ids.filter((id) => id !== first);
    // Nothing lost: what was not taken is still queued for the next worker.
    for (const id of rest) expect(await status(id)).toBe('queued');
    expect(await deployment.broker.backlog('spillway.requests.sleep', 'workers')).toBe(rest.length);
  });

  it('refuses a minimum above its maximum, a maximum it cannot start, and an unknown model, with exit 2', async () => {
    const models = modelRepo();
    const cases: [string[], string][] = [
      [['--min', '3', '--max', '2'], '--min 3 is above --max 2'],
      [['--max', '999'], 'more workers than can be started here: this machine has'],
      [['--max', '3', '--ceiling', '2'], '--ceiling is 2'],
      [['--max', '0'], '--max must be a whole number ≥ 1'],
      [['--target-s', '0'], '--target-s must be a number of seconds > 0'],
      [['--model', 'nope'], 'no model named "nope"'],
    ];
    for (const [flags, message] of cases) {
      const { code, output } = await runSpillway(['autoscale', '--model', 'sleep', '--models', models, '--max', '1', ...flags]);
      expect(code, flags.join(' ')).toBe(2);
      expect(output).toContain(message);
    }
    const missing = await runSpillway(['autoscale']);
    expect(missing.code).toBe(2);
    expect(missing.output).toContain('--model is required');
  });

  it('keeps going when a worker fails to start, and tries again after the retry period', async () => {
    const logger = pino({ level: 'silent' });
    // A "worker" that dies at once, as one whose model or broker is broken would.
    const pool = new WorkerPool({ command: [process.execPath, '-e', 'process.exit(3)'], logger, retryAfterMs: 300 });
    pool.scaleTo(1);
    expect(pool.size).toBe(1);
    await until('the failed start to be noticed', () => (pool.size === 0 ? true : undefined));
    const failedAt = Date.now();
    pool.scaleTo(1);
    expect(pool.size).toBe(0);
    await until('a retry', () => {
      pool.scaleTo(1);
      return pool.size === 1 ? true : undefined;
    });
    expect(Date.now() - failedAt).toBeGreaterThanOrEqual(250);
    await pool.stop();
  });
});
