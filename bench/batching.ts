/**
 * Micro-batching, measured (issue 15), on `digits-wide` (models/digits-wide: an MLP of 1024 and
 * 512 hidden units, where a row in a batch costs a fraction of a row alone). In one run:
 *
 *   1. the model alone, in this process: onnxruntime's time per batch of 1…64 rows, with one and
 *      two intra-op threads (why batching pays, and what the second thread does);
 *   2. saturation: closed loop (autocannon, `Prefer: wait=30`, c = --connections) against
 *      `spillway serve` with batches of 1, batches of up to 64 without a window, with each fixed
 *      window of --windows, and with `batch_wait_ms: auto`; batches of 1 and of 64 also with two
 *      intra-op threads. Aim: batching ≥ 4× batch-1 req/s, with p99 ≤ the window + twice one
 *      batch's inference time (the records' inference_ms);
 *   3. load: open loop (src/loadgen: Poisson arrivals, the same schedule for every system) at
 *      each of --loads × the best configuration's saturation throughput of part 2, against
 *      `auto`, the best fixed window and no window.
 *
 * Every measurement gets a fresh `serve`; the order of the systems rotates from one round (and
 * load) to the next. `--part saturation` or `--part load --saturation RPS --fixed-ms W` runs a
 * part alone (each under ~5 minutes).
 *
 *   npm run build && npx tsx bench/batching.ts   (~8 minutes)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { HttpClient } from '../src/loadgen/http-client.js';
import { steadyProfile } from '../src/loadgen/profiles.js';
import { buildSchedule } from '../src/loadgen/schedule.js';
import { callOnSchedule, summarizeShots } from '../src/loadgen/scheduled-calls.js';
import { median as medianOf, NumberList } from '../src/loadgen/stats.js';
import { num, numList, parseFlags } from './lib/args.js';
import { sampledBodyCheck } from './lib/body-check.js';
import { closedLoop } from './lib/closed-loop.js';
import { cpuWindow, type CpuUse } from './lib/cpu-window.js';
import { fmt, log, machineInfo, markdownTable, writeResult } from './lib/report.js';
import { rotation } from './lib/rotation.js';
import { modelRepository, repoRoot, snapshotBuild, startSpillway } from './lib/spillway.js';

const flags = parseFlags('Usage: npx tsx bench/batching.ts [options]   (needs `npm run build`)', {
  part: { description: 'all, model, saturation or load', default: 'all' },
  rounds: { description: 'saturation rounds; each measures every configuration', default: '2' },
  duration: { description: 'seconds per saturation measurement', default: '10' },
  warmup: { description: 'seconds of unmeasured load on each fresh server first', default: '3' },
  connections: { description: 'closed-loop connections (64: one full batch in flight)', default: '64' },
  windows: { description: 'fixed batch_wait_ms values to measure', default: '2,5' },
  loads: { description: 'open-loop loads, as fractions of the best saturation throughput', default: '0.3,0.7,0.95' },
  'load-duration': { description: 'seconds of arrivals per system per load', default: '12' },
  seed: { description: 'seed of the arrival schedules; load i uses seed + i', default: '1' },
  saturation: { description: '--part load: the best saturation req/s (else measured)', default: '' },
  'fixed-ms': { description: '--part load: the best fixed window (else measured)', default: '' },
});
const part = flags.part;
if (!['all', 'model', 'saturation', 'load'].includes(part)) throw new Error(`--part: unknown part "${part}"`);
const rounds = num('rounds', flags.rounds, { min: 1, integer: true });
const durationS = num('duration', flags.duration, { min: 1 });
const warmupS = num('warmup', flags.warmup, { min: 0 });
const connections = num('connections', flags.connections, { min: 1, integer: true });
const windows = numList('windows', flags.windows, { min: 1, integer: true });
const loads = numList('loads', flags.loads, { min: 0.01 });
const loadDurationS = num('load-duration', flags['load-duration'], { min: 1 });
const seed = num('seed', flags.seed, { integer: true });

const model = 'digits-wide';
const maxBatch = 64;
const samples = JSON.parse(readFileSync(join(repoRoot, 'models', model, 'samples.json'), 'utf8')) as { input: number[]; label: number }[];

interface Config {
  readonly name: string;
  readonly max_batch_size: number;
  readonly batch_wait_ms: number | 'auto';
  readonly intra_op_threads: number;
}
const config = (name: string, max_batch_size: number, batch_wait_ms: number | 'auto', intra_op_threads = 1): Config => ({ name, max_batch_size, batch_wait_ms, intra_op_threads });
const saturationConfigs: Config[] = [
  config('batch 1', 1, 0),
  config('batch 1, 2 threads', 1, 0, 2),
  config('batch 64, no window', maxBatch, 0),
  config('batch 64, no window, 2 threads', maxBatch, 0, 2),
  ...windows.map((w) => config(`batch 64, window ${w} ms`, maxBatch, w)),
  config('batch 64, auto', maxBatch, 'auto'),
];

// ---------------------------------------------------------------------------------------------
// 1. The model alone.

interface ModelTiming {
  readonly threads: number;
  readonly rows: number;
  readonly ms_per_batch: number;
  readonly us_per_row: number;
}

async function modelAlone(): Promise<ModelTiming[]> {
  const out: ModelTiming[] = [];
  const rowsOf = (n: number) => Float32Array.from({ length: n * 64 }, (_, i) => samples[Math.floor(i / 64) % samples.length]!.input[i % 64]!);
  for (const threads of [1, 2]) {
    const session = await ort.InferenceSession.create(join(repoRoot, 'models', model, 'model.onnx'), { executionProviders: ['cpu'], intraOpNumThreads: threads });
    for (const rows of [1, 2, 4, 8, 16, 32, 64]) {
      const feeds = { float_input: new ort.Tensor('float32', rowsOf(rows), [rows, 64]) };
      for (let i = 0; i < 20; i++) await session.run(feeds);
      // Five batches of runs; the median batch is the figure (the machine is shared).
      const per = new NumberList();
      const runs = Math.max(10, Math.round(400 / rows));
      for (let k = 0; k < 5; k++) {
        const t = performance.now();
        for (let i = 0; i < runs; i++) await session.run(feeds);
        per.push((performance.now() - t) / runs);
      }
      const ms = medianOf(per.values()) ?? Number.NaN;
      out.push({ threads, rows, ms_per_batch: ms, us_per_row: (ms * 1000) / rows });
    }
    await session.release();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Batch sizes, from the records: with one slot, the requests of a batch, and only they, share
// its started_at and completed_at.

class BatchSizes {
  private readonly batches = new Map<string, number>();
  note(r: { started_at?: string; completed_at?: string }): void {
    if (r.started_at === undefined || r.completed_at === undefined) return;
    const key = `${r.started_at} ${r.completed_at}`;
    this.batches.set(key, (this.batches.get(key) ?? 0) + 1);
  }
  /** Mean size per batch, and the size of the batch the mean request ran in. */
  get figures(): { per_batch: number; per_request: number } {
    let requests = 0, squares = 0;
    for (const n of this.batches.values()) {
      requests += n;
      squares += n * n;
    }
    return { per_batch: requests / this.batches.size, per_request: squares / requests };
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Saturation.

interface Saturation {
  readonly config: string;
  readonly round: number;
  readonly rps: number;
  readonly p50: number | null;
  readonly p99: number | null;
  /** Medians over the checked records: one batch's inference and the time queued (window included). */
  readonly inference_ms: number | null;
  readonly queue_ms: number | null;
  readonly batch: { per_batch: number; per_request: number };
  readonly bad: number;
  readonly cpu: CpuUse;
}

function repositoryFor(c: Config) {
  return modelRepository([{ name: model, overrides: { max_batch_size: c.max_batch_size, batch_wait_ms: c.batch_wait_ms, intra_op_threads: c.intra_op_threads, concurrency: 1 } }]);
}

async function saturation(main: string): Promise<Saturation[]> {
  const results: Saturation[] = [];
  const sample = samples[0]!;
  const body = JSON.stringify({ input: sample.input });
  for (let round = 1; round <= rounds; round++) {
    for (const c of rotation(saturationConfigs, round - 1)) {
      const repo = repositoryFor(c);
      const server = await startSpillway({ models: repo.dir, main });
      try {
        const url = `${server.url}/v1/models/${model}/predictions`;
        const headers = { 'content-type': 'application/json', prefer: 'wait=30' };
        if (warmupS > 0) await closedLoop({ url, headers, body, connections, seconds: warmupS, timeout_s: 30 });
        const inference = new NumberList();
        const queued = new NumberList();
        const check = sampledBodyCheck(10, (parsed) => {
          const r = parsed as { status?: string; output?: { class_index?: number }; metrics?: { inference_ms?: number; queue_ms?: number } };
          if (r.metrics?.inference_ms !== undefined) inference.push(r.metrics.inference_ms);
          if (r.metrics?.queue_ms !== undefined) queued.push(r.metrics.queue_ms);
          return r.status === 'succeeded' && r.output?.class_index === sample.label;
        });
        const sizes = new BatchSizes();
        // Every answer is read for its batch; one in ten is checked in full.
        const verify = (text: string): boolean => {
          try {
            sizes.note(JSON.parse(text) as { started_at?: string; completed_at?: string });
          } catch {
            // check.verify counts it if it is the one checked
          }
          return check.verify(text);
        };
        const cpu = cpuWindow({ processes: [{ command: 'serve', pid: server.pid }], kafkaPid: Number.NaN, redisPid: Number.NaN });
        const run = await closedLoop({ url, headers, body, connections, seconds: durationS, timeout_s: 30, verify });
        const used = cpu();
        const r = run.result;
        const ok = r.statusCodeStats?.['200']?.count ?? 0;
        const bad = r.non2xx + r.errors + r.timeouts + (r.statusCodeStats?.['202']?.count ?? 0) + check.tally.bad;
        const m: Saturation = {
          config: c.name,
          round,
          rps: ok / r.duration,
          p50: run.latency_ms.p50,
          p99: run.latency_ms.p99,
          inference_ms: medianOf(inference.values()),
          queue_ms: medianOf(queued.values()),
          batch: sizes.figures,
          bad,
          cpu: used,
        };
        results.push(m);
        log(
          `round ${round} ${c.name.padEnd(32)} ${fmt(m.rps, 0)} req/s  p50 ${fmt(m.p50)} p99 ${fmt(m.p99)} ms  inference ${fmt(m.inference_ms, 2)} ms  batch ${fmt(m.batch.per_batch)}  ` +
            `server ${fmt(used.server, 2)} CPU  other ${fmt(used.other, 2)}  bad ${bad}`,
        );
      } finally {
        await server.stop();
        repo.remove();
      }
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// 3. Load.

interface LoadRun {
  readonly load: number;
  readonly rate: number;
  readonly config: string;
  readonly sent: number;
  readonly failures: number;
  readonly mean: number | null;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly send_lag_p99: number | null;
  readonly inference_ms: number | null;
  readonly queue_ms: number | null;
  readonly batch: { per_batch: number; per_request: number };
  readonly cpu: CpuUse;
}

async function openLoop(url: string, times: readonly number[], onRecord?: (r: Rec) => void) {
  const client = new HttpClient(url);
  return callOnSchedule(
    times,
    async (i) => {
      const sample = samples[i % samples.length]!;
      const answer = await client.request('POST', `v1/models/${model}/predictions`, { headers: { prefer: 'wait=30' }, body: JSON.stringify({ input: sample.input }), timeoutMs: 60_000 });
      const record = answer.status === 200 ? (JSON.parse(answer.body) as Rec) : undefined;
      const ok = record?.status === 'succeeded' && record.output?.class_index === sample.label;
      if (ok && record !== undefined) onRecord?.(record);
      return { ok, detail: answer.status };
    },
    { failedDetail: () => 0, drain_ms: 60_000 },
  );
}
type Rec = { status?: string; started_at?: string; completed_at?: string; output?: { class_index?: number }; metrics?: { inference_ms?: number; queue_ms?: number } };

async function underLoad(main: string, bestRps: number, fixedMs: number): Promise<LoadRun[]> {
  const systems = [config('auto', maxBatch, 'auto'), config(`fixed ${fixedMs} ms`, maxBatch, fixedMs), config('no window', maxBatch, 0)];
  const results: LoadRun[] = [];
  for (const [i, load] of loads.entries()) {
    const rate = load * bestRps;
    const measured = buildSchedule(steadyProfile({ rate, duration_s: loadDurationS }), { process: 'poisson', seed: seed + i });
    const warmup = buildSchedule(steadyProfile({ rate, duration_s: warmupS }), { process: 'poisson', seed: seed + i + 999_999 });
    for (const c of rotation(systems, i)) {
      const repo = repositoryFor(c);
      const server = await startSpillway({ models: repo.dir, main });
      try {
        if (warmup.length > 0) await openLoop(server.url, warmup);
        const inference = new NumberList();
        const queued = new NumberList();
        const cpu = cpuWindow({ processes: [{ command: 'serve', pid: server.pid }], kafkaPid: Number.NaN, redisPid: Number.NaN });
        const sizes = new BatchSizes();
        const shots = await openLoop(server.url, measured, (r) => {
          sizes.note(r);
          if (r.metrics?.inference_ms !== undefined) inference.push(r.metrics.inference_ms);
          if (r.metrics?.queue_ms !== undefined) queued.push(r.metrics.queue_ms);
        });
        const used = cpu();
        const s = summarizeShots(shots);
        const run: LoadRun = {
          load,
          rate,
          config: c.name,
          sent: shots.length,
          failures: s.failures,
          mean: s.mean,
          p50: s.p50,
          p99: s.p99,
          send_lag_p99: s.send_lag_p99,
          inference_ms: medianOf(inference.values()),
          queue_ms: medianOf(queued.values()),
          batch: sizes.figures,
          cpu: used,
        };
        results.push(run);
        log(
          `load ${fmt(load * 100, 0)}% (${fmt(rate, 0)} req/s) ${c.name.padEnd(12)} mean ${fmt(run.mean)} p50 ${fmt(run.p50)} p99 ${fmt(run.p99)} ms  ` +
            `inference ${fmt(run.inference_ms, 2)} queue ${fmt(run.queue_ms, 2)} ms  batch ${fmt(run.batch.per_batch)}  failures ${run.failures}  lag p99 ${fmt(run.send_lag_p99)}  server ${fmt(used.server, 2)} other ${fmt(used.other, 2)}`,
        );
      } finally {
        await server.stop();
        repo.remove();
      }
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------

const med = (xs: readonly (number | null)[]) => medianOf(xs.filter((x): x is number => x !== null)) ?? Number.NaN;

function saturationReport(results: readonly Saturation[]): { table: string; bestRps: number; fixedMs: number; checks: string } {
  const of = (name: string) => results.filter((r) => r.config === name);
  const perRound = (name: string, base: string) =>
    Array.from({ length: rounds }, (_, k) => {
      const a = results.find((r) => r.config === name && r.round === k + 1)?.rps ?? Number.NaN;
      const b = results.find((r) => r.config === base && r.round === k + 1)?.rps ?? Number.NaN;
      return a / b;
    });
  const rows = saturationConfigs.map((c) => {
    const rs = of(c.name);
    const ratios = perRound(c.name, 'batch 1');
    const wait = typeof c.batch_wait_ms === 'number' ? c.batch_wait_ms : 0;
    const p99 = med(rs.map((r) => r.p99));
    const inference = med(rs.map((r) => r.inference_ms));
    const bound = wait + 2 * inference;
    return [
      c.name,
      fmt(med(rs.map((r) => r.rps)), 0),
      c.name === 'batch 1' ? '1' : `**${fmt(med(ratios), 2)}** (${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)})`,
      fmt(med(rs.map((r) => r.p50))),
      fmt(p99),
      fmt(med(rs.map((r) => r.batch.per_batch)), 1),
      fmt(inference, 2),
      c.max_batch_size > 1 ? `${fmt(bound)} (${p99 <= bound ? 'met' : `missed ×${fmt(p99 / bound, 1)}`})` : '–',
      fmt(med(rs.map((r) => r.queue_ms))),
      fmt(med(rs.map((r) => r.cpu.server)), 2),
      fmt(Math.max(...rs.map((r) => r.cpu.other)), 2),
    ];
  });
  const table = markdownTable(
    ['configuration', 'median req/s', '÷ batch 1 (min–max over rounds)', 'p50 ms', 'p99 ms', 'mean batch', 'inference ms (one batch)', 'aim: p99 ≤ window + 2 × inference', 'queue ms', 'server CPU', 'other CPU (max)'],
    rows,
  );
  const batching = saturationConfigs.filter((c) => c.max_batch_size > 1 && c.intra_op_threads === 1);
  const best = batching.reduce((a, b) => (med(of(b.name).map((r) => r.rps)) > med(of(a.name).map((r) => r.rps)) ? b : a));
  const fixed = saturationConfigs.filter((c) => typeof c.batch_wait_ms === 'number' && c.batch_wait_ms > 0);
  const bestFixed = fixed.reduce((a, b) => (med(of(b.name).map((r) => r.rps)) > med(of(a.name).map((r) => r.rps)) ? b : a));
  const threads1 = med(perRound('batch 1, 2 threads', 'batch 1'));
  const threads64 = med(perRound('batch 64, no window, 2 threads', 'batch 64, no window'));
  const checks =
    `Best configuration: ${best.name}, ${fmt(med(of(best.name).map((r) => r.rps)), 0)} req/s (the 100% of the load part); best fixed window: ${bestFixed.batch_wait_ms} ms.\n` +
    `2 threads ÷ 1 thread, req/s, median of per-round ratios: batch 1 **${fmt(threads1, 2)}**, batch 64 **${fmt(threads64, 2)}**.\n` +
    `Invalid responses (non-2xx, 202, errors, timeouts, wrong label in 1 of 10 checked): ${results.reduce((n, r) => n + r.bad, 0)}.`;
  return { table, bestRps: med(of(best.name).map((r) => r.rps)), fixedMs: bestFixed.batch_wait_ms as number, checks };
}

function loadReport(results: readonly LoadRun[]): string {
  const rows = results
    .slice()
    .sort((a, b) => a.load - b.load || a.config.localeCompare(b.config))
    .map((r) => {
      const none = results.find((x) => x.load === r.load && x.config === 'no window');
      return [
        `${fmt(r.load * 100, 0)}% (${fmt(r.rate, 0)}/s)`,
        r.config,
        String(r.sent),
        String(r.failures),
        fmt(r.mean),
        fmt(r.p50),
        fmt(r.p99),
        none === undefined || r.config === 'no window' ? '–' : `${fmt((r.p99 ?? Number.NaN) / (none.p99 ?? Number.NaN), 2)}`,
        fmt(r.batch.per_batch, 1),
        fmt(r.inference_ms, 2),
        fmt(r.queue_ms, 1),
        fmt(r.cpu.server, 2),
        fmt(r.cpu.other, 2),
        fmt(r.send_lag_p99, 1),
      ];
    });
  return markdownTable(['load', 'window', 'sent', 'failed', 'mean ms', 'p50 ms', 'p99 ms', 'p99 ÷ no window', 'mean batch', 'inference ms (median)', 'queue ms (median)', 'server CPU', 'other CPU', 'send lag p99 ms'], rows);
}

async function main(): Promise<void> {
  const build = snapshotBuild();
  const m = machineInfo();
  const out: Record<string, unknown> = { machine: m, git_commit: build.git_commit, git_dirty: build.git_dirty, build_sha256: build.sha256, settings: flags };
  let text = `## batching (${m.cpus} CPUs, Node ${m.node}, commit ${build.git_commit}${build.git_dirty ? ' + local changes' : ''})\n\n`;
  try {
    if (part === 'all' || part === 'model') {
      const timings = await modelAlone();
      out['model_alone'] = timings;
      const rowsOf = (t: number) => timings.filter((x) => x.threads === t);
      text += `### The model alone (onnxruntime in one process, median of 5)\n\n${markdownTable(
        ['rows', 'ms per batch, 1 thread', 'µs per row, 1 thread', 'ms per batch, 2 threads', 'µs per row, 2 threads'],
        rowsOf(1).map((a) => {
          const b = rowsOf(2).find((x) => x.rows === a.rows);
          return [String(a.rows), fmt(a.ms_per_batch, 3), fmt(a.us_per_row, 1), fmt(b?.ms_per_batch, 3), fmt(b?.us_per_row, 1)];
        }),
      )}\n\n`;
      log(text);
    }
    let bestRps = flags.saturation === '' ? Number.NaN : num('saturation', flags.saturation, { min: 1 });
    let fixedMs = flags['fixed-ms'] === '' ? Number.NaN : num('fixed-ms', flags['fixed-ms'], { min: 1, integer: true });
    if (part === 'all' || part === 'saturation') {
      const results = await saturation(build.main);
      out['saturation'] = results;
      const report = saturationReport(results);
      bestRps = report.bestRps;
      fixedMs = report.fixedMs;
      text += `### Saturation, closed loop c=${connections}, ${rounds} rounds of ${durationS} s\n\n${report.table}\n\n${report.checks}\n\n`;
      log(report.table);
    }
    if (part === 'all' || part === 'load') {
      if (!Number.isFinite(bestRps) || !Number.isFinite(fixedMs)) throw new Error('--part load needs --saturation and --fixed-ms');
      const results = await underLoad(build.main, bestRps, fixedMs);
      out['load'] = { best_rps: bestRps, fixed_ms: fixedMs, results };
      text += `### Under load: open loop, Poisson, ${loadDurationS} s per system, % of ${fmt(bestRps, 0)} req/s\n\n${loadReport(results)}\n\n`;
    }
  } finally {
    build.remove();
  }
  const file = writeResult('batching', out);
  process.stdout.write(`${text}Result file: ${file}\n`);
}

await main();
