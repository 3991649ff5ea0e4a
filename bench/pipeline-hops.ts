/**
 * What one more stream hop costs: the latency of `echo` alone against pipelines of two and three
 * echo steps (each step its own model, topic and consumer group), on each broker, at a light
 * open-loop load (Poisson arrivals, the same schedule for every system, `Prefer: wait=30`).
 * Latency is the client's: from the scheduled send to the answer. See bench/README.md.
 *
 *   npm run build && npx tsx bench/pipeline-hops.ts --brokers embedded,kafka,redis   (~5 minutes)
 *
 * - Each round starts one fresh `spillway serve` per broker (fresh data folder; on Kafka and Redis
 *   a fresh --prefix), warms every system, then measures the three in a rotating order.
 * - Kafka and Redis are started by the bench (scripts/kafka, scripts/redis: own folders, free
 *   ports) and deleted at the end.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { median as medianOf } from '../src/loadgen/stats.js';
import { num, parseFlags } from './lib/args.js';
import { buildSchedule } from '../src/loadgen/schedule.js';
import { steadyProfile } from '../src/loadgen/profiles.js';
import { callOnSchedule, summarizeShots } from '../src/loadgen/scheduled-calls.js';
import { startBenchKafka, type BenchKafka } from './lib/kafka-server.js';
import { deletePrefixes } from './lib/kafka-prefixes.js';
import { deleteSpillwayKeys, startBenchRedis, type BenchRedis } from './lib/redis-server.js';
import { fmt, log, machineInfo, markdownTable, writeResult } from './lib/report.js';
import { rotation } from './lib/rotation.js';
import { modelRepository, repoRoot, snapshotBuild, startDeployment } from './lib/spillway.js';

const flags = parseFlags('Usage: npx tsx bench/pipeline-hops.ts [options]   (needs `npm run build`)', {
  brokers: { description: 'comma-separated subset of embedded,kafka,redis', default: 'embedded,kafka,redis' },
  rounds: { description: 'rounds; each measures every system on every broker', default: '2' },
  rate: { description: 'arrivals per second (light: the hops, not queueing, should show)', default: '50' },
  duration: { description: 'seconds of arrivals per system per round', default: '10' },
  warmup: { description: 'seconds of unmeasured arrivals per system on each fresh deployment, all systems before any is measured', default: '3' },
  seed: { description: 'seed of the arrival schedule; round r uses seed + r - 1', default: '1' },
});
const brokers = flags.brokers.split(',').map((b) => b.trim()) as ('embedded' | 'kafka' | 'redis')[];
for (const b of brokers) if (!['embedded', 'kafka', 'redis'].includes(b)) throw new Error(`--brokers: unknown broker "${b}"`);
const rounds = num('rounds', flags.rounds, { min: 1, integer: true });
const rate = num('rate', flags.rate, { min: 1 });
const durationS = num('duration', flags.duration, { min: 1 });
const warmupS = num('warmup', flags.warmup, { min: 0 });
const seed = num('seed', flags.seed, { integer: true });

/** echo alone, then pipelines one and two hops longer: echo → echo-b (→ echo-c). */
const systems = { echo: 0, 'echo-hop': 1, 'echo-hop2': 2 } as const;
type System = keyof typeof systems;

function repository() {
  const repo = modelRepository([{ name: 'echo' }]);
  for (const copy of ['echo-b', 'echo-c']) {
    mkdirSync(join(repo.dir, copy));
    for (const f of ['model.yaml', 'handler.js']) writeFileSync(join(repo.dir, copy, f), readModelFile(f));
  }
  const pipeline = (name: string, steps: string[]) => {
    mkdirSync(join(repo.dir, name));
    writeFileSync(join(repo.dir, name, 'pipeline.yaml'), `steps:\n${steps.map((s) => `  - model: ${s}\n`).join('')}`);
  };
  pipeline('echo-hop', ['echo', 'echo-b']);
  pipeline('echo-hop2', ['echo', 'echo-b', 'echo-c']);
  return repo;
}

/** A file of the shipped echo model, for its copies under other names. */
function readModelFile(file: string): string {
  return readFileSync(join(repoRoot, 'models', 'echo', file), 'utf8');
}

function post(agent: Agent, url: URL, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), prefer: 'wait=30' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Measured {
  readonly broker: string;
  readonly system: System;
  readonly round: number;
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
  readonly failures: number;
  readonly requests: number;
}

const runId = Date.now().toString(36);
let prefixCount = 0;
const kafkaPrefixes: string[] = [];
const redisPrefixes: string[] = [];

