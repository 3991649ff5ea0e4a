/**
 * Spillway on Kafka against Spillway on its embedded broker, in the same run: end-to-end
 * throughput with the `echo` model (closed loop, autocannon, `Prefer: wait=30`), and latency
 * with the `sleep` model at a fraction of its capacity (default 50%; open-loop Poisson, the same
 * schedule for both brokers, `Prefer: wait=60`). See bench/README.md.
 *
 *   scripts/kafka up && npm run build && npx tsx bench/broker-compare.ts [--rounds 2] ...   (~8 minutes)
 *
 * - Every measurement gets a fresh `spillway serve` (fresh data folder; on Kafka a fresh
 *   --prefix, so fresh topics and groups), one priming request awaited alone (on Kafka it pays
 *   topic creation and group joins), then an unmeasured warm-up at the measured load.
 * - Each round measures both brokers at every connection count, then both at the latency load;
 *   which broker goes first alternates from one pair to the next.
 * - CPU of the server process, of the Kafka JVM and of this process (the load generator), and
 *   what everything else used (noise), per measurement.
 * - The topics and groups of every prefix used are deleted at the end.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { num, numList, parseFlags } from './lib/args.js';
import { buildSchedule } from '../src/loadgen/schedule.js';
import { steadyProfile } from '../src/loadgen/profiles.js';
import { callOnSchedule, summarizeShots } from '../src/loadgen/scheduled-calls.js';
import { closedLoop } from './lib/closed-loop.js';
import { latencyReport, throughputReport, type Broker, type LatencyDetail, type LatencyRun, type ThroughputMeasurement } from './lib/broker-compare-report.js';
import { cpuWindow } from './lib/cpu-window.js';
import { brokerPid, kafkaVersions } from './lib/kafka-broker-info.js';
import { deletePrefixes, topicCount } from './lib/kafka-prefixes.js';
import { fmt, log, machineInfo, writeResult } from './lib/report.js';
import { modelRepository, snapshotBuild, startSpillway, type SpillwayProcess } from './lib/spillway.js';
import { sampledBodyCheck } from './lib/body-check.js';

const flags = parseFlags('Usage: npx tsx bench/broker-compare.ts [options]   (needs `scripts/kafka up` and `npm run build`)', {
  bootstrap: { description: 'Kafka bootstrap servers, comma-separated', default: '127.0.0.1:9092' },
  rounds: { description: 'interleaved rounds (each measures both brokers in every part)', default: '2' },
  parts: { description: 'comma-separated subset of throughput,latency', default: 'throughput,latency' },
  duration: { description: 'throughput: seconds per measurement', default: '10' },
  warmup: { description: 'throughput: seconds of unmeasured load on each fresh server first', default: '5' },
  connections: { description: 'throughput: connection counts, comma-separated', default: '256,64' },
  timeout: { description: 'throughput: seconds before the load generator counts a request as timed out', default: '10' },
  'verify-every': { description: 'throughput: check the body of one response in N', default: '10' },
  'latency-duration': { description: 'latency: seconds of arrivals per broker per round', default: '60' },
  'latency-warmup': { description: 'latency: seconds of unmeasured arrivals at the same rate on each fresh server first', default: '5' },
  load: { description: "latency: offered load as a fraction of the sleep model's capacity", default: '0.5' },
  seed: { description: 'latency: seed of the arrival schedule; round r uses seed + r - 1', default: '1' },
  wait: { description: 'latency: seconds in the Prefer: wait header', default: '60' },
  'quiet-cpu': { description: 'a pair is "quiet" if other programs used less CPU than this (CPU-s/s) in both halves', default: '0.25' },
});
const bootstrap = flags.bootstrap.split(',').map((s) => s.trim());
const rounds = num('rounds', flags.rounds, { min: 1, integer: true });
const parts = new Set(flags.parts.split(',').map((p) => p.trim()));
for (const p of parts) if (p !== 'throughput' && p !== 'latency') throw new Error(`--parts: unknown part "${p}" (known: throughput, latency)`);
const durationS = num('duration', flags.duration, { min: 1 });
const warmupS = num('warmup', flags.warmup, { min: 0 });
const connectionCounts = numList('connections', flags.connections, { min: 1, integer: true });
const timeoutS = num('timeout', flags.timeout, { min: 1 });
const verifyEvery = num('verify-every', flags['verify-every'], { min: 1, integer: true });
const latencyDurationS = num('latency-duration', flags['latency-duration'], { min: 1 });
const latencyWarmupS = num('latency-warmup', flags['latency-warmup'], { min: 0 });
const loadFraction = num('load', flags.load, { min: 0.01 });
const seed = num('seed', flags.seed, { integer: true });
const waitS = num('wait', flags.wait, { min: 1 });
const quietCpu = num('quiet-cpu', flags['quiet-cpu'], { min: 0 });

const runId = Date.now().toString(36);
const kafkaPid = brokerPid(bootstrap[0] ?? '127.0.0.1:9092');
const prefixes: string[] = [];

/** A fresh `spillway serve`; on Kafka with a prefix no earlier server used. */
function startOn(broker: Broker, target: { models: string; main: string }): Promise<SpillwayProcess> {
  if (broker === 'embedded') return startSpillway(target);
  const prefix = `bench-bc-${runId}-${prefixes.length + 1}`;
  prefixes.push(prefix);
  return startSpillway({ ...target, args: ['--broker', `kafka://${bootstrap.join(',')}`, '--prefix', prefix] });
}

