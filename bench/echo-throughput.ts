/**
 * End-to-end throughput of Spillway's asynchronous path with the `echo` model, against a bare
 * fastify server that echoes the same JSON body. See bench/README.md.
 *
 *   npm run build && npx tsx bench/echo-throughput.ts [--duration 10] [--rounds 5] ...
 */
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import autocannon from 'autocannon';
import { num, numList, parseFlags } from './lib/args.js';
import { startServer, type ChildServer } from './lib/child-server.js';
import { machineCpuSeconds, processCpuSeconds } from './lib/cpu.js';
import { log, machineInfo, markdownTable, writeResult } from './lib/report.js';
import { modelRepository, repoRoot, snapshotBuild, startSpillway } from './lib/spillway.js';
import { fmt, median } from './lib/stats.js';
import { sampledBodyCheck } from './lib/body-check.js';

const flags = parseFlags('Usage: npx tsx bench/echo-throughput.ts [options]', {
  duration: { description: 'seconds per measurement', default: '10' },
  warmup: { description: 'seconds of unmeasured load on each fresh server first', default: '3' },
  rounds: { description: 'interleaved rounds (each measures both systems at every connection count)', default: '5' },
  connections: { description: 'connection counts, comma-separated', default: '64,256' },
  timeout: { description: 'seconds before the load generator counts a request as timed out', default: '10' },
  'verify-every': { description: 'check the body of one response in N', default: '10' },
  models: { description: 'model repository for Spillway; unset: a copy of models/echo alone', default: '' },
  'data-root': { description: 'folder under which each Spillway gets a fresh data folder; unset: the OS temp folder', default: '' },
  'quiet-cpu': { description: 'a pair is "quiet" if other programs used less CPU than this (CPU-s/s) in both halves', default: '0.25' },
  'profile-dir': { description: 'if set, run Spillway with --cpu-prof writing profiles here', default: '' },
});
const durationS = num('duration', flags.duration, { min: 1 });
const warmupS = num('warmup', flags.warmup, { min: 0 });
const rounds = num('rounds', flags.rounds, { min: 1, integer: true });
const connectionCounts = numList('connections', flags.connections, { min: 1, integer: true });
const timeoutS = num('timeout', flags.timeout, { min: 1 });
const verifyEvery = num('verify-every', flags['verify-every'], { min: 1, integer: true });
const quietCpu = num('quiet-cpu', flags['quiet-cpu'], { min: 0 });

type System = 'bare' | 'spillway';

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
const verifiers: Record<System, (parsed: unknown) => boolean> = {
  bare: (parsed) => isDeepStrictEqual(parsed, requestBody),
  spillway: (parsed) => {
    const record = parsed as { status?: unknown; output?: unknown; model?: unknown };
    return record.status === 'succeeded' && record.model === 'echo' && isDeepStrictEqual(record.output, input);
  },
};

interface Measurement {
  readonly round: number;
  readonly system: System;
  readonly connections: number;
  readonly order: number;
  readonly duration_s: number;
  /** 200 responses (Spillway: finished predictions) per second. */
  readonly rps: number;
  readonly ok_200: number;
  readonly status_202: number;
  readonly non_2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly bodies_checked: number;
  readonly bodies_bad: number;
  readonly first_bad_body?: string;
  readonly latency_ms: { mean: number; p50: number; p90: number; p99: number; max: number };
  /** CPU-seconds per second used by the server process and by this (load generator) process. */
  readonly server_cpu: number;
  readonly loadgen_cpu: number;
  /** CPU-seconds per second used by everything else on the machine (other programs: noise). */
  readonly other_cpu: number;
  /** CPU-seconds per second taken from this machine by the hypervisor. */
  readonly steal: number;
  /** Requests per CPU-second of the server: throughput with the machine's noise mostly divided out. */
  readonly rps_per_server_cpu: number;
  readonly valid: boolean;
}

/** What Spillway runs: the model repository and the main.js of a build snapshot. */
interface Target {
  readonly models: string;
  readonly main: string;
}

