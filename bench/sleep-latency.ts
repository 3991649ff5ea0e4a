/**
 * Latency of `Prefer: wait` with the `sleep` model at a fraction of its capacity (default 50%),
 * against calling the same handler in-process behind a semaphore of the same concurrency.
 * Open-loop Poisson arrivals, the same schedule for both. See bench/README.md.
 *
 *   npm run build && npx tsx bench/sleep-latency.ts [--duration 60] [--rounds 2] ...
 */
import { Agent, request } from 'node:http';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import type { HandlerModule } from '../src/runtimes/handler/handler-module.js';
import { num, parseFlags } from './lib/args.js';
import { machineCpuSeconds, processCpuSeconds } from './lib/cpu.js';
import { steadyProfile } from '../src/loadgen/profiles.js';
import { buildSchedule } from '../src/loadgen/schedule.js';
import { callOnSchedule, summarizeShots, type Shot, type ShotSummary } from '../src/loadgen/scheduled-calls.js';
import { distribution, median } from '../src/loadgen/stats.js';
import { fmt, log, machineInfo, markdownTable, ratio, writeResult } from './lib/report.js';
import { rotation } from './lib/rotation.js';
import { Semaphore } from './lib/semaphore.js';
import { modelRepository, readModelConfig, snapshotBuild, startSpillway, type BuildSnapshot } from './lib/spillway.js';

const flags = parseFlags('Usage: npx tsx bench/sleep-latency.ts [options]', {
  duration: { description: 'seconds of arrivals per system per round', default: '60' },
  rounds: { description: 'interleaved rounds (each runs both systems on the same schedule)', default: '2' },
  load: { description: "offered load as a fraction of the model's capacity (concurrency / service time)", default: '0.5' },
  seed: { description: 'seed of the arrival schedule; round r uses seed + r - 1', default: '1' },
  warmup: { description: 'unmeasured requests sent one by one to each system first', default: '20' },
  wait: { description: 'seconds in the Prefer: wait header', default: '60' },
  'per-batch-ms': { description: "override the sleep model's per_batch_ms (its service time)", default: '' },
  concurrency: { description: "override the sleep model's concurrency (and the baseline's semaphore)", default: '' },
  before: { description: 'another checkout of Spillway (its own built dist/ and node_modules/) measured on the same schedule in each round; the summary adds after ÷ before', default: '' },
});
const durationS = num('duration', flags.duration, { min: 1 });
const rounds = num('rounds', flags.rounds, { min: 1, integer: true });
const loadFraction = num('load', flags.load, { min: 0.01 });
const seed = num('seed', flags.seed, { integer: true });
const warmup = num('warmup', flags.warmup, { min: 0, integer: true });
const waitS = num('wait', flags.wait, { min: 1 });
/** model.yaml settings that differ from models/sleep; none by default. */
const overrides: Record<string, unknown> = {
  ...(flags.concurrency === '' ? {} : { concurrency: num('concurrency', flags.concurrency, { min: 1, integer: true }) }),
};
const perBatchOverride = flags['per-batch-ms'] === '' ? undefined : num('per-batch-ms', flags['per-batch-ms'], { min: 1 });

/** `spillway` is this checkout's build (after), `before` the one of --before. */
type System = 'sync' | 'spillway' | 'before';

interface SyncDetail {
  readonly slot_wait_ms: number;
  readonly service_ms: number;
  readonly error?: string;
}
interface SpillwayDetail {
  readonly status_code: number;
  readonly queue_ms: number;
  readonly inference_ms: number;
  readonly total_ms: number;
  readonly error?: string;
}

/** CPU-seconds per second during the measured part: this process, the server, everything else. */
interface CpuUse {
  readonly bench: number;
  readonly server: number;
  readonly other: number;
}

/** Runs `measure` and reports the CPU it and everything else on the machine used meanwhile. */
async function withCpu<T>(serverPid: number | undefined, measure: () => Promise<T>): Promise<{ value: T; cpu: CpuUse }> {
  const t0 = performance.now();
  const machine0 = machineCpuSeconds();
  const own0 = process.cpuUsage();
  const server0 = serverPid === undefined ? 0 : processCpuSeconds(serverPid);
  const value = await measure();
  const seconds = (performance.now() - t0) / 1000;
  const own = process.cpuUsage(own0);
  const bench = (own.user + own.system) / 1e6 / seconds;
  const server = serverPid === undefined ? 0 : (processCpuSeconds(serverPid) - server0) / seconds;
  const other = Math.max(0, (machineCpuSeconds().busy - machine0.busy) / seconds - bench - server);
  return { value, cpu: { bench, server, other } };
}