function post(agent: Agent, url: URL, body: string, wait: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), prefer: `wait=${wait}` };
    const req = request(url, { method: 'POST', agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The first request to a fresh server, awaited alone: ms until its 200, NaN if it failed. */
async function prime(url: URL, body: string, check: (parsed: unknown) => boolean): Promise<number> {
  const agent = new Agent({ keepAlive: false });
  const t0 = performance.now();
  try {
    const { status, text } = await post(agent, url, body, 60);
    const ok = status === 200 && check(JSON.parse(text));
    if (!ok) log(`  warning: the priming request answered ${status}: ${text.slice(0, 200)}`);
    return ok ? performance.now() - t0 : Number.NaN;
  } catch (error) {
    log(`  warning: the priming request failed: ${String(error)}`);
    return Number.NaN;
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------- throughput (echo)

const echoInput = {
  text: 'The quick brown fox jumps over the lazy dog',
  values: [0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
  tags: { source: 'bench', kind: 'echo' },
};
const echoBody = JSON.stringify({ input: echoInput });
const echoPath = '/v1/models/echo/predictions';
const isEchoRecord = (parsed: unknown): boolean => {
  const r = parsed as { status?: unknown; output?: unknown; model?: unknown };
  return r.status === 'succeeded' && r.model === 'echo' && isDeepStrictEqual(r.output, echoInput);
};

function closedLoad(url: string, connections: number, seconds: number, verify?: (body: string) => boolean) {
  return closedLoop({
    url: `${url}${echoPath}`,
    headers: { 'content-type': 'application/json', prefer: 'wait=30' },
    body: echoBody,
    connections,
    seconds,
    timeout_s: timeoutS,
    ...(verify === undefined ? {} : { verify }),
  });
}

async function measureThroughput(broker: Broker, connections: number, round: number, order: number, target: { models: string; main: string }): Promise<ThroughputMeasurement> {
  const server = await startOn(broker, target);
  try {
    const firstMs = await prime(new URL(echoPath, server.url), echoBody, isEchoRecord);
    if (warmupS > 0) await closedLoad(server.url, connections, warmupS);
    const { verify, tally } = sampledBodyCheck(verifyEvery, isEchoRecord);
    const endCpu = cpuWindow(server.pid, kafkaPid);
    const { result, latency_ms } = await closedLoad(server.url, connections, durationS, verify);
    const { checked, bad, firstBad } = tally;
    const cpu = endCpu();
    const stats = result.statusCodeStats ?? {};
    const ok200 = stats['200']?.count ?? 0;
    const status202 = stats['202']?.count ?? 0;
    const rps = ok200 / result.duration;
    const m: ThroughputMeasurement = {
      round,
      broker,
      connections,
      order,
      first_request_ms: firstMs,
      duration_s: result.duration,
      rps,
      ok_200: ok200,
      status_202: status202,
      non_2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      bodies_checked: checked,
      bodies_bad: bad,
      ...(firstBad === undefined ? {} : { first_bad_body: firstBad }),
      latency_ms,
      cpu,
      // On Kafka the broker's work is part of the system's cost; the embedded broker's is in the server.
      rps_per_system_cpu: rps / (cpu.server + (broker === 'kafka' && Number.isFinite(cpu.kafka) ? cpu.kafka : 0)),
      valid: result.non2xx === 0 && result.errors === 0 && result.timeouts === 0 && status202 === 0 && bad === 0 && checked > 0,
    };
    log(
      `round ${round} c=${connections} ${broker.padEnd(8)} ${fmt(rps, 0).padStart(6)} req/s  p50 ${fmt(m.latency_ms.p50)} ms  p99 ${fmt(m.latency_ms.p99)} ms  first ${fmt(firstMs, 0)} ms  ` +
        `cpu server ${fmt(cpu.server, 2)} kafka ${fmt(cpu.kafka, 2)} bench ${fmt(cpu.bench, 2)} other ${fmt(cpu.other, 2)}  checked ${checked}${m.valid ? '' : '  INVALID'}`,
    );
    return m;
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------- latency (sleep)

const sleepInput = (i: number) => ({ i, text: 'sleep benchmark' });
const sleepPath = '/v1/models/sleep/predictions';

async function measureLatency(
  broker: Broker,
  round: number,
  order: number,
  schedules: { warmup: readonly number[]; measured: readonly number[] },
  target: { models: string; main: string },
  serviceMs: number,
): Promise<LatencyRun> {
  const server = await startOn(broker, target);
  // Open loop: never queue requests behind a connection limit in the client.
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const url = new URL(sleepPath, server.url);
  const expected = (i: number) => ({ input: sleepInput(i), batch_size: 1, service_ms: serviceMs });
  const call = async (i: number): Promise<{ ok: boolean; detail: LatencyDetail }> => {
    const { status, text } = await post(agent, url, JSON.stringify({ input: sleepInput(i) }), waitS);
    let record: { status?: string; output?: unknown; metrics?: { queue_ms?: number; inference_ms?: number; total_ms?: number } } = {};
    try {
      record = JSON.parse(text) as typeof record;
    } catch {
      // Counted as a failure below.
    }
    const ok = status === 200 && record.status === 'succeeded' && isDeepStrictEqual(record.output, expected(i));
    const m = record.metrics;
    return {
      ok,
      detail: {
        status_code: status,
        queue_ms: m?.queue_ms ?? Number.NaN,
        inference_ms: m?.inference_ms ?? Number.NaN,
        total_ms: m?.total_ms ?? Number.NaN,
        ...(ok ? {} : { error: text.slice(0, 300) }),
      },
    };
  };
  const failedDetail = (e: unknown): LatencyDetail => ({ status_code: 0, queue_ms: Number.NaN, inference_ms: Number.NaN, total_ms: Number.NaN, error: String(e) });
  try {
    const firstMs = await prime(url, JSON.stringify({ input: sleepInput(-1) }), (r) => isDeepStrictEqual((r as { output?: unknown }).output, expected(-1)));
    // Warm-up inputs are numbered below -1, so no warm-up answer can pass for a measured one.
    if (schedules.warmup.length > 0) await callOnSchedule(schedules.warmup, (i) => call(-2 - i), { drain_ms: (waitS + 10) * 1000, failedDetail });
    const endCpu = cpuWindow(server.pid, kafkaPid);
    const shots = await callOnSchedule(schedules.measured, call, { drain_ms: (waitS + 10) * 1000, failedDetail });
    const cpu = endCpu();
    const s = summarizeShots(shots);
    log(
      `round ${round} latency ${broker.padEnd(8)} mean ${fmt(s.mean)} ms  p50 ${fmt(s.p50)}  p99 ${fmt(s.p99)}  max ${fmt(s.max)}  failures ${s.failures}  first ${fmt(firstMs, 0)} ms  ` +
        `cpu server ${fmt(cpu.server, 2)} kafka ${fmt(cpu.kafka, 2)} bench ${fmt(cpu.bench, 2)} other ${fmt(cpu.other, 2)}`,
    );
    return { round, broker, order, first_request_ms: firstMs, shots, cpu };
  } finally {
    agent.destroy();
    await server.stop();
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  if (!Number.isFinite(kafkaPid)) log(`warning: no Kafka broker process found for ${bootstrap[0]}; its CPU will show as NaN (is \`scripts/kafka up\` running?)`);
  const build = snapshotBuild();
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const topicsAtStart = await topicCount(bootstrap);
  const echoRepo = modelRepository([{ name: 'echo' }]);
  const sleepRepo = modelRepository([{ name: 'sleep' }]);
  const sleepConfig = sleepRepo.configs['sleep']!;
  const parameters = (sleepConfig['parameters'] ?? {}) as Record<string, unknown>;
  const concurrency = Number(sleepConfig['concurrency']);
  const serviceMs = Number(parameters['per_batch_ms'] ?? 50) + Number(parameters['per_item_ms'] ?? 0);
  const capacity = (concurrency / serviceMs) * 1000;
  const rate = loadFraction * capacity;
  log(
    `broker compare: ${rounds} rounds; throughput c=${connectionCounts.join(',')} ${durationS} s after ${warmupS} s warm-up; ` +
      `latency ${fmt(rate)} req/s (${loadFraction * 100}% of ${fmt(capacity)}) for ${latencyDurationS} s after ${latencyWarmupS} s; Kafka ${bootstrap.join(',')} (pid ${kafkaPid}, ${topicsAtStart} topics)`,
  );

  const throughput: ThroughputMeasurement[] = [];
  const latency: LatencyRun[] = [];
  let cleanup: Awaited<ReturnType<typeof deletePrefixes>> | undefined;
  try {
    for (let round = 1; round <= rounds; round++) {
      if (parts.has('throughput')) {
        for (const [ci, connections] of connectionCounts.entries()) {
          // Alternate who goes first, so a drift in machine load does not favour one broker.
          const order: Broker[] = (round + ci) % 2 === 1 ? ['embedded', 'kafka'] : ['kafka', 'embedded'];
          for (const [i, broker] of order.entries()) throughput.push(await measureThroughput(broker, connections, round, i + 1, { models: echoRepo.dir, main: build.main }));
        }
      }
      if (parts.has('latency')) {
        const roundSeed = seed + round - 1;
        const schedules = {
          measured: buildSchedule(steadyProfile({ rate, duration_s: latencyDurationS }), { process: 'poisson', seed: roundSeed }),
          warmup: buildSchedule(steadyProfile({ rate, duration_s: latencyWarmupS }), { process: 'poisson', seed: roundSeed + 1_000_000 }),
        };
        const order: Broker[] = (round + connectionCounts.length) % 2 === 1 ? ['embedded', 'kafka'] : ['kafka', 'embedded'];
        log(`round ${round} latency: seed ${roundSeed}, ${schedules.measured.length} arrivals`);
        for (const [i, broker] of order.entries()) latency.push(await measureLatency(broker, round, i + 1, schedules, { models: sleepRepo.dir, main: build.main }, serviceMs));
      }
    }
  } finally {
    echoRepo.remove();
    sleepRepo.remove();
    build.remove();
    cleanup = await deletePrefixes(bootstrap, prefixes);
    log(`deleted ${cleanup.topics} topics and ${cleanup.groups} groups of ${prefixes.length} prefixes${cleanup.errors.length > 0 ? `; errors: ${cleanup.errors.join('; ')}` : ''}`);
  }

  const t = parts.has('throughput') ? throughputReport(throughput, connectionCounts, rounds, quietCpu) : undefined;
  const l = parts.has('latency') ? latencyReport(latency, rounds, seed) : undefined;
  const valid = (t?.valid ?? true) && (l?.valid ?? true);
  const file = writeResult('broker-compare', {
    benchmark: 'broker-compare',
    command: `npx tsx bench/broker-compare.ts ${process.argv.slice(2).join(' ')}`.trim(),
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    build_sha256: build.sha256,
    kafka: { bootstrap, pid: kafkaPid, versions: kafkaVersions(kafkaPid), topics_at_start: topicsAtStart, prefixes, cleanup },
    settings: {
      rounds,
      parts: [...parts],
      throughput: { duration_s: durationS, warmup_s: warmupS, connections: connectionCounts, timeout_s: timeoutS, verify_every: verifyEvery, body_bytes: Buffer.byteLength(echoBody), prefer: 'wait=30' },
      latency: { duration_s: latencyDurationS, warmup_s: latencyWarmupS, load: loadFraction, rate_per_s: rate, capacity_per_s: capacity, service_ms: serviceMs, concurrency, seed, wait_s: waitS },
      quiet_cpu: quietCpu,
    },
    valid,
    throughput: t?.data,
    latency: l?.data,
  });

  process.stdout.write(
    [
      `## Kafka vs embedded broker (${machine.cpus} CPUs, ${machine.cpu_model}, Node ${machine.node}, commit ${machine.git_commit}${machine.git_dirty ? ' + local changes' : ''}, build ${build.sha256.slice(0, 12)})`,
      '',
      ...(t === undefined ? [] : [t.markdown, '']),
      ...(l === undefined ? [] : [l.markdown, '']),
      valid ? 'Valid run: no failed, non-2xx, 202, unfinished or wrong response.' : 'INVALID RUN: see the checks tables.',
      `Result file: ${file}`,
      '',
    ].join('\n'),
  );
  if (!valid) process.exitCode = 1;
}

await main();
