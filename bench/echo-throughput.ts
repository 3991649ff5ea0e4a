/**
 * End-to-end throughput of Spillway's asynchronous path with the `echo` model, against a bare
 * fastify server that echoes the same JSON body. See bench/README.md.
 *
 *   npm run build && npx tsx bench/echo-throughput.ts [--duration 10] [--rounds 5] ...
 */
import { isDeepStrictEqual } from 'node:util';
import { join, resolve } from 'node:path';
import { median, type Distribution } from '../src/loadgen/stats.js';
import { num, numList, parseFlags } from './lib/args.js';
import { startServer, type ChildServer } from './lib/child-server.js';
import { machineCpuSeconds, processCpuSeconds } from './lib/cpu.js';
import { closedLoop } from './lib/closed-loop.js';
import { fmt, log, machineInfo, markdownTable, ratio, writeResult } from './lib/report.js';
import { modelRepository, repoRoot, snapshotBuild, startSpillway, type BuildSnapshot } from './lib/spillway.js';
import { sampledBodyCheck } from './lib/body-check.js';
import { rotation } from './lib/rotation.js';

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
  before: { description: 'another checkout of Spillway (its own built dist/ and node_modules/) measured in the same rounds; the summary adds after ÷ before', default: '' },
});
const durationS = num('duration', flags.duration, { min: 1 });
const warmupS = num('warmup', flags.warmup, { min: 0 });
const rounds = num('rounds', flags.rounds, { min: 1, integer: true });
const connectionCounts = numList('connections', flags.connections, { min: 1, integer: true });
const timeoutS = num('timeout', flags.timeout, { min: 1 });
const verifyEvery = num('verify-every', flags['verify-every'], { min: 1, integer: true });
const quietCpu = num('quiet-cpu', flags['quiet-cpu'], { min: 0 });

/** `spillway` is this checkout's build (after), `before` the one of --before. */
type System = 'bare' | 'spillway' | 'before';
type Build = Exclude<System, 'bare'>;

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
  /** Client latency of the 2xx responses. */
  readonly latency_ms: Distribution;
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

/** What each Spillway runs: the model repository and the main.js of its build snapshot. */
interface Target {
  readonly models: string;
  readonly main: Readonly<Partial<Record<Build, string>>>;
}

async function startSystem(system: System, target: Target, label: string): Promise<ChildServer> {
  if (system === 'bare') {
    return startServer({ name: 'bare fastify', args: ['--import', 'tsx', join(repoRoot, 'bench/lib/bare-echo-server.ts'), '{port}'], cwd: repoRoot, readyPath: '/healthz' });
  }
  const profileDir = flags['profile-dir'];
  return startSpillway({
    models: target.models,
    main: target.main[system]!,
    ...(flags['data-root'] === '' ? {} : { dataRoot: flags['data-root'] }),
    nodeArgs: profileDir === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${system}-${label}.cpuprofile`],
  });
}

function load(url: string, connections: number, seconds: number, verify?: (body: string) => boolean) {
  return closedLoop({ url: `${url}${path}`, headers, body, connections, seconds, timeout_s: timeoutS, ...(verify === undefined ? {} : { verify }) });
}

async function measure(system: System, connections: number, round: number, order: number, target: Target): Promise<Measurement> {
  const server = await startSystem(system, target, `c${connections}-r${round}`);
  try {
    if (warmupS > 0) await load(server.url, connections, warmupS);
    const { verify, tally } = sampledBodyCheck(verifyEvery, verifiers[system]);
    const cpu0 = processCpuSeconds(server.pid);
    const machine0 = machineCpuSeconds();
    const own0 = process.cpuUsage();
    const { result, latency_ms } = await load(server.url, connections, durationS, verify);
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
      latency_ms,
      server_cpu: serverCpu,
      loadgen_cpu: loadgenCpu,
      other_cpu: Math.max(0, (machine1.busy - machine0.busy) / result.duration - serverCpu - loadgenCpu),
      steal: (machine1.steal - machine0.steal) / result.duration,
      rps_per_server_cpu: ok200 / result.duration / serverCpu,
      valid: result.non2xx === 0 && result.errors === 0 && result.timeouts === 0 && status202 === 0 && bad === 0 && checked > 0,
    };
    log(
      `round ${round} c=${connections} ${system.padEnd(8)} ${fmt(m.rps, 0).padStart(6)} req/s  p50 ${fmt(m.latency_ms.p50)} ms  p99 ${fmt(m.latency_ms.p99)} ms  ` +
        `cpu server ${fmt(serverCpu, 2)} loadgen ${fmt(loadgenCpu, 2)} other ${fmt(m.other_cpu, 2)} steal ${fmt(m.steal, 2)}  checked ${checked}${m.valid ? '' : '  INVALID'}`,
    );
    return m;
  } finally {
    await server.stop();
  }
}

/** The build snapshot's figures a result file keeps, to tell later which code was measured. */
const describeBuild = (b: BuildSnapshot) => ({ root: b.root, git_commit: b.git_commit, git_dirty: b.git_dirty, sha256: b.sha256 });
const label: Record<System, string> = { bare: 'bare', spillway: 'spillway', before: 'before' };

async function main(): Promise<void> {
  const builds: Partial<Record<Build, BuildSnapshot>> = { spillway: snapshotBuild() };
  if (flags.before !== '') builds.before = snapshotBuild(resolve(flags.before));
  const systems: System[] = builds.before === undefined ? ['bare', 'spillway'] : ['bare', 'spillway', 'before'];
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const repo = flags.models === '' ? modelRepository([{ name: 'echo' }]) : undefined;
  const models = repo?.dir ?? flags.models;
  const target: Target = { models, main: { spillway: builds.spillway!.main, ...(builds.before === undefined ? {} : { before: builds.before.main }) } };
  log(`echo throughput: ${rounds} rounds x c=${connectionCounts.join(',')} x (${systems.join(', ')}), ${durationS} s each after ${warmupS} s warm-up`);
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
      meets_aim: medianRatio !== null && medianRatio >= 1 / 3,
      ...(builds.before === undefined ? {} : { before: beforeSummary(roundNumbers.map((round) => ({ round, bare: of(round, connections, 'bare'), after: of(round, connections, 'spillway'), before: of(round, connections, 'before') })))}),
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
  const after = builds.spillway!;
  const file = writeResult('echo-throughput', {
    benchmark: 'echo-throughput',
    command: `npx tsx bench/echo-throughput.ts ${process.argv.slice(2).join(' ')}`.trim(),
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    build_sha256: after.sha256,
    builds: { spillway: describeBuild(after), ...(builds.before === undefined ? {} : { before: describeBuild(builds.before) }) },
    settings: { quiet_cpu: quietCpu, duration_s: durationS, warmup_s: warmupS, rounds, connections: connectionCounts, timeout_s: timeoutS, verify_every: verifyEvery, body_bytes: Buffer.byteLength(body), models: flags.models === '' ? 'copy of models/echo' : flags.models },
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
      ...(beforeTable === undefined || before === undefined
        ? []
        : [`### after (this checkout) ÷ before (${before.root}, commit ${before.git_commit}${before.git_dirty ? ' + local changes' : ''}, build ${before.sha256.slice(0, 12)})`, '', beforeTable, '']),
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
