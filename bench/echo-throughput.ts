/**
 * End-to-end throughput of Spillway's asynchronous path with the `echo` model, against a bare
 * fastify server that echoes the same JSON body, and with `--peer bullmq` against what a Node
 * team would build instead (fastify + BullMQ on Redis). See bench/README.md.
 *
 *   npm run build && npx tsx bench/echo-throughput.ts [--duration 10] [--rounds 5] [--peer bullmq] ...
 */
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { join, resolve } from 'node:path';
import { median, type Distribution } from '../src/loadgen/stats.js';
import { num, numList, parseFlags } from './lib/args.js';
import { startServer, type ChildServer } from './lib/child-server.js';
import { machineCpuSeconds, mainThreadCpuSeconds, processCpuSeconds } from './lib/cpu.js';
import { deleteKeys, describeRedis, startBenchRedis, usedMemory, useRedis, type BenchRedis } from './lib/redis-server.js';
import { closedLoop } from './lib/closed-loop.js';
import { checksTable, fmt, log, machineInfo, markdownTable, ratio, writeResult, type ResponseChecks } from './lib/report.js';
import { modelRepository, repoRoot, snapshotBuild, startSpillway, type BuildSnapshot } from './lib/spillway.js';
import { sampledBodyCheck } from './lib/body-check.js';
import { rotation } from './lib/rotation.js';
import { attempts, removeOnComplete, removeOnFail } from './lib/bullmq-settings.js';

const flags = parseFlags('Usage: npx tsx bench/echo-throughput.ts [options]', {
  duration: { description: 'seconds per measurement', default: '10' },
  warmup: { description: 'seconds of unmeasured load on each fresh server first', default: '3' },
  rounds: { description: 'interleaved rounds (each measures both systems at every connection count)', default: '5' },
  connections: { description: 'connection counts, comma-separated', default: '64,256' },
  timeout: { description: 'seconds before the load generator counts a request as timed out', default: '10' },
  rate: {
    description: 'requests per second the load generator sends in all (a paced closed loop); unset: as many as the system answers. At a rate both systems sustain, "per server CPU-s" compares CPU per request at equal load',
    default: '',
  },
  'verify-every': { description: 'check the body of one response in N', default: '10' },
  models: { description: 'model repository for Spillway; unset: a copy of models/echo alone', default: '' },
  'data-root': { description: 'folder under which each Spillway gets a fresh data folder; unset: the OS temp folder', default: '' },
  'quiet-cpu': { description: 'a pair is "quiet" if other programs used less CPU than this (CPU-s/s) in both halves', default: '0.25' },
  'profile-dir': { description: 'if set, run Spillway with --cpu-prof writing profiles here', default: '' },
  'node-args': { description: 'Node flags for this checkout\'s Spillway only (not --before\'s), space-separated: a runtime setting measured against the same build without it', default: '' },
  before: { description: 'another checkout of Spillway (its own built dist/ and node_modules/) measured in the same rounds; the summary adds after ÷ before', default: '' },
  peer: { description: '"bullmq": also measure fastify + BullMQ on Redis (bench/lib/bullmq-echo-*.ts) in the same rounds; the summary adds spillway ÷ bullmq', default: '' },
  'bullmq-concurrency': { description: 'concurrency of the BullMQ worker (Spillway\'s echo: batches of up to 64, one at a time)', default: '64' },
  broker: { description: 'passed to `spillway serve --broker` (with a fresh --prefix per server); "redis" stands for the bench\'s Redis URL; unset: the embedded broker', default: '' },
  store: { description: 'passed to `spillway serve --store`, like --broker; unset: the embedded store', default: '' },
  redis: { description: 'redis:// URL of a running Redis for BullMQ and Spillway\'s "redis"; unset: the bench starts one (bench/lib/redis-server.ts) if anything needs it', default: '' },
});
const durationS = num('duration', flags.duration, { min: 1 });
const warmupS = num('warmup', flags.warmup, { min: 0 });
const rounds = num('rounds', flags.rounds, { min: 1, integer: true });
const connectionCounts = numList('connections', flags.connections, { min: 1, integer: true });
const timeoutS = num('timeout', flags.timeout, { min: 1 });
const rate = flags.rate === '' ? undefined : num('rate', flags.rate, { min: 1 });
const verifyEvery = num('verify-every', flags['verify-every'], { min: 1, integer: true });
const quietCpu = num('quiet-cpu', flags['quiet-cpu'], { min: 0 });
const afterNodeArgs = flags['node-args'].split(' ').filter((a) => a !== '');
if (afterNodeArgs.some((a) => !a.startsWith('--'))) throw new Error(`--node-args: expected Node flags (--name or --name=value), got "${flags['node-args']}"`);
if (flags.peer !== '' && flags.peer !== 'bullmq') throw new Error(`--peer: expected "bullmq", got "${flags.peer}"`);
const withBullmq = flags.peer === 'bullmq';
const bullmqConcurrency = num('bullmq-concurrency', flags['bullmq-concurrency'], { min: 1, integer: true });