/** The input of request i, and what the sleep model must answer for it. */
const inputOf = (i: number) => ({ i, text: 'sleep benchmark' });

function expectedOutput(i: number, serviceMs: number): unknown {
  return { input: inputOf(i), batch_size: 1, service_ms: serviceMs };
}

async function runSync(
  schedule_s: readonly number[],
  handler: HandlerModule,
  parameters: Record<string, unknown>,
  concurrency: number,
  serviceMs: number,
): Promise<{ value: Shot<SyncDetail>[]; cpu: CpuUse }> {
  const predictBatch = handler.predictBatch!.bind(handler);
  const slots = new Semaphore(concurrency);
  const call = async (i: number): Promise<{ ok: boolean; detail: SyncDetail }> => {
    const t0 = performance.now();
    await slots.acquire();
    const t1 = performance.now();
    try {
      const outputs = (await predictBatch([inputOf(i)], { model: 'sleep', parameters, signal: new AbortController().signal })) as unknown[];
      const ok = Array.isArray(outputs) && isDeepStrictEqual(outputs[0], expectedOutput(i, serviceMs));
      return { ok, detail: { slot_wait_ms: t1 - t0, service_ms: performance.now() - t1 } };
    } finally {
      slots.release();
    }
  };
  for (let i = 0; i < warmup; i++) await call(-1 - i);
  return withCpu(undefined, () =>
    callOnSchedule(schedule_s, call, { failedDetail: (e) => ({ slot_wait_ms: Number.NaN, service_ms: Number.NaN, error: String(e) }) }),
  );
}

