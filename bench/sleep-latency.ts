/**
 * Latency of `Prefer: wait` with the `sleep` model at a fraction of its capacity (default 50%),
 * against calling the same handler in-process behind a semaphore of the same concurrency.
 * Open-loop Poisson arrivals, the same schedule for both. See bench/README.md.
 *
 *   npm run build && npx tsx bench/sleep-latency.ts [--duration 60] [--rounds 2] ...
 */
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import type { HandlerModule } from '../src/runtimes/handler/handler-module.js';
import { num, parseFlags } from './lib/args.js';
import { machineCpuSeconds, processCpuSeconds } from './lib/cpu.js';
import { runOpenLoop, Semaphore, type Shot } from './lib/open-loop.js';
import { poissonSchedule } from './lib/random.js';
import { log, machineInfo, markdownTable, writeResult } from './lib/report.js';
import { modelRepository, readModelConfig, snapshotBuild, startSpillway } from './lib/spillway.js';
import { fmt, mean, summarize, type Summary } from './lib/stats.js';

const flags = parseFlags('Usage: npx tsx bench/sleep-latency.ts [options]', {
  duration: { description: 'seconds of arrivals per system per round', default: '60' },
  rounds: { description: 'interleaved rounds (each runs both systems on the same schedule)', default: '2' },
  load: { description: "offered load as a fraction of the model's capacity (concurrency / service time)", default: '0.5' },
  seed: { description: 'seed of the arrival schedule; round r uses seed + r - 1', default: '1' },
  warmup: { description: 'unmeasured requests sent one by one to each system first', default: '20' },
  wait: { description: 'seconds in the Prefer: wait header', default: '60' },
  'per-batch-ms': { description: "override the sleep model's per_batch_ms (its service time)", default: '' },
  concurrency: { description: "override the sleep model's concurrency (and the baseline's semaphore)", default: '' },
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

type System = 'sync' | 'spillway';

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
  schedule: readonly number[],
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
    runOpenLoop(schedule, call, { failedDetail: (e) => ({ slot_wait_ms: Number.NaN, service_ms: Number.NaN, error: String(e) }) }),
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
  schedule: readonly number[],
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
      runOpenLoop(schedule, call, {
        drainMs: (waitS + 10) * 1000,
        failedDetail: (e) => ({ status_code: 0, queue_ms: Number.NaN, inference_ms: Number.NaN, total_ms: Number.NaN, error: String(e) }),
      }),
    );
  } finally {
    agent.destroy();
    await server.stop();
  }
}

interface RoundResult {
  readonly round: number;
  readonly seed: number;
  readonly first: System;
  readonly requests: number;
  readonly sync: Summary & { failures: number; send_lag_p99: number; cpu: CpuUse };
  readonly spillway: Summary & { failures: number; send_lag_p99: number; cpu: CpuUse };
}

function describe<T>(shots: readonly Shot<T>[]): Summary & { failures: number; send_lag_p99: number } {
  const good = shots.filter((s) => s.ok);
  return {
    ...summarize(good.map((s) => s.latency)),
    failures: shots.length - good.length,
    send_lag_p99: summarize(shots.map((s) => s.sent - s.scheduled)).p99,
  };
}