/**
 * Spillway's --broker and --store as given; "redis" (or a redis:// URL) puts it on Redis. Every
 * redis:// URL named (here or in --redis) must be the same server, so that Spillway and BullMQ
 * are measured on one Redis with one persistence setting.
 */
const isRedis = (v: string) => v === 'redis' || v.startsWith('redis://');
const spillwayOnRedis = isRedis(flags.broker) || isRedis(flags.store);
const namedRedis = [flags.redis, flags.broker, flags.store].filter((v) => v.startsWith('redis://'));
if (new Set(namedRedis.map((u) => new URL(u).host)).size > 1) throw new Error(`--redis, --broker and --store name different Redis servers (${namedRedis.join(', ')}); both systems must share one`);
const needsRedis = withBullmq || spillwayOnRedis;
const spillwayBackend =
  (flags.broker === '' && flags.store === ''
    ? 'embedded broker and store (no --broker/--store)'
    : `--broker ${flags.broker === '' ? '(embedded)' : flags.broker} --store ${flags.store === '' ? '(embedded)' : flags.store}`) +
  (flags['node-args'] === '' ? '' : `; this checkout's Spillway runs with node ${flags['node-args']}`);

/** `spillway` is this checkout's build (after), `before` the one of --before, `bullmq` the --peer. */
type System = 'bare' | 'spillway' | 'before' | 'bullmq';
type Build = 'spillway' | 'before';