function post(agent: Agent, url: URL, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), prefer: `wait=${waitS}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function runSpillway(
  schedule_s: readonly number[],
  target: { models: string; main: string },
  serviceMs: number,
): Promise<{ value: Shot<SpillwayDetail>[]; cpu: CpuUse }> {
  const server = await startSpillway(target);
  // Open loop: never queue requests behind a connection limit in the client.
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const url = new URL('/v1/models/sleep/predictions', server.url);
  const call = async (i: number): Promise<{ ok: boolean; detail: SpillwayDetail }> => {
    const { status, text } = await post(agent, url, JSON.stringify({ input: inputOf(i) }));
    let record: { status?: string; output?: unknown; metrics?: { queue_ms?: number; inference_ms?: number; total_ms?: number } } = {};
    try {
      record = JSON.parse(text) as typeof record;
    } catch {
      // Counted as a failure below.
    }
    const ok = status === 200 && record.status === 'succeeded' && isDeepStrictEqual(record.output, expectedOutput(i, serviceMs));
    return {
      ok,
      detail: {
        status_code: status,
        queue_ms: record.metrics?.queue_ms ?? Number.NaN,
        inference_ms: record.metrics?.inference_ms ?? Number.NaN,
        total_ms: record.metrics?.total_ms ?? Number.NaN,
        ...(ok ? {} : { error: text.slice(0, 300) }),
      },
    };
  };
  try {
    for (let i = 0; i < warmup; i++) await call(-1 - i);
    return await withCpu(server.pid, () =>
      callOnSchedule(schedule_s, call, {
        drain_ms: (waitS + 10) * 1000,
        failedDetail: (e) => ({ status_code: 0, queue_ms: Number.NaN, inference_ms: Number.NaN, total_ms: Number.NaN, error: String(e) }),
      }),
    );
  } finally {
    agent.destroy();
    await server.stop();
  }
}

type Described = ShotSummary & { cpu: CpuUse };

interface RoundResult {
  readonly round: number;
  readonly seed: number;
  readonly order: readonly System[];
  readonly requests: number;
  readonly sync: Described;
  readonly spillway: Described;
  readonly before?: Described;
}

/** The build snapshot's figures a result file keeps, to tell later which code was measured. */
const describeBuild = (b: BuildSnapshot) => ({ root: b.root, git_commit: b.git_commit, git_dirty: b.git_dirty, sha256: b.sha256 });

async function main(): Promise<void> {
  const builds: { spillway: BuildSnapshot; before?: BuildSnapshot } = { spillway: snapshotBuild() };
  if (flags.before !== '') builds.before = snapshotBuild(resolve(flags.before));
  const systems: System[] = builds.before === undefined ? ['sync', 'spillway'] : ['sync', 'spillway', 'before'];
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  if (perBatchOverride !== undefined) {
    overrides['parameters'] = { ...(readModelConfig('sleep')['parameters'] as object), per_batch_ms: perBatchOverride };
  }
  const repo = modelRepository([{ name: 'sleep', overrides }]);
  const config = repo.configs['sleep']!;
  const parameters = (config['parameters'] ?? {}) as Record<string, unknown>;
  const concurrency = Number(config['concurrency']);
  const maxBatch = Number(config['max_batch_size']);
  // A batch of one (max_batch_size is 1 by default) takes per_batch_ms + per_item_ms.
  const serviceMs = Number(parameters['per_batch_ms'] ?? 50) + Number(parameters['per_item_ms'] ?? 0);
  const capacity = (concurrency / serviceMs) * 1000;
  const rate = loadFraction * capacity;
  if (maxBatch !== 1) log(`note: max_batch_size is ${maxBatch}; the in-process baseline always runs batches of one`);
  const handler = (await import(pathToFileURL(join(repo.dir, 'sleep', String(config['file']))).href)) as HandlerModule;
  log(
    `sleep latency: service ${serviceMs} ms x concurrency ${concurrency} = capacity ${fmt(capacity)} req/s; ` +
      `offered ${fmt(rate)} req/s (${loadFraction * 100}%) for ${durationS} s per system (${systems.join(', ')}), ${rounds} rounds`,
  );
  if (builds.before !== undefined) log(`before: ${builds.before.root} (commit ${builds.before.git_commit}${builds.before.git_dirty ? ' + local changes' : ''}, build ${builds.before.sha256.slice(0, 12)})`);

  const shots: Record<System, Shot<SyncDetail | SpillwayDetail>[]> = { sync: [], spillway: [], before: [] };
  const roundResults: RoundResult[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      const roundSeed = seed + round - 1;
      const schedule = buildSchedule(steadyProfile({ rate, duration_s: durationS }), { process: 'poisson', seed: roundSeed });
      const order = rotation(systems, round - 1);
      const got: Partial<Record<System, Described>> = {};
      for (const system of order) {
        log(`round ${round} (seed ${roundSeed}, ${schedule.length} arrivals): ${system}`);
        const build = system === 'sync' ? undefined : builds[system];
        const r = build === undefined ? await runSync(schedule, handler, parameters, concurrency, serviceMs) : await runSpillway(schedule, { models: repo.dir, main: build.main }, serviceMs);
        const value: readonly Shot<SyncDetail | SpillwayDetail>[] = r.value;
        shots[system].push(...value);
        const s = (got[system] = { ...summarizeShots(value), cpu: r.cpu });
        log(
          `  mean ${fmt(s.mean)} ms  p50 ${fmt(s.p50)}  p99 ${fmt(s.p99)}  max ${fmt(s.max)}  failures ${s.failures}  ` +
            `cpu bench ${fmt(s.cpu.bench, 2)} server ${fmt(s.cpu.server, 2)} other ${fmt(s.cpu.other, 2)}`,
        );
      }
      roundResults.push({ round, seed: roundSeed, order, requests: schedule.length, sync: got.sync!, spillway: got.spillway!, ...(got.before === undefined ? {} : { before: got.before }) });
    }
  } finally {
    repo.remove();
    builds.spillway.remove();
    builds.before?.remove();
  }

  const withBefore = builds.before !== undefined;
  const overall = Object.fromEntries(systems.map((s) => [s, summarizeShots(shots[s])])) as Record<System, ShotSummary>;
  const against = (a: ShotSummary, b: ShotSummary) => ({ mean: ratio(a.mean, b.mean), p99: ratio(a.p99, b.p99) });
  const ratios = { mean: ratio(overall.spillway.mean, overall.sync.mean), p99: ratio(overall.spillway.p99, overall.sync.p99) };
  // After ÷ before is taken per round (the two saw the same schedule a few minutes apart), then the median.
  const perRound = (f: (r: RoundResult) => number) => roundResults.map(f);
  const beforeFigures = !withBefore
    ? undefined
    : {
        before_over_sync: against(overall.before, overall.sync),
        after_over_before_per_round: { mean: perRound((r) => ratio(r.spillway.mean, r.before?.mean)), p99: perRound((r) => ratio(r.spillway.p99, r.before?.p99)) },
        median_after_over_before: {
          mean: median(perRound((r) => ratio(r.spillway.mean, r.before?.mean))),
          p50: median(perRound((r) => ratio(r.spillway.p50, r.before?.p50))),
          p99: median(perRound((r) => ratio(r.spillway.p99, r.before?.p99))),
        },
      };
  const ok = (s: System) => (shots[s] as Shot<SpillwayDetail>[]).filter((x) => x.ok);
  const okSync = (shots.sync as Shot<SyncDetail>[]).filter((x) => x.ok);
  const recordSplit = (s: 'spillway' | 'before') => {
    const good = ok(s);
    const queue = distribution(good.map((x) => x.detail.queue_ms));
    return {
      queue_ms: queue.mean,
      inference_ms: distribution(good.map((x) => x.detail.inference_ms)).mean,
      total_ms: distribution(good.map((x) => x.detail.total_ms)).mean,
      outside_record_ms: distribution(good.map((x) => x.latency - x.detail.total_ms)).mean,
      queue_ms_p99: queue.p99,
    };
  };
  const slotWait = distribution(okSync.map((x) => x.detail.slot_wait_ms));
  const breakdown = {
    spillway: recordSplit('spillway'),
    ...(withBefore ? { before: recordSplit('before') } : {}),
    sync: { slot_wait_ms: slotWait.mean, service_ms: distribution(okSync.map((x) => x.detail.service_ms)).mean, slot_wait_ms_p99: slotWait.p99 },
  };
  const failures = systems.reduce((n, s) => n + overall[s].failures, 0);
  const valid = failures === 0;

  const names: Record<System, string> = { sync: 'in-process (sync)', spillway: 'spillway (Prefer: wait)', before: 'before: spillway of --before' };
  const row = (s: System) => {
    const d = overall[s];
    return [names[s], String(d.count), fmt(d.mean), fmt(d.p50), fmt(d.p90), fmt(d.p99), fmt(d.max), String(d.failures), fmt(d.send_lag_p99, 2)];
  };
  const header = ['system', 'requests', 'mean ms', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'failures', 'send lag p99 ms'];
  const overallTable = markdownTable(header, systems.map(row));
  const meanP99 = (d: Described | undefined) => `${fmt(d?.mean)} / ${fmt(d?.p99)}`;
  const roundsTable = markdownTable(
    [
      'round',
      'seed',
      'order',
      'arrivals',
      'sync mean / p99 ms',
      'spillway mean / p99 ms',
      ...(withBefore ? ['before mean / p99 ms'] : []),
      'ratio of means',
      'ratio of p99s',
      ...(withBefore ? ['after ÷ before, means / p99s'] : []),
      `other CPU ${systems.join(' / ')}`,
    ],
    roundResults.map((r) => [
      String(r.round),
      String(r.seed),
      r.order.join(', '),
      String(r.requests),
      meanP99(r.sync),
      meanP99(r.spillway),
      ...(withBefore ? [meanP99(r.before)] : []),
      fmt(ratio(r.spillway.mean, r.sync.mean), 3),
      fmt(ratio(r.spillway.p99, r.sync.p99), 3),
      ...(withBefore ? [`${fmt(ratio(r.spillway.mean, r.before?.mean), 3)} / ${fmt(ratio(r.spillway.p99, r.before?.p99), 3)}`] : []),
      systems.map((s) => fmt(r[s]?.cpu.other, 2)).join(' / '),
    ]),
  );
  const split = (b: ReturnType<typeof recordSplit> | undefined) => ({
    queue: `${fmt(b?.queue_ms, 2)} (${fmt(b?.queue_ms_p99, 1)})`,
    inference: fmt(b?.inference_ms, 2),
    total: fmt(b?.total_ms, 2),
    outside: fmt(b?.outside_record_ms, 2),
  });
  const after = split(breakdown.spillway);
  const prior = withBefore ? split(breakdown.before) : undefined;
  const withPrior = (cells: string[], extra: string | undefined) => (prior === undefined ? cells : [...cells, extra ?? '–']);
  const breakdownTable = markdownTable(withPrior(['part (means, ms)', 'in-process (sync)', 'spillway'], 'before'), [
    withPrior(['waiting for a free slot / queue_ms (p99)', `${fmt(breakdown.sync.slot_wait_ms, 2)} (${fmt(breakdown.sync.slot_wait_ms_p99, 1)})`, after.queue], prior?.queue),
    withPrior(['running the handler / inference_ms', fmt(breakdown.sync.service_ms, 2), after.inference], prior?.inference),
    withPrior(['record total_ms (accepted → completed)', '–', after.total], prior?.total),
    withPrior(['outside the record (HTTP, result delivery, send lag)', '–', after.outside], prior?.outside),
    withPrior(['client latency', fmt(overall.sync.mean, 2), fmt(overall.spillway.mean, 2)], withBefore ? fmt(overall.before.mean, 2) : undefined),
  ]);

  const file = writeResult('sleep-latency', {
    benchmark: 'sleep-latency',
    command: `npx tsx bench/sleep-latency.ts ${process.argv.slice(2).join(' ')}`.trim(),
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    build_sha256: builds.spillway.sha256,
    builds: { spillway: describeBuild(builds.spillway), ...(builds.before === undefined ? {} : { before: describeBuild(builds.before) }) },
    settings: { overrides, duration_s: durationS, rounds, load: loadFraction, rate_per_s: rate, capacity_per_s: capacity, service_ms: serviceMs, concurrency, seed, warmup, wait_s: waitS, parameters },
    valid,
    ratio: ratios,
    meets_aim: ratios.mean <= 1.1,
    ...(beforeFigures === undefined ? {} : { before: beforeFigures }),
    overall,
    breakdown,
    rounds: roundResults,
    failures_sample: systems.flatMap((s) => shots[s].filter((x) => !x.ok).map((x) => ({ system: s, ...x }))).slice(0, 10),
  });

  const before = builds.before;
  process.stdout.write(
    [
      `## sleep latency at ${loadFraction * 100}% load (${fmt(rate)} req/s, Poisson; ${machine.cpus} CPUs, ${machine.cpu_model}, Node ${machine.node}, commit ${machine.git_commit}${machine.git_dirty ? ' + local changes' : ''}, build ${builds.spillway.sha256.slice(0, 12)})`,
      '',
      overallTable,
      '',
      `Ratio spillway/sync: mean ${fmt(ratios.mean, 3)} (aim ≤ 1.1: ${ratios.mean <= 1.1 ? 'met' : 'NOT met'}), p99 ${fmt(ratios.p99, 3)}`,
      ...(beforeFigures === undefined || before === undefined
        ? []
        : [
            `After (this checkout) ÷ before (${before.root}, commit ${before.git_commit}${before.git_dirty ? ' + local changes' : ''}, build ${before.sha256.slice(0, 12)}), median of the rounds: ` +
              `mean **${fmt(beforeFigures.median_after_over_before.mean, 3)}**, p50 ${fmt(beforeFigures.median_after_over_before.p50, 3)}, p99 ${fmt(beforeFigures.median_after_over_before.p99, 3)}; ` +
              `before/sync: mean ${fmt(beforeFigures.before_over_sync.mean, 3)}, p99 ${fmt(beforeFigures.before_over_sync.p99, 3)}`,
          ]),
      '',
      roundsTable,
      '',
      breakdownTable,
      '',
      valid ? 'Valid run: every request answered 200 with the expected output.' : `INVALID RUN: ${failures} failed or unfinished requests (see failures_sample in the result file).`,
      `Result file: ${file}`,
      '',
    ].join('\n'),
  );
  if (!valid) process.exitCode = 1;
}

await main();
