/**
 * The thesis, measured: workers provisioned for the average load, behind a queue, serve a burst
 * with nothing rejected or lost, while a synchronous deployment must be provisioned for the
 * peak. Runs the real commands only: `spillway plan` sizes the deployments, `spillway serve`
 * runs them, `spillway bench` loads them. See bench/README.md.
 *
 *   npm run build && npx tsx bench/thesis.ts      (~16 minutes)
 *
 * 1. Calibrate: a short steady run per dispatch mode measures the slot time per request
 *    (busy slot-seconds ÷ completions), which includes what the worker does around the model:
 *    async at 150% load (with a backlog, where the fluid model applies), sync at 50%.
 * 2. Plan: `spillway plan --json` with the measured service times gives the async workers
 *    (planned for the average, draining the spike within --catch-up) and the sync workers
 *    (planned for the peak).
 * 3. Four runs of the same burst (same seed): sync with the workers planned for the average,
 *    sync with the workers planned for the peak, async with the workers planned for the average,
 *    and async with `spillway autoscale` running one-slot worker processes from 1 up to
 *    --autoscale-max, to catch up within --catch-up. A "worker" is one slot (`--concurrency`),
 *    as in `spillway plan`; worker-seconds count the slots the gateway sees, so an autoscaled
 *    worker counts from its first heartbeat to its last.
 * 4. Report the rejections, losses, latency per phase, drain time and worker-seconds; the
 *    worker-seconds ratio sync-for-peak ÷ async, the mean-latency ratio async ÷ sync-for-peak
 *    before the spike, and the plan against the measurement (drain time, mean wait of the
 *    requests that arrived during the spike).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { num, parseFlags } from './lib/args.js';
import { fmt, log, machineInfo, markdownTable, writeResult } from './lib/report.js';
import { modelRepository, repoRoot, snapshotBuild, startSpillway } from './lib/spillway.js';

const run = promisify(execFile);

const flags = parseFlags('Usage: npx tsx bench/thesis.ts [options]   (needs `npm run build`)', {
  rate: { description: 'base arrival rate, requests/s', default: '40' },
  'spike-factor': { description: 'spike rate ÷ base rate', default: '4' },
  'spike-at': { description: 'seconds of base load before the spike', default: '60' },
  'spike-for': { description: 'seconds the spike lasts', default: '60' },
  after: { description: 'seconds of base load after the spike', default: '120' },
  'service-ms': { description: "the sleep model's time per request", default: '50' },
  'p99-ms': { description: 'latency target at the average, for the plan', default: '250' },
  'catch-up': { description: 'seconds within which the async deployment must drain the spike', default: '60' },
  calibrate: { description: 'seconds of each calibration run (0: plan with --service-ms as is)', default: '20' },
  seed: { description: 'seed of the arrival schedule (the same for every run)', default: '1' },
  'autoscale-max': { description: 'most worker processes the autoscaled run may start (0: twice the planned async workers)', default: '0' },
  'autoscale-cooldown': { description: "the autoscaler's --cooldown-s", default: '30' },
  'sync-loss': {
    description: "blocking probability at the peak that counts as rejecting nothing (the spike's ~10,000 arrivals should expect well under one)",
    default: '0.00001',
  },
});
const rate = num('rate', flags.rate, { min: 0.1 });
const spikeRate = rate * num('spike-factor', flags['spike-factor'], { min: 1 });
const spikeAt = num('spike-at', flags['spike-at'], { min: 1 });
const spikeFor = num('spike-for', flags['spike-for'], { min: 1 });
const after = num('after', flags.after, { min: 1 });
const serviceMs = num('service-ms', flags['service-ms'], { min: 1 });
const p99Ms = num('p99-ms', flags['p99-ms'], { min: 1 });
const catchUp = num('catch-up', flags['catch-up'], { min: 1 });
const calibrateS = num('calibrate', flags.calibrate, { min: 0 });
const seed = num('seed', flags.seed, { integer: true });
const syncLoss = num('sync-loss', flags['sync-loss'], { min: 0 });
const duration = spikeAt + spikeFor + after;
const autoscaleMax = num('autoscale-max', flags['autoscale-max'], { min: 0, integer: true });
const autoscaleCooldown = num('autoscale-cooldown', flags['autoscale-cooldown'], { min: 0 });

interface Distribution {
  readonly mean: number;
  readonly p50: number;
  readonly p90?: number;
  readonly p99: number;
  readonly max?: number;
}
interface Phase {
  readonly sent: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly lost: number;
  readonly completed: number;
  readonly latency_ms: Distribution;
}
interface BenchReport extends Phase {
  readonly errored: number;
  readonly reconciles: boolean;
  readonly queue_ms: Distribution;
  readonly inference_ms: Distribution;
  readonly phases: Readonly<Record<string, Phase & { readonly queue_ms?: Distribution }>>;
  readonly backlog_peak: number | null;
  readonly drain_s: number | null;
  readonly worker_seconds: number | null;
  readonly worker_busy_fraction: number | null;
  readonly send_lag_ms: Distribution;
}
interface PlanJson {
  readonly sync: { readonly workers: number | null };
  readonly async: {
    readonly workers: number | null;
    readonly drain_s: number | null;
    readonly backlog_peak: number | null;
    readonly spike_mean_wait_s: number | null;
    readonly mean_wait_ms: number | null;
  };
  readonly cost_ratio: number | null;
  readonly feasible: boolean;
}

const build = snapshotBuild();
const workDir = mkdtempSync(join(tmpdir(), 'spillway-thesis-'));
const repos = {
  async: modelRepository([{ name: 'sleep', overrides: { dispatch: 'async', parameters: { per_batch_ms: serviceMs, per_item_ms: 0 } } }]),
  sync: modelRepository([{ name: 'sleep', overrides: { dispatch: 'sync', parameters: { per_batch_ms: serviceMs, per_item_ms: 0 } } }]),
};

async function spillway(args: readonly string[]): Promise<{ stdout: string; code: number }> {
  try {
    const { stdout } = await run(process.execPath, [build.main, ...args], { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024 });
    return { stdout, code: 0 };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number };
    if (typeof e.code === 'number' && e.stdout !== undefined) return { stdout: e.stdout, code: e.code };
    throw new Error(`spillway ${args.join(' ')} failed: ${e.stderr ?? String(error)}`);
  }
}

/**
 * One deployment, one bench run against it; returns the report and the slot-milliseconds the
 * workers spent per completed request (their total busy time, read once a heartbeat after the
 * last completion has certainly arrived, over the completions).
 */