/** The same request for both systems: same path, headers and body. */
const input = {
  text: 'The quick brown fox jumps over the lazy dog',
  values: [0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
  tags: { source: 'bench', kind: 'echo' },
};
const requestBody = { input };
const body = JSON.stringify(requestBody);
const path = '/v1/models/echo/predictions';
const headers = { 'content-type': 'application/json', prefer: 'wait=30' };

/** Does a response body show the work was done: Spillway's finished record, or the bare echo? */
const isEchoRecord = (parsed: unknown): boolean => {
  const record = parsed as { status?: unknown; output?: unknown; model?: unknown };
  return record.status === 'succeeded' && record.model === 'echo' && isDeepStrictEqual(record.output, input);
};
const verifiers: Record<System, (parsed: unknown) => boolean> = {
  bare: (parsed) => isDeepStrictEqual(parsed, requestBody),
  spillway: isEchoRecord,
  before: isEchoRecord,
  bullmq: isEchoRecord,
};

interface Measurement extends ResponseChecks {
  readonly round: number;
  readonly system: System;
  readonly connections: number;
  readonly order: number;
  readonly duration_s: number;
  /** 200 responses (Spillway: finished predictions) per second. */
  readonly rps: number;
  readonly first_bad_body?: string;
  /** Client latency of the 2xx responses. */
  readonly latency_ms: Distribution;
  /** CPU-seconds per second used by the server's processes (BullMQ: HTTP server + worker) and by this (load generator) process. */
  readonly server_cpu: number;
  /**
   * CPU-seconds per second of the server's first process's main thread, part of server_cpu:
   * Spillway's gateway (HTTP) thread; the rest is its worker thread, V8's GC helpers and libuv.
   */
  readonly main_thread_cpu: number;
  readonly loadgen_cpu: number;
  /** CPU-seconds per second used by the Redis server (NaN without one); counted in the system's cost only if it uses Redis. */
  readonly redis_cpu: number;
  readonly uses_redis: boolean;
  /** Redis's used_memory at the end of the measurement, and the keys the system left under its prefix (then deleted). */
  readonly redis_used_memory_mb?: number;
  readonly redis_keys_left?: number;
  /** CPU-seconds per second used by everything else on the machine (other programs: noise). */
  readonly other_cpu: number;
  /** CPU-seconds per second taken from this machine by the hypervisor. */
  readonly steal: number;
  /** Requests per CPU-second of the server: throughput with the machine's noise mostly divided out. */
  readonly rps_per_server_cpu: number;
  /** Requests per CPU-second of the whole system: the server's processes plus Redis if it uses Redis. */
  readonly rps_per_system_cpu: number;
  readonly valid: boolean;
}

/** What each Spillway runs: the model repository and the main.js of its build snapshot; the Redis, if any. */
interface Target {
  readonly models: string;
  readonly main: Readonly<Partial<Record<Build, string>>>;
  readonly redis?: BenchRedis;
}

/** A system under test, started: where to send the load, and every process whose CPU is its own. */
interface Running {
  readonly url: string;
  readonly pids: readonly number[];
  /** Key prefix of what it keeps in Redis (deleted after the measurement); unset if it uses none. */
  readonly redisPrefix?: string;
  stop(): Promise<void>;
}

/** A fresh key prefix per server start, so one measurement never sees another's queue. */
const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`;
let prefixCount = 0;
const nextPrefix = () => `bench-et-${runId}-m${String(++prefixCount).padStart(3, '0')}`;

const single = (server: ChildServer, redisPrefix?: string): Running => ({
  url: server.url,
  pids: [server.pid],
  ...(redisPrefix === undefined ? {} : { redisPrefix }),
  stop: async () => void (await server.stop()),
});

async function startSystem(system: System, target: Target, label: string): Promise<Running> {
  const peer = (name: string, file: string, ...extra: string[]) =>
    startServer({ name, args: ['--import', 'tsx', join(repoRoot, 'bench/lib', file), '{port}', ...extra], cwd: repoRoot, readyPath: '/healthz' });
  if (system === 'bare') return single(await peer('bare fastify', 'bare-echo-server.ts'));
  if (system === 'bullmq') {
    const prefix = nextPrefix();
    const redisUrl = target.redis!.url;
    const worker = await peer('bullmq worker', 'bullmq-echo-worker.ts', redisUrl, prefix, String(bullmqConcurrency));
    let server: ChildServer;
    try {
      server = await peer('bullmq server', 'bullmq-echo-server.ts', redisUrl, prefix);
    } catch (error) {
      await worker.stop();
      throw error;
    }
    return {
      url: server.url,
      pids: [server.pid, worker.pid],
      redisPrefix: prefix,
      // The server first, so no request is left waiting on a job that no worker will take.
      stop: async () => {
        await server.stop();
        await worker.stop();
      },
    };
  }
  const profileDir = flags['profile-dir'];
  const redisUrl = target.redis?.url ?? '';
  const backend = (flag: 'broker' | 'store') => (flags[flag] === '' ? [] : [`--${flag}`, flags[flag] === 'redis' ? redisUrl : flags[flag]]);
  const backends = [...backend('broker'), ...backend('store')];
  // Spillway names its topics (Kafka) and keys (Redis) after --prefix; a fresh one per server start.
  const prefix = backends.length === 0 ? undefined : nextPrefix();
  const server = await startSpillway({
    models: target.models,
    main: target.main[system]!,
    ...(flags['data-root'] === '' ? {} : { dataRoot: flags['data-root'] }),
    // A folder per server: serve writes one profile per thread (gateway and worker), under Node's default names.
    nodeArgs: [
      ...(system === 'spillway' ? afterNodeArgs : []),
      ...(profileDir === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', join(profileDir, `${system}-${label}`)]),
    ],
    args: prefix === undefined ? [] : [...backends, '--prefix', prefix],
  });
  return single(server, spillwayOnRedis ? prefix : undefined);
}

const cpuOf = (pids: readonly number[]) => pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);

function load(url: string, connections: number, seconds: number, verify?: (body: string) => boolean) {
  return closedLoop({
    url: `${url}${path}`,
    headers,
    body,
    connections,
    seconds,
    timeout_s: timeoutS,
    ...(rate === undefined ? {} : { rate }),
    ...(verify === undefined ? {} : { verify }),
  });
}

async function measure(system: System, connections: number, round: number, order: number, target: Target): Promise<Measurement> {
  const server = await startSystem(system, target, `c${connections}-r${round}`);
  let m: Measurement;
  let keysLeft: number | undefined;
  try {
    m = await measureOn(server, system, connections, round, order, target);
  } finally {
    await server.stop();
    // After the stop, so the count is what the system leaves behind once it is gone.
    if (server.redisPrefix !== undefined) keysLeft = await deleteKeys(target.redis!.url, server.redisPrefix, { anywhere: true });
  }
  return keysLeft === undefined ? m : { ...m, redis_keys_left: keysLeft };
}

async function measureOn(server: Running, system: System, connections: number, round: number, order: number, target: Target): Promise<Measurement> {
  const redisPid = target.redis?.pid ?? Number.NaN;
  const usesRedis = server.redisPrefix !== undefined;
  if (warmupS > 0) await load(server.url, connections, warmupS);
  const { verify, tally } = sampledBodyCheck(verifyEvery, verifiers[system]);
  const cpu0 = cpuOf(server.pids);
  const mainPid = server.pids[0] ?? Number.NaN;
  const main0 = mainThreadCpuSeconds(mainPid);
  const redis0 = processCpuSeconds(redisPid);
  const machine0 = machineCpuSeconds();
  const own0 = process.cpuUsage();
  const { result, latency_ms } = await load(server.url, connections, durationS, verify);
  const { checked, bad, firstBad } = tally;
  const own = process.cpuUsage(own0);
  const machine1 = machineCpuSeconds();
  const serverCpu = (cpuOf(server.pids) - cpu0) / result.duration;
  const mainThreadCpu = (mainThreadCpuSeconds(mainPid) - main0) / result.duration;
  const redisCpu = (processCpuSeconds(redisPid) - redis0) / result.duration;
  const loadgenCpu = (own.user + own.system) / 1e6 / result.duration;
  const redisMemory = usesRedis ? { redis_used_memory_mb: (await usedMemory(target.redis!.url)) / 2 ** 20 } : {};
  const systemCpu = serverCpu + (usesRedis ? redisCpu : 0);
  const stats = result.statusCodeStats ?? {};
  const ok200 = stats['200']?.count ?? 0;
  const status202 = stats['202']?.count ?? 0;
  const m: Measurement = {
    round,
    system,
    connections,
    order,
    duration_s: result.duration,
    rps: ok200 / result.duration,
    ok_200: ok200,
    status_202: status202,
    non_2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    bodies_checked: checked,
    bodies_bad: bad,
    ...(firstBad === undefined ? {} : { first_bad_body: firstBad }),
    latency_ms,
    server_cpu: serverCpu,
    main_thread_cpu: mainThreadCpu,
    loadgen_cpu: loadgenCpu,
    redis_cpu: redisCpu,
    uses_redis: usesRedis,
    ...redisMemory,
    other_cpu: Math.max(0, (machine1.busy - machine0.busy) / result.duration - serverCpu - loadgenCpu - (Number.isFinite(redisCpu) ? redisCpu : 0)),
    steal: (machine1.steal - machine0.steal) / result.duration,
    rps_per_server_cpu: ok200 / result.duration / serverCpu,
    rps_per_system_cpu: ok200 / result.duration / systemCpu,
    valid: result.non2xx === 0 && result.errors === 0 && result.timeouts === 0 && status202 === 0 && bad === 0 && checked > 0,
  };
  log(
    `round ${round} c=${connections} ${system.padEnd(8)} ${fmt(m.rps, 0).padStart(6)} req/s  p50 ${fmt(m.latency_ms.p50)} ms  p99 ${fmt(m.latency_ms.p99)} ms  ` +
      `cpu server ${fmt(serverCpu, 2)} (main thread ${fmt(mainThreadCpu, 2)})${Number.isFinite(redisCpu) ? ` redis ${fmt(redisCpu, 2)}` : ''} loadgen ${fmt(loadgenCpu, 2)} other ${fmt(m.other_cpu, 2)} steal ${fmt(m.steal, 2)}  checked ${checked}` +
      `${m.redis_used_memory_mb === undefined ? '' : `  redis mem ${fmt(m.redis_used_memory_mb)} MiB`}${m.valid ? '' : '  INVALID'}`,
  );
  return m;
}

/** The build snapshot's figures a result file keeps, to tell later which code was measured. */
const describeBuild = (b: BuildSnapshot) => ({ root: b.root, git_commit: b.git_commit, git_dirty: b.git_dirty, sha256: b.sha256 });
const label: Record<System, string> = { bare: 'bare', spillway: 'spillway', before: 'before', bullmq: 'bullmq' };

async function main(): Promise<void> {
  const builds: Partial<Record<Build, BuildSnapshot>> = { spillway: snapshotBuild() };
  if (flags.before !== '') builds.before = snapshotBuild(resolve(flags.before));
  const systems: System[] = ['bare', 'spillway', ...(builds.before === undefined ? [] : ['before' as const]), ...(withBullmq ? ['bullmq' as const] : [])];
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const repo = flags.models === '' ? modelRepository([{ name: 'echo' }]) : undefined;
  const models = repo?.dir ?? flags.models;
  let redis: BenchRedis | undefined;
  try {
    redis = !needsRedis ? undefined : namedRedis[0] !== undefined ? await useRedis(namedRedis[0]) : await startBenchRedis();
  } catch (error) {
    repo?.remove();
    builds.spillway?.remove();
    builds.before?.remove();
    throw error;
  }
  const target: Target = { models, main: { spillway: builds.spillway!.main, ...(builds.before === undefined ? {} : { before: builds.before.main }) }, ...(redis === undefined ? {} : { redis }) };
  log(`echo throughput: ${rounds} rounds x c=${connectionCounts.join(',')} x (${systems.join(', ')}), ${durationS} s each after ${warmupS} s warm-up`);
  log(`spillway: ${spillwayBackend}${redis === undefined ? '' : `; ${describeRedis(redis)}`}`);
  if (redis !== undefined && (redis.facts.appendonly !== 'yes' || redis.facts.appendfsync !== 'always')) {
    log(`warning: this Redis is not on appendonly yes / appendfsync always; the BullMQ figures are not of the durable setting`);
  }
  if (builds.before !== undefined) log(`before: ${builds.before.root} (commit ${builds.before.git_commit}${builds.before.git_dirty ? ' + local changes' : ''}, build ${builds.before.sha256.slice(0, 12)})`);
  const measurements: Measurement[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const [ci, connections] of connectionCounts.entries()) {
        const order = rotation(systems, round + ci - 1);
        for (const [i, system] of order.entries()) measurements.push(await measure(system, connections, round, i + 1, target));
      }
    }
  } finally {
    repo?.remove();
    builds.spillway?.remove();
    builds.before?.remove();
    await redis?.stop();
  }

  const of = (round: number, connections: number, s: System) => measurements.find((m) => m.round === round && m.connections === connections && m.system === s)!;
  const roundNumbers = Array.from({ length: rounds }, (_, i) => i + 1);
  const perCount = connectionCounts.map((connections) => {
    const pairs = roundNumbers.map((round) => ({ round, bare: of(round, connections, 'bare'), spillway: of(round, connections, 'spillway') }));
    const ratios = pairs.map((p) => p.spillway.rps / p.bare.rps);
    const cpuRatios = pairs.map((p) => p.spillway.rps_per_server_cpu / p.bare.rps_per_server_cpu);
    const quiet = pairs.filter((p) => p.bare.other_cpu < quietCpu && p.spillway.other_cpu < quietCpu);
    const pick = (s: System, f: (m: Measurement) => number | null) => median(roundNumbers.map((round) => f(of(round, connections, s)) ?? Number.NaN));
    const both = (f: (m: Measurement) => number | null) => Object.fromEntries(systems.map((s) => [s, pick(s, f)])) as Record<System, number | null>;
    const medianRatio = median(ratios);
    return {
      connections,
      ratios,
      median_ratio: medianRatio,
      min_ratio: Math.min(...ratios),
      max_ratio: Math.max(...ratios),
      quiet_rounds: quiet.map((p) => p.round),
      median_ratio_quiet: median(quiet.map((p) => p.spillway.rps / p.bare.rps)),
      cpu_ratios: cpuRatios,
      median_cpu_ratio: median(cpuRatios),
      median_rps: both((m) => m.rps),
      median_p50_ms: both((m) => m.latency_ms.p50),
      median_p99_ms: both((m) => m.latency_ms.p99),
      median_server_cpu: both((m) => m.server_cpu),
      median_rps_per_server_cpu: both((m) => m.rps_per_server_cpu),
      median_redis_cpu: both((m) => m.redis_cpu),
      median_rps_per_system_cpu: both((m) => m.rps_per_system_cpu),
      meets_aim: medianRatio !== null && medianRatio >= 1 / 3,
      ...(builds.before === undefined ? {} : { before: beforeSummary(roundNumbers.map((round) => ({ round, bare: of(round, connections, 'bare'), after: of(round, connections, 'spillway'), before: of(round, connections, 'before') })))}),
      ...(!withBullmq ? {} : { bullmq: bullmqSummary(roundNumbers.map((round) => ({ spillway: of(round, connections, 'spillway'), bullmq: of(round, connections, 'bullmq') }))) }),
    };
  });
  const valid = measurements.every((m) => m.valid);

  const withBefore = builds.before !== undefined;
  const roundsTable = markdownTable(
    [
      'round',
      'c',
      'order',
      'bare req/s',
      'spillway req/s',
      'ratio',
      ...(withBefore ? ['before req/s', 'after ÷ before'] : []),
      'bare p50/p99 ms',
      'spillway p50/p99 ms',
      ...(withBefore ? ['before p50/p99 ms'] : []),
      'server CPU bare/spillway',
      'other CPU bare/spillway',
      'ratio per server CPU-s',
    ],
    connectionCounts.flatMap((connections) =>
      roundNumbers.map((round) => {
        const b = of(round, connections, 'bare');
        const s = of(round, connections, 'spillway');
        const before = withBefore ? of(round, connections, 'before') : undefined;
        const p50p99 = (m: Measurement) => `${fmt(m.latency_ms.p50)} / ${fmt(m.latency_ms.p99)}`;
        return [
          String(round),
          String(connections),
          systems.map((x) => ({ x, order: of(round, connections, x).order })).sort((p, q) => p.order - q.order).map((p) => label[p.x]).join(', '),
          fmt(b.rps, 0),
          fmt(s.rps, 0),
          fmt(s.rps / b.rps, 3),
          ...(before === undefined ? [] : [fmt(before.rps, 0), fmt(s.rps / before.rps, 3)]),
          p50p99(b),
          p50p99(s),
          ...(before === undefined ? [] : [p50p99(before)]),
          `${fmt(b.server_cpu, 2)} / ${fmt(s.server_cpu, 2)}`,
          `${fmt(b.other_cpu, 2)} / ${fmt(s.other_cpu, 2)}`,
          fmt(s.rps_per_server_cpu / b.rps_per_server_cpu, 3),
        ];
      }),
    ),
  );
  const summaryTable = markdownTable(
    ['c', 'median bare req/s', 'median spillway req/s', 'median ratio spillway/bare (min–max)', 'aim ≥ 0.333', 'median ratio, quiet pairs only (n)', 'median ratio per server CPU-s', 'median p50 ms bare / spillway', 'median p99 ms bare / spillway'],
    perCount.map((p) => [
      String(p.connections),
      fmt(p.median_rps.bare, 0),
      fmt(p.median_rps.spillway, 0),
      `${fmt(p.median_ratio, 3)} (${fmt(p.min_ratio, 3)}–${fmt(p.max_ratio, 3)})`,
      p.meets_aim ? 'met' : 'NOT met',
      `${fmt(p.median_ratio_quiet, 3)} (${p.quiet_rounds.length})`,
      fmt(p.median_cpu_ratio, 3),
      `${fmt(p.median_p50_ms.bare)} / ${fmt(p.median_p50_ms.spillway)}`,
      `${fmt(p.median_p99_ms.bare)} / ${fmt(p.median_p99_ms.spillway)}`,
    ]),
  );
  const beforeTable = !withBefore
    ? undefined
    : markdownTable(
        ['c', 'median before req/s', 'median after req/s', 'median after ÷ before (min–max)', 'median after ÷ before per server CPU-s', 'median before ÷ bare', 'median after ÷ bare', 'median p50 ms before / after', 'median p99 ms before / after'],
        perCount.map((p) => {
          const b = p.before!;
          return [
            String(p.connections),
            fmt(p.median_rps.before, 0),
            fmt(p.median_rps.spillway, 0),
            `**${fmt(b.median_after_over_before, 3)}** (${fmt(b.min_after_over_before, 3)}–${fmt(b.max_after_over_before, 3)})`,
            fmt(b.median_after_over_before_per_server_cpu, 3),
            fmt(b.median_before_over_bare, 3),
            fmt(p.median_ratio, 3),
            `${fmt(p.median_p50_ms.before)} / ${fmt(p.median_p50_ms.spillway)}`,
            `${fmt(p.median_p99_ms.before)} / ${fmt(p.median_p99_ms.spillway)}`,
          ];
        }),
      );
  const cpuPair = (m: Measurement) => `${fmt(m.server_cpu, 2)} + ${fmt(m.uses_redis ? m.redis_cpu : Number.NaN, 2)}`;
  const bullmqTable = !withBullmq
    ? undefined
    : markdownTable(
        [
          'c',
          'median bullmq req/s',
          'median spillway req/s',
          'median spillway ÷ bullmq (min–max)',
          'aim ≥ 2',
          'median p99 ms bullmq / spillway',
          'p99 aim: spillway ≤ bullmq',
          'median p50 ms bullmq / spillway',
          'median CPU server + redis, bullmq / spillway',
          'median spillway ÷ bullmq per system CPU-s',
        ],
        perCount.map((p) => {
          const b = p.bullmq!;
          return [
            String(p.connections),
            fmt(p.median_rps.bullmq, 0),
            fmt(p.median_rps.spillway, 0),
            `**${fmt(b.median_spillway_over_bullmq, 3)}** (${fmt(b.min_spillway_over_bullmq, 3)}–${fmt(b.max_spillway_over_bullmq, 3)})`,
            b.meets_throughput_aim ? 'met' : 'NOT met',
            `${fmt(p.median_p99_ms.bullmq)} / ${fmt(p.median_p99_ms.spillway)}`,
            b.meets_p99_aim ? 'met' : 'NOT met',
            `${fmt(p.median_p50_ms.bullmq)} / ${fmt(p.median_p50_ms.spillway)}`,
            `${fmt(p.median_server_cpu.bullmq, 2)} + ${fmt(p.median_redis_cpu.bullmq, 2)} / ${fmt(p.median_server_cpu.spillway, 2)}${spillwayOnRedis ? ` + ${fmt(p.median_redis_cpu.spillway, 2)}` : ''}`,
            fmt(b.median_spillway_over_bullmq_per_system_cpu, 3),
          ];
        }),
      );
  const bullmqRounds = !withBullmq
    ? undefined
    : markdownTable(
        ['round', 'c', 'bullmq req/s', 'spillway req/s', 'spillway ÷ bullmq', 'bullmq p50/p99 ms', 'spillway p50/p99 ms', 'CPU server + redis bullmq', 'CPU server + redis spillway', 'other CPU bullmq/spillway', 'redis MiB / keys left (bullmq)'],
        connectionCounts.flatMap((connections) =>
          roundNumbers.map((round) => {
            const q = of(round, connections, 'bullmq');
            const s = of(round, connections, 'spillway');
            return [
              String(round),
              String(connections),
              fmt(q.rps, 0),
              fmt(s.rps, 0),
              fmt(s.rps / q.rps, 3),
              `${fmt(q.latency_ms.p50)} / ${fmt(q.latency_ms.p99)}`,
              `${fmt(s.latency_ms.p50)} / ${fmt(s.latency_ms.p99)}`,
              cpuPair(q),
              cpuPair(s),
              `${fmt(q.other_cpu, 2)} / ${fmt(s.other_cpu, 2)}`,
              `${fmt(q.redis_used_memory_mb)} / ${q.redis_keys_left ?? '–'}`,
            ];
          }),
        ),
      );
  const checks = checksTable('system', measurements.map((m) => ({ name: m.system, m })));
  const after = builds.spillway!;
  const file = writeResult('echo-throughput', {
    benchmark: 'echo-throughput',
    command: `npx tsx bench/echo-throughput.ts ${process.argv.slice(2).join(' ')}`.trim(),
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    build_sha256: after.sha256,
    builds: { spillway: describeBuild(after), ...(builds.before === undefined ? {} : { before: describeBuild(builds.before) }) },
    settings: { quiet_cpu: quietCpu, ...(rate === undefined ? {} : { rate }), duration_s: durationS, warmup_s: warmupS, rounds, connections: connectionCounts, timeout_s: timeoutS, verify_every: verifyEvery, body_bytes: Buffer.byteLength(body), models: flags.models === '' ? 'copy of models/echo' : flags.models },
    spillway_backend: spillwayBackend,
    ...(redis === undefined ? {} : { redis: { url: redis.url, started_by: redis.started_by, ...redis.facts } }),
    ...(!withBullmq ? {} : { bullmq: { ...packageVersions(['bullmq', 'ioredis', 'fastify']), concurrency: bullmqConcurrency, remove_on_complete: removeOnComplete, remove_on_fail: removeOnFail, attempts } }),
    valid,
    summary: perCount,
    measurements,
  });

  const before = builds.before;
  process.stdout.write(
    [
      `## echo throughput (${machine.cpus} CPUs, ${machine.cpu_model}, Node ${machine.node}, commit ${machine.git_commit}${machine.git_dirty ? ' + local changes' : ''}, build ${after.sha256.slice(0, 12)})`,
      '',
      summaryTable,
      '',
      `Spillway: ${spillwayBackend}.${redis === undefined ? '' : ` ${describeRedis(redis)}.`}`,
      '',
      ...(rate === undefined ? [] : [`Paced load: ${rate} requests/s in all; compare "per server CPU-s" (CPU per request at equal load), not req/s.`, '']),
      ...(beforeTable === undefined || before === undefined
        ? []
        : [`### after (this checkout) ÷ before (${before.root}, commit ${before.git_commit}${before.git_dirty ? ' + local changes' : ''}, build ${before.sha256.slice(0, 12)})`, '', beforeTable, '']),
      ...(bullmqTable === undefined || bullmqRounds === undefined
        ? []
        : [
            `### spillway ÷ bullmq (fastify + BullMQ ${packageVersions(['bullmq']).bullmq}, worker concurrency ${bullmqConcurrency}, in its own process; CPU is CPU-s per s, server = both BullMQ processes)`,
            '',
            bullmqTable,
            '',
            bullmqRounds,
            '',
          ]),
      roundsTable,
      '',
      checks,
      '',
      valid ? 'Valid run: no non-2xx, 202, error, timeout or bad body.' : 'INVALID RUN: see the checks table (non-2xx, 202, errors, timeouts or bad bodies).',
      `Result file: ${file}`,
      '',
    ].join('\n'),
  );
  if (!valid) process.exitCode = 1;
}

