/**
 * Durable priorities (issue 15): with a backlog of low-priority requests queued, how long does a
 * high-priority request wait, against one batch time? And does the low backlog keep draining?
 *
 * Two runs on the same model and machine, differing only in the model's `priorities`:
 *   - priorities: true  (high and low on topics of their own, served high first, with aging);
 *   - priorities: false (one topic: the "high" request waits its turn, the baseline).
 * Each run starts a gateway alone, queues `--low` low requests, then starts the worker; once the
 * worker is draining, high requests arrive at `--high-rate` per second for `--high-s` seconds,
 * each holding its connection (Prefer: wait) for its record. Each high's wait is its record's
 * `queue_ms` (acceptance to start); one batch time is the `inference_ms` of the batch that held it.
 * Low throughput is the fall of the queue depth (GET /v1/models/sleep, every 250 ms) while the
 * highs arrive. Aim: high p99 wait ≤ about one batch time; low drain rate with priorities ≈ without.
 *
 *   npm run build && npx tsx bench/priorities.ts   (~3 minutes)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpClient } from '../src/loadgen/http-client.js';
import { describeModel } from '../src/loadgen/model-probe.js';
import { steadyProfile } from '../src/loadgen/profiles.js';
import { ModelSampler } from '../src/loadgen/sampler.js';
import { callOnSchedule } from '../src/loadgen/scheduled-calls.js';
import { buildSchedule } from '../src/loadgen/schedule.js';
import { distribution, median, type Distribution } from '../src/loadgen/stats.js';
import { num, parseFlags } from './lib/args.js';
import { Semaphore } from './lib/semaphore.js';
import { fmt, log, machineInfo, markdownTable, ratio, writeResult } from './lib/report.js';
import { modelRepository, snapshotBuild, startSpillway, type BuildSnapshot } from './lib/spillway.js';

const flags = parseFlags('Usage: npx tsx bench/priorities.ts [options]   (needs `npm run build`)', {
  low: { description: 'low-priority requests queued before the worker starts (enough that 10,000 are still queued when the last high arrives)', default: '13500' },
  'batch-size': { description: "the model's max_batch_size", default: '32' },
  'batch-ms': { description: 'service time of one batch (sleep model, per_batch_ms)', default: '200' },
  concurrency: { description: "the model's worker slots", default: '2' },
  'high-rate': { description: 'high-priority requests per second', default: '2' },
  'high-s': { description: 'seconds of high-priority arrivals', default: '10' },
  'submit-concurrency': { description: 'low requests in flight while queueing them', default: '32' },
  seed: { description: 'seed of the high arrival schedule', default: '1' },
});
const lowCount = num('low', flags.low, { min: 1, integer: true });
const batchSize = num('batch-size', flags['batch-size'], { min: 1, integer: true });
const batchMs = num('batch-ms', flags['batch-ms'], { min: 1 });
const concurrency = num('concurrency', flags.concurrency, { min: 1, integer: true });
const highRate = num('high-rate', flags['high-rate'], { min: 0.1 });
const highS = num('high-s', flags['high-s'], { min: 1 });
const submitConcurrency = num('submit-concurrency', flags['submit-concurrency'], { min: 1, integer: true });
const seed = num('seed', flags.seed, { min: 0, integer: true });
const capacity = (concurrency * batchSize * 1000) / batchMs;

interface HighRecord {
  readonly status?: string;
  readonly priority?: string;
  readonly metrics?: { readonly queue_ms?: number; readonly inference_ms?: number };
}

interface RunResult {
  readonly priorities: boolean;
  readonly low_queued_at_first_high: number | null;
  readonly low_queued_at_last_high: number | null;
  readonly highs_sent: number;
  readonly highs_succeeded: number;
  readonly high_queue_ms: Distribution;
  readonly high_queue_max_ms: number | null;
  /** Median inference_ms of the batches that held the highs: one batch time as measured. */
  readonly batch_ms: number | null;
  readonly low_drain_per_s: number | null;
}

async function queueLows(http: HttpClient): Promise<void> {
  const body = JSON.stringify({ input: {}, priority: 'low' });
  const gate = new Semaphore(submitConcurrency);
  let refused = 0;
  await Promise.all(
    Array.from({ length: lowCount }, async () => {
      await gate.acquire();
      try {
        const answer = await http.request('POST', 'v1/models/sleep/predictions', { headers: { prefer: 'respond-async' }, body, timeoutMs: 30_000 });
        if (answer.status !== 202) refused += 1;
      } finally {
        gate.release();
      }
    }),
  );
  if (refused > 0) throw new Error(`${refused} of ${lowCount} low requests were not queued`);
}