async function measure(name: string, mode: 'async' | 'sync', workers: number, profile: readonly string[]): Promise<BenchReport & { slot_ms: number }> {
  const server = await startSpillway({ main: build.main, models: repos[mode].dir, args: ['--concurrency', String(workers)] });
  const out = join(workDir, `${name}.json`);
  let busyMs = Number.NaN;
  try {
    log(`${name}: ${mode} with ${workers} workers, ${profile.join(' ')}`);
    const { code } = await spillway(['bench', '--target', server.url, '--model', 'sleep', '--out', out, '--quiet', '--seed', String(seed), '--input', '{"thesis":true}', ...profile]);
    if (code !== 0) throw new Error(`spillway bench exited with ${code}`);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const summary = (await (await fetch(`${server.url}/v1/models/sleep`)).json()) as { workers: { busy_ms?: number }[] };
    busyMs = summary.workers.reduce((n, w) => n + (w.busy_ms ?? Number.NaN), 0);
  } finally {
    await server.stop();
  }
  const parsed = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;
  const report = { ...parsed, slot_ms: busyMs / parsed.completed };
  log(
    `${name}: sent ${report.sent}, rejected ${report.rejected}, lost ${report.lost}, mean ${fmt(report.latency_ms.mean)} ms, ` +
      `p99 ${fmt(report.latency_ms.p99)} ms, drain ${fmt(report.drain_s ?? Number.NaN)} s, worker-s ${fmt(report.worker_seconds ?? Number.NaN)}`,
  );
  return report;
}

/**
 * The same burst against a gateway and `spillway autoscale`: one-slot worker processes, at least
 * one, as many as catch up within --catch-up, at most `max`. The ceiling is raised to `max`: on a
 * small machine these workers mostly sleep (the model is a sleep), so more processes than cores
 * is what the run is about.
 */