/** Spillway ÷ BullMQ per round, as medians across the rounds, and the issue's aims: ≥ 2× the throughput at no higher p99. */
function bullmqSummary(rows: readonly { spillway: Measurement; bullmq: Measurement }[]) {
  const over = rows.map((r) => ratio(r.spillway.rps, r.bullmq.rps));
  const medianOver = median(over);
  const p99 = (s: 'spillway' | 'bullmq') => median(rows.map((r) => r[s].latency_ms.p99 ?? Number.NaN));
  const p99Spillway = p99('spillway');
  const p99Bullmq = p99('bullmq');
  return {
    spillway_over_bullmq: over,
    median_spillway_over_bullmq: medianOver,
    min_spillway_over_bullmq: Math.min(...over),
    max_spillway_over_bullmq: Math.max(...over),
    median_spillway_over_bullmq_per_system_cpu: median(rows.map((r) => ratio(r.spillway.rps_per_system_cpu, r.bullmq.rps_per_system_cpu))),
    meets_throughput_aim: medianOver !== null && medianOver >= 2,
    meets_p99_aim: p99Spillway !== null && p99Bullmq !== null && p99Spillway <= p99Bullmq,
  };
}

/** Versions of installed packages, as the result file records them. */
function packageVersions<const N extends string>(names: readonly N[]): Record<N, string> {
  const version = (name: string) => (JSON.parse(readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  return Object.fromEntries(names.map((n) => [n, version(n)])) as Record<N, string>;
}

/** After ÷ before per round (and each against the bare server), as medians across the rounds. */
function beforeSummary(rows: readonly { round: number; bare: Measurement; after: Measurement; before: Measurement }[]) {
  const afterOverBefore = rows.map((r) => ratio(r.after.rps, r.before.rps));
  return {
    after_over_before: afterOverBefore,
    median_after_over_before: median(afterOverBefore),
    min_after_over_before: Math.min(...afterOverBefore),
    max_after_over_before: Math.max(...afterOverBefore),
    median_after_over_before_per_server_cpu: median(rows.map((r) => ratio(r.after.rps_per_server_cpu, r.before.rps_per_server_cpu))),
    median_before_over_bare: median(rows.map((r) => ratio(r.before.rps, r.bare.rps))),
  };
}

await main();