async function main(): Promise<void> {
  const build = snapshotBuild();
  const repo = repository();
  let kafka: BenchKafka | undefined;
  let redis: BenchRedis | undefined;
  const results: Measured[] = [];
  try {
    if (brokers.includes('kafka')) kafka = startBenchKafka();
    if (brokers.includes('redis')) redis = await startBenchRedis();
    for (let round = 1; round <= rounds; round++) {
      const measured = buildSchedule(steadyProfile({ rate, duration_s: durationS }), { process: 'poisson', seed: seed + round - 1 });
      const warmup = buildSchedule(steadyProfile({ rate, duration_s: warmupS }), { process: 'poisson', seed: seed + round + 999_999 });
      for (const broker of rotation(brokers, round - 1)) {
        const prefix = `bench-hops-${runId}-${++prefixCount}`;
        const args =
          broker === 'kafka' ? ['--broker', `kafka://${kafka!.bootstrap.join(',')}`, '--prefix', prefix] : broker === 'redis' ? ['--broker', redis!.url, '--store', redis!.url, '--prefix', prefix] : [];
        if (broker === 'kafka') kafkaPrefixes.push(prefix);
        if (broker === 'redis') redisPrefixes.push(prefix);
        const deployment = await startDeployment({ models: repo.dir, main: build.main, topology: 'serve', args });
        try {
          const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
          const caller = (system: System) => {
            const url = new URL(`/v1/models/${system}/predictions`, deployment.url);
            return async (i: number) => {
              const { status, text } = await post(agent, url, JSON.stringify({ input: { i } }));
              const ok = status === 200 && (JSON.parse(text) as { status?: string; output?: { i?: number } }).output?.i === i;
              return { ok, detail: ok ? '' : text.slice(0, 200) };
            };
          };
          // Every system warmed before any is measured: the first use of a model (its topic and
          // group on Kafka, its code in the JIT) must not land in whichever system comes first.
          for (const system of Object.keys(systems) as System[]) {
            const call = caller(system);
            await call(-1);
            await callOnSchedule(warmup, (i) => call(-2 - i), { failedDetail: String, drain_ms: 40_000 });
          }
          for (const system of rotation(Object.keys(systems) as System[], round - 1)) {
            const call = caller(system);
            const s = summarizeShots(await callOnSchedule(measured, call, { failedDetail: String, drain_ms: 40_000 }));
            results.push({ broker, system, round, p50: s.p50 ?? Number.NaN, p99: s.p99 ?? Number.NaN, mean: s.mean ?? Number.NaN, failures: s.failures, requests: measured.length });
            log(`round ${round} ${broker.padEnd(8)} ${system.padEnd(9)} p50 ${fmt(s.p50)} ms  p99 ${fmt(s.p99)} ms  failures ${s.failures}`);
          }
          agent.destroy();
        } finally {
          await deployment.stop();
        }
      }
    }
  } finally {
    if (kafka !== undefined) await deletePrefixes(kafka.bootstrap, kafkaPrefixes).catch(() => undefined);
    if (redis !== undefined) for (const p of redisPrefixes) await deleteSpillwayKeys(redis.url, p).catch(() => undefined);
    kafka?.stop();
    await redis?.stop();
    repo.remove();
    build.remove();
  }
  const median = (xs: number[]) => medianOf(xs) ?? Number.NaN;
  const rows = brokers.flatMap((broker) => {
    const of = (system: System, key: 'p50' | 'p99') => median(results.filter((r) => r.broker === broker && r.system === system).map((r) => r[key]));
    return (Object.keys(systems) as System[]).map((system) => [
      broker,
      system,
      String(systems[system] + 1),
      fmt(of(system, 'p50')),
      fmt(of(system, 'p99')),
      system === 'echo' ? '–' : fmt((of(system, 'p50') - of('echo', 'p50')) / systems[system]),
      system === 'echo' ? '–' : fmt((of(system, 'p99') - of('echo', 'p99')) / systems[system]),
      String(results.filter((r) => r.broker === broker && r.system === system).reduce((n, r) => n + r.failures, 0)),
    ]);
  });
  const m = machineInfo();
  const table = markdownTable(['broker', 'system', 'steps', 'median p50 ms', 'median p99 ms', 'p50 per extra hop ms', 'p99 per extra hop ms', 'failures'], rows);
  const file = writeResult('pipeline-hops', { machine: m, settings: { brokers, rounds, rate, duration_s: durationS, warmup_s: warmupS, seed }, results });
  process.stdout.write(`## pipeline hops (${m.cpus} CPUs, Node ${m.node}, commit ${build.git_commit}${build.git_dirty ? ' + local changes' : ''})\n\n${rate} req/s Poisson, ${durationS} s per system, ${rounds} rounds (median of rounds)\n\n${table}\n\nResult file: ${file}\n`);
}

await main();