async function measureAutoscaled(name: string, max: number, profile: readonly string[]): Promise<BenchReport> {
  const gateway = await startSpillway({ main: build.main, models: repos.async.dir, command: 'gateway' });
  const out = join(workDir, `${name}.json`);
  try {
    const scaling = ['--model', 'sleep', '--min', '1', '--max', String(max), '--ceiling', String(max), '--target-s', String(catchUp), '--cooldown-s', String(autoscaleCooldown), '--concurrency', '1'];
    const autoscaler = await startSpillway({ main: build.main, models: repos.async.dir, command: 'autoscale', dataDir: gateway.dataDir, args: scaling });
    try {
      log(`${name}: async, autoscaled 1..${max} one-slot workers, ${profile.join(' ')}`);
      const { code } = await spillway(['bench', '--target', gateway.url, '--model', 'sleep', '--out', out, '--quiet', '--seed', String(seed), '--input', '{"thesis":true}', ...profile]);
      if (code !== 0) throw new Error(`spillway bench exited with ${code}`);
    } finally {
      await autoscaler.stop(30_000);
    }
  } finally {
    await gateway.stop();
  }
  const report = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;
  log(
    `${name}: sent ${report.sent}, rejected ${report.rejected}, lost ${report.lost}, mean ${fmt(report.latency_ms.mean)} ms, ` +
      `p99 ${fmt(report.latency_ms.p99)} ms, drain ${fmt(report.drain_s ?? Number.NaN)} s, worker-s ${fmt(report.worker_seconds ?? Number.NaN)}`,
  );
  return report;
}

async function plan(service: number): Promise<PlanJson> {
  const args = ['plan', '--rate', String(rate), '--spike-rate', String(spikeRate), '--spike-for', String(spikeFor), '--service-ms', fmt(service, 3), '--p99-ms', String(p99Ms), '--catch-up', String(catchUp), '--sync-loss', String(syncLoss), '--json'];
  const { stdout, code } = await spillway(args);
  const parsed = JSON.parse(stdout) as PlanJson;
  if (code !== 0 || !parsed.feasible) throw new Error(`spillway ${args.join(' ')}: no feasible plan`);
  return parsed;
}

const pct = (part: number, whole: number) => (whole === 0 ? '0' : fmt((100 * part) / whole, 2));
const within = (measured: number, planned: number) => Math.abs(measured - planned) / planned;