async function main(): Promise<void> {
  const build = snapshotBuild();
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
      `offered ${fmt(rate)} req/s (${loadFraction * 100}%) for ${durationS} s per system, ${rounds} rounds`,
  );

  const syncShots: Shot<SyncDetail>[] = [];
  const spillwayShots: Shot<SpillwayDetail>[] = [];
  const roundResults: RoundResult[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      const roundSeed = seed + round - 1;
      const schedule = poissonSchedule(rate, durationS * 1000, roundSeed);
      const order: System[] = round % 2 === 1 ? ['sync', 'spillway'] : ['spillway', 'sync'];
      const got: { sync?: Shot<SyncDetail>[]; spillway?: Shot<SpillwayDetail>[] } = {};
      const cpu: { sync?: CpuUse; spillway?: CpuUse } = {};
      for (const system of order) {
        log(`round ${round} (seed ${roundSeed}, ${schedule.length} arrivals): ${system}`);
        let s: ReturnType<typeof describe>;
        if (system === 'sync') {
          const r = await runSync(schedule, handler, parameters, concurrency, serviceMs);
          s = describe((got.sync = r.value));
          cpu.sync = r.cpu;
        } else {
          const r = await runSpillway(schedule, { models: repo.dir, main: build.main }, serviceMs);
          s = describe((got.spillway = r.value));
          cpu.spillway = r.cpu;
        }
        const c = cpu[system]!;
        log(
          `  mean ${fmt(s.mean)} ms  p50 ${fmt(s.p50)}  p99 ${fmt(s.p99)}  max ${fmt(s.max)}  failures ${s.failures}  ` +
            `cpu bench ${fmt(c.bench, 2)} server ${fmt(c.server, 2)} other ${fmt(c.other, 2)}`,
        );
      }
      syncShots.push(...got.sync!);
      spillwayShots.push(...got.spillway!);
      roundResults.push({
        round,
        seed: roundSeed,
        first: order[0]!,
        requests: schedule.length,
        sync: { ...describe(got.sync!), cpu: cpu.sync! },
        spillway: { ...describe(got.spillway!), cpu: cpu.spillway! },
      });
    }
  } finally {
    repo.remove();
    build.remove();
  }

  const overall = { sync: describe(syncShots), spillway: describe(spillwayShots) };
  const ratio = { mean: overall.spillway.mean / overall.sync.mean, p99: overall.spillway.p99 / overall.sync.p99 };
  const okSpill = spillwayShots.filter((s) => s.ok);
  const okSync = syncShots.filter((s) => s.ok);
  const breakdown = {
    spillway: {
      queue_ms: mean(okSpill.map((s) => s.detail.queue_ms)),
      inference_ms: mean(okSpill.map((s) => s.detail.inference_ms)),
      total_ms: mean(okSpill.map((s) => s.detail.total_ms)),
      outside_record_ms: mean(okSpill.map((s) => s.latency - s.detail.total_ms)),
      queue_ms_p99: summarize(okSpill.map((s) => s.detail.queue_ms)).p99,
    },
    sync: {
      slot_wait_ms: mean(okSync.map((s) => s.detail.slot_wait_ms)),
      service_ms: mean(okSync.map((s) => s.detail.service_ms)),
      slot_wait_ms_p99: summarize(okSync.map((s) => s.detail.slot_wait_ms)).p99,
    },
  };
  const failures = overall.sync.failures + overall.spillway.failures;
  const valid = failures === 0;

  const row = (name: string, s: ReturnType<typeof describe>) => [name, String(s.count), fmt(s.mean), fmt(s.p50), fmt(s.p90), fmt(s.p99), fmt(s.max), String(s.failures), fmt(s.send_lag_p99, 2)];
  const header = ['system', 'requests', 'mean ms', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'failures', 'send lag p99 ms'];
  const overallTable = markdownTable(header, [row('in-process (sync)', overall.sync), row('spillway (Prefer: wait)', overall.spillway)]);
  const roundsTable = markdownTable(
    ['round', 'seed', 'first', 'arrivals', 'sync mean / p99 ms', 'spillway mean / p99 ms', 'ratio of means', 'ratio of p99s', 'other CPU sync / spillway'],
    roundResults.map((r) => [
      String(r.round),
      String(r.seed),
      r.first,
      String(r.requests),
      `${fmt(r.sync.mean)} / ${fmt(r.sync.p99)}`,
      `${fmt(r.spillway.mean)} / ${fmt(r.spillway.p99)}`,
      fmt(r.spillway.mean / r.sync.mean, 3),
      fmt(r.spillway.p99 / r.sync.p99, 3),
      `${fmt(r.sync.cpu.other, 2)} / ${fmt(r.spillway.cpu.other, 2)}`,
    ]),
  );
  const breakdownTable = markdownTable(
    ['part (means, ms)', 'in-process (sync)', 'spillway'],
    [
      ['waiting for a free slot / queue_ms (p99)', `${fmt(breakdown.sync.slot_wait_ms, 2)} (${fmt(breakdown.sync.slot_wait_ms_p99, 1)})`, `${fmt(breakdown.spillway.queue_ms, 2)} (${fmt(breakdown.spillway.queue_ms_p99, 1)})`],
      ['running the handler / inference_ms', fmt(breakdown.sync.service_ms, 2), fmt(breakdown.spillway.inference_ms, 2)],
      ['record total_ms (accepted → completed)', '–', fmt(breakdown.spillway.total_ms, 2)],
      ['outside the record (HTTP, result delivery, send lag)', '–', fmt(breakdown.spillway.outside_record_ms, 2)],
      ['client latency', fmt(overall.sync.mean, 2), fmt(overall.spillway.mean, 2)],
    ],
  );

  const file = writeResult('sleep-latency', {
    benchmark: 'sleep-latency',
    command: `npx tsx bench/sleep-latency.ts ${process.argv.slice(2).join(' ')}`.trim(),
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    build_sha256: build.sha256,
    settings: { overrides, duration_s: durationS, rounds, load: loadFraction, rate_per_s: rate, capacity_per_s: capacity, service_ms: serviceMs, concurrency, seed, warmup, wait_s: waitS, parameters },
    valid,
    ratio,
    meets_aim: ratio.mean <= 1.1,
    overall,
    breakdown,
    rounds: roundResults,
    failures_sample: [...syncShots, ...spillwayShots].filter((s) => !s.ok).slice(0, 10),
  });

  process.stdout.write(
    [
      `## sleep latency at ${loadFraction * 100}% load (${fmt(rate)} req/s, Poisson; ${machine.cpus} CPUs, ${machine.cpu_model}, Node ${machine.node}, commit ${machine.git_commit}${machine.git_dirty ? ' + local changes' : ''}, build ${build.sha256.slice(0, 12)})`,
      '',
      overallTable,
      '',
      `Ratio spillway/sync: mean ${fmt(ratio.mean, 3)} (aim ≤ 1.1: ${ratio.mean <= 1.1 ? 'met' : 'NOT met'}), p99 ${fmt(ratio.p99, 3)}`,
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