async function run(prioritiesOn: boolean, build: BuildSnapshot): Promise<RunResult> {
  const repo = modelRepository([
    { name: 'sleep', overrides: { priorities: prioritiesOn, concurrency, max_batch_size: batchSize, parameters: { per_batch_ms: batchMs, per_item_ms: 0 } } },
  ]);
  const dataDir = mkdtempSync(join(tmpdir(), 'spillway-priorities-'));
  const started: { stop(): Promise<unknown> }[] = [];
  try {
    const gateway = await startSpillway({ main: build.main, models: repo.dir, command: 'gateway', dataDir });
    started.push(gateway);
    const http = new HttpClient(gateway.url);
    const t0 = performance.now();
    await queueLows(http);
    log(`priorities ${prioritiesOn}: queued ${lowCount} low in ${fmt((performance.now() - t0) / 1000)} s; starting the worker`);
    const sampler = new ModelSampler({ http, model: 'sleep', interval_ms: 250, clock: () => performance.now() });
    sampler.start(await describeModel(http, 'sleep', 5000));
    started.push(await startSpillway({ main: build.main, models: repo.dir, command: 'worker', dataDir }));
    // Highs arrive once the worker is draining, not while it loads.
    while ((sampler.latest?.queue_depth ?? lowCount) >= lowCount) await new Promise((r) => setTimeout(r, 100));
    const times = buildSchedule(steadyProfile({ rate: highRate, duration_s: highS }), { process: 'uniform', seed });
    const depthAt: number[] = [];
    const highBody = JSON.stringify({ input: {}, priority: 'high' });
    const shots = await callOnSchedule<HighRecord | undefined>(
      times,
      async (i) => {
        depthAt[i] = sampler.latest?.queue_depth ?? Number.NaN;
        const answer = await http.request('POST', 'v1/models/sleep/predictions', { headers: { prefer: 'wait=120' }, body: highBody, timeoutMs: 150_000 });
        const record = answer.status === 200 ? (JSON.parse(answer.body) as HighRecord) : undefined;
        return { ok: record?.status === 'succeeded', detail: record };
      },
      { failedDetail: () => undefined, drain_ms: 150_000 },
    );
    const firstSent = Math.min(...shots.map((s) => s.sent));
    const lastScheduled = Math.max(...shots.map((s) => s.scheduled));
    await sampler.stop();
    // The fall of the depth over the arrival window (the highs add a handful, counted back).
    const window = sampler.samples.filter((s) => s.queue_depth !== null && s.t_ms >= firstSent && s.t_ms <= lastScheduled + 250);
    const first = window[0];
    const last = window.at(-1);
    const highsIn = shots.filter((s) => s.sent <= (last?.t_ms ?? 0)).length;
    const drain =
      first === undefined || last === undefined || last.t_ms <= first.t_ms
        ? null
        : ((first.queue_depth ?? 0) - (last.queue_depth ?? 0) + highsIn) / ((last.t_ms - first.t_ms) / 1000);
    const records = shots.map((s) => s.detail).filter((r): r is HighRecord => r !== undefined);
    const waits = records.map((r) => r.metrics?.queue_ms ?? Number.NaN).filter(Number.isFinite);
    const result: RunResult = {
      priorities: prioritiesOn,
      low_queued_at_first_high: depthAt[0] ?? null,
      low_queued_at_last_high: depthAt.at(-1) ?? null,
      highs_sent: shots.length,
      highs_succeeded: shots.filter((s) => s.ok).length,
      high_queue_ms: distribution(waits),
      high_queue_max_ms: waits.length === 0 ? null : Math.max(...waits),
      batch_ms: median(records.map((r) => r.metrics?.inference_ms ?? Number.NaN).filter(Number.isFinite)),
      low_drain_per_s: drain,
    };
    log(
      `priorities ${prioritiesOn}: ${result.highs_succeeded}/${result.highs_sent} highs; wait p50 ${fmt(result.high_queue_ms.p50, 0)} ms, ` +
        `p99 ${fmt(result.high_queue_ms.p99, 0)} ms; batch ${fmt(result.batch_ms, 0)} ms; low drain ${fmt(drain, 0)}/s`,
    );
    http.close();
    return result;
  } finally {
    for (const p of started.reverse()) await p.stop();
    rmSync(dataDir, { recursive: true, force: true });
    repo.remove();
  }
}

async function main(): Promise<void> {
  const build = snapshotBuild();
  const results: RunResult[] = [];
  try {
    log(`capacity ${fmt(capacity, 0)} req/s (${concurrency} slots × ${batchSize} per ${batchMs} ms batch); ${lowCount} low queued; highs at ${highRate}/s for ${highS} s`);
    for (const on of [true, false]) results.push(await run(on, build));
  } finally {
    build.remove();
  }
  const [withP, without] = results as [RunResult, RunResult];
  const rows = results.map((r) => [
    r.priorities ? 'priorities: true' : 'priorities: false (one topic)',
    `${fmt(r.low_queued_at_first_high, 0)} → ${fmt(r.low_queued_at_last_high, 0)}`,
    `${r.highs_succeeded}/${r.highs_sent}`,
    fmt(r.high_queue_ms.p50, 0),
    fmt(r.high_queue_ms.p99, 0),
    fmt(r.high_queue_max_ms, 0),
    fmt(r.batch_ms, 0),
    `${fmt(ratio(r.high_queue_ms.p99, r.batch_ms), 2)}×`,
    fmt(r.low_drain_per_s, 0),
  ]);
  const table = markdownTable(
    ['run', 'queued when highs arrived', 'highs ok', 'high wait p50 ms', 'p99 ms', 'max ms', 'batch ms', 'p99 / batch', 'low drain req/s'],
    rows,
  );
  process.stdout.write(`\n${table}\n\nlow drain with priorities ÷ without: ${fmt(ratio(withP.low_drain_per_s, without.low_drain_per_s), 2)}; high p99 wait without ÷ with: ${fmt(ratio(without.high_queue_ms.p99, withP.high_queue_ms.p99), 0)}×\n`);
  const path = writeResult('priorities', {
    machine: machineInfo(),
    build: { commit: build.git_commit, dirty: build.git_dirty, sha256: build.sha256 },
    settings: { low: lowCount, batch_size: batchSize, batch_ms: batchMs, concurrency, high_rate: highRate, high_s: highS, seed, capacity },
    results,
  });
  log(`wrote ${path}`);
  const failed = results.some((r) => r.highs_succeeded < r.highs_sent);
  process.exitCode = failed ? 1 : 0;
}

await main();