async function main(): Promise<void> {
  const machine = machineInfo();
  const startedAt = new Date().toISOString();
  // Calibration at 50% of the nominal capacity of 4 slots.
  const calibration: Record<string, { report: BenchReport; slot_ms: number } | undefined> = {};
  // A model that sleeps 50 ms occupies its slot a little longer: the worker also decodes the
  // request, publishes the result durably and acks. The plan must know the time a slot is held.
  // Async is calibrated where the plan's fluid model lives, with a backlog (150% load: results
  // share durable commits then); sync where it serves, at 50% load.
  for (const [mode, load] of [['async', 1.5], ['sync', 0.5]] as const) {
    if (calibrateS === 0) break;
    const slots = 4;
    const report = await measure(`calibrate-${mode}`, mode, slots, ['--profile', 'steady', '--rate', fmt((slots * 1000 * load) / serviceMs, 1), '--duration', String(calibrateS)]);
    // A sync gateway counts a slot taken from dispatch until the answer is back, so the time
    // that matters there is the whole round trip (the client's latency bounds it from above).
    calibration[mode] = { report, slot_ms: mode === 'sync' ? report.latency_ms.mean : report.slot_ms };
    log(`calibrate-${mode}: ${fmt(calibration[mode].slot_ms, 2)} ms held per request (model: ${serviceMs} ms)`);
  }
  const serviceAsync = calibration['async']?.slot_ms ?? serviceMs;
  const serviceSync = calibration['sync']?.slot_ms ?? serviceMs;
  const asyncPlan = await plan(Number.isFinite(serviceAsync) ? serviceAsync : serviceMs);
  const syncPlan = await plan(Number.isFinite(serviceSync) ? serviceSync : serviceMs);
  const average = asyncPlan.async.workers!;
  const peak = syncPlan.sync.workers!;
  log(`plan: async ${average} workers (drain ${fmt(asyncPlan.async.drain_s ?? Number.NaN)} s), sync for the peak ${peak} workers`);

  const burst = ['--profile', 'burst', '--rate', String(rate), '--spike-rate', String(spikeRate), '--spike-at', String(spikeAt), '--spike-for', String(spikeFor), '--duration', String(duration)];
  const syncAverage = await measure('sync-average', 'sync', average, burst);
  const syncPeak = await measure('sync-peak', 'sync', peak, burst);
  const asyncAverage = await measure('async-average', 'async', average, burst);
  const scaleMax = autoscaleMax === 0 ? 2 * average : autoscaleMax;
  const autoscaled = { ...(await measureAutoscaled('async-autoscaled', scaleMax, burst)), slot_ms: Number.NaN };

  const runs = [
    { label: `1. sync, planned for the average (${average} workers)`, r: syncAverage },
    { label: `2. sync, planned for the peak (${peak} workers)`, r: syncPeak },
    { label: `3. async, planned for the average (${average} workers)`, r: asyncAverage },
    { label: `4. async, autoscaled (1 to ${scaleMax} workers, catch-up ${catchUp} s)`, r: autoscaled },
  ];
  const phaseNames = ['before', 'during', 'after'];
  const totals = markdownTable(
    ['deployment', 'sent', 'rejected', 'rejected %', 'lost', 'mean ms', 'p50 ms', 'p99 ms', 'backlog peak', 'drain s', 'worker-s', 'busy', 'send lag p99 ms', 'slot-ms per request'],
    runs.map(({ label, r }) => [
      label,
      String(r.sent),
      String(r.rejected),
      pct(r.rejected, r.sent),
      String(r.lost),
      fmt(r.latency_ms.mean),
      fmt(r.latency_ms.p50),
      fmt(r.latency_ms.p99),
      String(r.backlog_peak ?? '-'),
      r.drain_s === null ? '-' : fmt(r.drain_s),
      fmt(r.worker_seconds ?? Number.NaN, 0),
      r.worker_busy_fraction === null ? '-' : `${fmt(100 * r.worker_busy_fraction, 1)}%`,
      fmt(r.send_lag_ms.p99, 2),
      fmt(r.slot_ms, 2),
    ]),
  );
  const phases = markdownTable(
    ['deployment', ...phaseNames.map((p) => `${p}: rejected % / mean / p50 / p99 ms`)],
    runs.map(({ label, r }) => [
      label,
      ...phaseNames.map((p) => {
        const x = r.phases[p];
        return x === undefined ? '-' : `${pct(x.rejected, x.sent)} / ${fmt(x.latency_ms.mean)} / ${fmt(x.latency_ms.p50)} / ${fmt(x.latency_ms.p99)}`;
      }),
    ]),
  );

  const costRatio = (syncPeak.worker_seconds ?? Number.NaN) / (asyncAverage.worker_seconds ?? Number.NaN);
  const autoscaledCost = (autoscaled.worker_seconds ?? Number.NaN) / (asyncAverage.worker_seconds ?? Number.NaN);
  const before = (r: BenchReport) => r.phases['before']?.latency_ms.mean ?? Number.NaN;
  const latencyRatio = before(asyncAverage) / before(syncPeak);
  const plannedDrain = asyncPlan.async.drain_s ?? Number.NaN;
  const plannedSpikeWaitMs = (asyncPlan.async.spike_mean_wait_s ?? Number.NaN) * 1000;
  const measuredSpikeWaitMs = asyncAverage.phases['during']?.queue_ms?.mean ?? Number.NaN;
  const checks = {
    async_rejects_nothing: asyncAverage.rejected === 0 && asyncAverage.errored === 0,
    sync_for_peak_rejects_nothing: syncPeak.rejected === 0 && syncPeak.errored === 0,
    async_loses_nothing: asyncAverage.lost === 0,
    latency_ratio_within_1_1: latencyRatio <= 1.1,
    cost_ratio_at_least_2_5: costRatio >= 2.5,
    drain_within_15pct_of_plan: within(asyncAverage.drain_s ?? Number.NaN, plannedDrain) <= 0.15,
    spike_wait_within_15pct_of_plan: within(measuredSpikeWaitMs, plannedSpikeWaitMs) <= 0.15,
    every_report_reconciles: runs.every(({ r }) => r.reconciles),
    autoscaled_rejects_nothing: autoscaled.rejected === 0 && autoscaled.errored === 0,
    autoscaled_loses_nothing: autoscaled.lost === 0,
  };
  const file = writeResult('thesis', {
    benchmark: 'thesis',
    command: `npx tsx bench/thesis.ts ${process.argv.slice(2).join(' ')}`.trim(),
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    build_sha256: build.sha256,
    settings: { rate, spike_rate: spikeRate, spike_at: spikeAt, spike_for: spikeFor, after, service_ms: serviceMs, p99_ms: p99Ms, catch_up_s: catchUp, calibrate_s: calibrateS, seed, sync_loss: syncLoss },
    calibration,
    plans: { async: asyncPlan, sync: syncPlan },
    runs: { sync_average: syncAverage, sync_peak: syncPeak, async_average: asyncAverage, async_autoscaled: autoscaled },
    autoscale: { min: 1, max: scaleMax, target_s: catchUp, cooldown_s: autoscaleCooldown },
    ratios: {
      worker_seconds_sync_peak_over_async: costRatio,
      mean_latency_before_spike_async_over_sync_peak: latencyRatio,
      worker_seconds_autoscaled_over_async: autoscaledCost,
    },
    plan_vs_measured: { drain_s: { planned: plannedDrain, measured: asyncAverage.drain_s }, spike_mean_wait_ms: { planned: plannedSpikeWaitMs, measured: measuredSpikeWaitMs } },
    checks,
  });

  process.stdout.write(
    [
      `## The thesis: burst of ${spikeRate} req/s (${flags['spike-factor']}× the base ${rate} req/s) for ${spikeFor} s, sleep model ${serviceMs} ms`,
      `(${machine.cpus} CPUs, Node ${machine.node}, commit ${machine.git_commit}${machine.git_dirty ? ' + local changes' : ''}, build ${build.sha256.slice(0, 12)}; phases: before ${spikeAt} s, during ${spikeFor} s, after ${after} s)`,
      '',
      `Calibration (ms a slot is held per request; async: worker busy time at 150% load; sync: round trip at 50% load): async ${fmt(serviceAsync, 2)}, sync ${fmt(serviceSync, 2)}. ` +
        `Plan: async ${average} workers (backlog ${fmt(asyncPlan.async.backlog_peak ?? Number.NaN, 0)}, drain ${fmt(plannedDrain)} s), sync for the peak ${peak} workers.`,
      '',
      totals,
      '',
      phases,
      '',
      `- worker-seconds, sync for the peak ÷ async for the average: **${fmt(costRatio, 2)}** (aim ≥ 2.5)`,
      `- mean latency before the spike, async ÷ sync for the peak: **${fmt(latencyRatio, 3)}** (aim ≤ 1.1)`,
      `- worker-seconds, autoscaled ÷ async for the average: **${fmt(autoscaledCost, 2)}**; autoscaled drain ${fmt(autoscaled.drain_s ?? Number.NaN)} s, p99 during the spike ${fmt(autoscaled.phases['during']?.latency_ms.p99 ?? Number.NaN)} ms`,
      `- drain time: planned ${fmt(plannedDrain)} s, measured ${fmt(asyncAverage.drain_s ?? Number.NaN)} s (${fmt(100 * within(asyncAverage.drain_s ?? Number.NaN, plannedDrain), 1)}% off; aim ≤ 15%)`,
      `- mean wait of spike arrivals: planned ${fmt(plannedSpikeWaitMs, 0)} ms, measured ${fmt(measuredSpikeWaitMs, 0)} ms (${fmt(100 * within(measuredSpikeWaitMs, plannedSpikeWaitMs), 1)}% off; aim ≤ 15%)`,
      '',
      ...Object.entries(checks).map(([k, v]) => `- ${v ? 'PASS' : 'FAIL'} ${k}`),
      '',
      `Result file: ${file}`,
      '',
    ].join('\n'),
  );
  if (!Object.values(checks).every(Boolean)) process.exitCode = 1;
}

try {
  await main();
} finally {
  repos.async.remove();
  repos.sync.remove();
  build.remove();
  rmSync(workDir, { recursive: true, force: true });
}