async function startSystem(system: System, target: Target, label: string): Promise<ChildServer> {
  if (system === 'bare') {
    return startServer({ name: 'bare fastify', args: ['--import', 'tsx', join(repoRoot, 'bench/lib/bare-echo-server.ts'), '{port}'], cwd: repoRoot, readyPath: '/healthz' });
  }
  const profileDir = flags['profile-dir'];
  return startSpillway({
    ...target,
    ...(flags['data-root'] === '' ? {} : { dataRoot: flags['data-root'] }),
    nodeArgs: profileDir === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `spillway-${label}.cpuprofile`],
  });
}

function load(url: string, connections: number, seconds: number, verify?: (body: string) => boolean): Promise<autocannon.Result> {
  return autocannon({
    url: `${url}${path}`,
    method: 'POST',
    headers,
    body,
    connections,
    duration: seconds,
    timeout: timeoutS,
    // autocannon stops at its first sample after the duration; frequent samples keep each
    // window within 0.1 s of the duration (rates divide by the measured window either way).
    sampleInt: 100,
    ...(verify === undefined ? {} : { verifyBody: verify as (body: unknown) => boolean }),
  });
}

async function measure(system: System, connections: number, round: number, order: number, target: Target): Promise<Measurement> {
  const server = await startSystem(system, target, `c${connections}-r${round}`);
  try {
    if (warmupS > 0) await load(server.url, connections, warmupS);
    const { verify, tally } = sampledBodyCheck(verifyEvery, verifiers[system]);
    const cpu0 = processCpuSeconds(server.pid);
    const machine0 = machineCpuSeconds();
    const own0 = process.cpuUsage();
    const result = await load(server.url, connections, durationS, verify);
    const { checked, bad, firstBad } = tally;
    const own = process.cpuUsage(own0);
    const machine1 = machineCpuSeconds();
    const serverCpu = (processCpuSeconds(server.pid) - cpu0) / result.duration;
    const loadgenCpu = (own.user + own.system) / 1e6 / result.duration;
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
      latency_ms: {
        mean: result.latency.mean,
        p50: result.latency.p50,
        p90: result.latency.p90,
        p99: result.latency.p99,
        max: result.latency.max,
      },
      server_cpu: serverCpu,
      loadgen_cpu: loadgenCpu,
      other_cpu: Math.max(0, (machine1.busy - machine0.busy) / result.duration - serverCpu - loadgenCpu),
      steal: (machine1.steal - machine0.steal) / result.duration,
      rps_per_server_cpu: ok200 / result.duration / serverCpu,
      valid: result.non2xx === 0 && result.errors === 0 && result.timeouts === 0 && status202 === 0 && bad === 0 && checked > 0,
    };
    log(
      `round ${round} c=${connections} ${system.padEnd(8)} ${fmt(m.rps, 0).padStart(6)} req/s  p50 ${m.latency_ms.p50} ms  p99 ${m.latency_ms.p99} ms  ` +
        `cpu server ${fmt(serverCpu, 2)} loadgen ${fmt(loadgenCpu, 2)} other ${fmt(m.other_cpu, 2)} steal ${fmt(m.steal, 2)}  checked ${checked}${m.valid ? '' : '  INVALID'}`,
    );
    return m;
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const build = snapshotBuild();
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const repo = flags.models === '' ? modelRepository([{ name: 'echo' }]) : undefined;
  const models = repo?.dir ?? flags.models;
  log(`echo throughput: ${rounds} rounds x c=${connectionCounts.join(',')} x (bare, spillway), ${durationS} s each after ${warmupS} s warm-up`);
  const measurements: Measurement[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const [ci, connections] of connectionCounts.entries()) {
        // Alternate who goes first, so a drift in machine load does not favour one system.
        const order: System[] = (round + ci) % 2 === 1 ? ['bare', 'spillway'] : ['spillway', 'bare'];
        for (const [i, system] of order.entries()) measurements.push(await measure(system, connections, round, i + 1, { models, main: build.main }));
      }
    }
  } finally {
    repo?.remove();
    build.remove();
  }

  const perCount = connectionCounts.map((connections) => {
    const pairs = Array.from({ length: rounds }, (_, i) => {
      const of = (s: System) => measurements.find((m) => m.round === i + 1 && m.connections === connections && m.system === s)!;
      return { round: i + 1, bare: of('bare'), spillway: of('spillway') };
    });
    const ratios = pairs.map((p) => p.spillway.rps / p.bare.rps);
    const cpuRatios = pairs.map((p) => p.spillway.rps_per_server_cpu / p.bare.rps_per_server_cpu);
    const quiet = pairs.filter((p) => p.bare.other_cpu < quietCpu && p.spillway.other_cpu < quietCpu);
    const pick = (s: System, f: (m: Measurement) => number) => median(pairs.map((p) => f(p[s])));
    return {
      connections,
      ratios,
      median_ratio: median(ratios),
      min_ratio: Math.min(...ratios),
      max_ratio: Math.max(...ratios),
      quiet_rounds: quiet.map((p) => p.round),
      median_ratio_quiet: median(quiet.map((p) => p.spillway.rps / p.bare.rps)),
      cpu_ratios: cpuRatios,
      median_cpu_ratio: median(cpuRatios),
      median_rps: { bare: pick('bare', (m) => m.rps), spillway: pick('spillway', (m) => m.rps) },
      median_p50_ms: { bare: pick('bare', (m) => m.latency_ms.p50), spillway: pick('spillway', (m) => m.latency_ms.p50) },
      median_p99_ms: { bare: pick('bare', (m) => m.latency_ms.p99), spillway: pick('spillway', (m) => m.latency_ms.p99) },
      median_server_cpu: { bare: pick('bare', (m) => m.server_cpu), spillway: pick('spillway', (m) => m.server_cpu) },
      median_rps_per_server_cpu: { bare: pick('bare', (m) => m.rps_per_server_cpu), spillway: pick('spillway', (m) => m.rps_per_server_cpu) },
      meets_aim: median(ratios) >= 1 / 3,
    };
  });
  const valid = measurements.every((m) => m.valid);

  const roundsTable = markdownTable(
    ['round', 'c', 'first', 'bare req/s', 'spillway req/s', 'ratio', 'bare p50/p99 ms', 'spillway p50/p99 ms', 'server CPU bare/spillway', 'other CPU bare/spillway', 'ratio per server CPU-s'],
    perCount.flatMap(({ connections }) =>
      Array.from({ length: rounds }, (_, i) => {
        const of = (s: System) => measurements.find((m) => m.round === i + 1 && m.connections === connections && m.system === s)!;
        const b = of('bare');
        const s = of('spillway');
        return [
          String(i + 1),
          String(connections),
          b.order === 1 ? 'bare' : 'spillway',
          fmt(b.rps, 0),
          fmt(s.rps, 0),
          fmt(s.rps / b.rps, 3),
          `${b.latency_ms.p50} / ${b.latency_ms.p99}`,
          `${s.latency_ms.p50} / ${s.latency_ms.p99}`,
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
      `${p.median_p50_ms.bare} / ${p.median_p50_ms.spillway}`,
      `${p.median_p99_ms.bare} / ${p.median_p99_ms.spillway}`,
    ]),
  );
  const checks = markdownTable(
    ['system', 'c', 'round', '200', '202', 'non-2xx', 'errors', 'timeouts', 'bodies checked', 'bad bodies'],
    measurements.map((m) => [
      m.system,
      String(m.connections),
      String(m.round),
      String(m.ok_200),
      String(m.status_202),
      String(m.non_2xx),
      String(m.errors),
      String(m.timeouts),
      String(m.bodies_checked),
      String(m.bodies_bad),
    ]),
  );
  const file = writeResult('echo-throughput', {
    benchmark: 'echo-throughput',
    command: `npx tsx bench/echo-throughput.ts ${process.argv.slice(2).join(' ')}`.trim(),
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    build_sha256: build.sha256,
    settings: { quiet_cpu: quietCpu, duration_s: durationS, warmup_s: warmupS, rounds, connections: connectionCounts, timeout_s: timeoutS, verify_every: verifyEvery, body_bytes: Buffer.byteLength(body), models: flags.models === '' ? 'copy of models/echo' : flags.models },
    valid,
    summary: perCount,
    measurements,
  });

  process.stdout.write(
    [
      `## echo throughput (${machine.cpus} CPUs, ${machine.cpu_model}, Node ${machine.node}, commit ${machine.git_commit}${machine.git_dirty ? ' + local changes' : ''}, build ${build.sha256.slice(0, 12)})`,
      '',
      summaryTable,
      '',
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

await main();
