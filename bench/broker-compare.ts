/**
 * Spillway on each of its brokers (embedded, Kafka, Redis Streams) in the same run: end-to-end
 * throughput with the `echo` model (closed loop, autocannon, `Prefer: wait=30`), and latency
 * with the `sleep` model at a fraction of its capacity (default 50%; open-loop Poisson, the same
 * schedule for every broker, `Prefer: wait=60`). Every broker is reported against the embedded
 * one. See bench/README.md.
 *
 *   npm run build && npx tsx bench/broker-compare.ts --brokers embedded,kafka,redis --bootstrap auto   (~12 minutes)
 *
 * - Every measurement gets a fresh deployment (fresh data folder; on Kafka and Redis a fresh
 *   --prefix, so fresh topics, groups and keys), one priming request awaited alone (on Kafka it
 *   pays topic creation and group joins), then an unmeasured warm-up at the measured load.
 * - `--topology serve` deploys one `spillway serve`; `split` one `spillway gateway` and one
 *   `spillway worker` process, measured as a pair with CPU per process: what one of each sustains.
 * - Each round measures every broker at every connection count, then every broker at the
 *   latency load; the order rotates from one group to the next, so none always goes first.
 * - CPU of each Spillway process, of the Kafka JVM, of the Redis server and of this process
 *   (the load generator), and what everything else used (noise), per measurement.
 * - The topics and groups (Kafka) and keys (Redis) of every prefix used are deleted; a Kafka or
 *   Redis this bench started is stopped and its folder deleted at the end.
 */
import { execFileSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { num, numList, parseFlags } from './lib/args.js';
import { buildSchedule } from '../src/loadgen/schedule.js';
import { steadyProfile } from '../src/loadgen/profiles.js';
import { callOnSchedule, summarizeShots } from '../src/loadgen/scheduled-calls.js';
import { closedLoop } from './lib/closed-loop.js';
import { brokers as knownBrokers, latencyReport, processCpu, throughputReport, type Broker, type LatencyDetail, type LatencyRun, type Systems, type ThroughputMeasurement } from './lib/broker-compare-report.js';
import { cpuWindow, type CpuUse } from './lib/cpu-window.js';
import { kafkaVersions } from './lib/kafka-broker-info.js';
import { deletePrefixes, topicCount } from './lib/kafka-prefixes.js';
import { startBenchKafka, useKafka, type BenchKafka } from './lib/kafka-server.js';
import { deleteSpillwayKeys, describeRedis, startBenchRedis, useRedis, type BenchRedis } from './lib/redis-server.js';
import { fmt, log, machineInfo, writeResult } from './lib/report.js';
import { rotation } from './lib/rotation.js';
import { modelRepository, snapshotBuild, startDeployment, type SpillwayDeployment, type Topology } from './lib/spillway.js';
import { sampledBodyCheck } from './lib/body-check.js';

const flags = parseFlags('Usage: npx tsx bench/broker-compare.ts [options]   (needs `npm run build`)', {
  brokers: { description: 'comma-separated subset of embedded,kafka,redis (embedded is the reference and always included); unset: every broker this run can reach', default: '' },
  bootstrap: { description: 'Kafka bootstrap servers, comma-separated; "auto": the bench starts its own Kafka with scripts/kafka (own folder, free ports) and deletes it at the end', default: '127.0.0.1:9092' },
  redis: { description: 'redis:// URL of a running Redis for the redis broker (and --kafka-store redis); unset: the bench starts its own with scripts/redis and deletes it at the end', default: '' },
  'kafka-store': { description: 'result store of the Kafka runs: sqlite (in the data folder) or redis (the bench\'s Redis; the Kafka + Redis scale-out path)', default: 'sqlite' },
  topology: { description: 'serve (one `spillway serve`) or split (one `spillway gateway` + one `spillway worker` process, CPU per process)', default: 'serve' },
  rounds: { description: 'interleaved rounds (each measures every broker in every part)', default: '2' },
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
if (flags.topology !== 'serve' && flags.topology !== 'split') throw new Error(`--topology: expected serve or split, got "${flags.topology}"`);
const topology: Topology = flags.topology;
if (flags['kafka-store'] !== 'sqlite' && flags['kafka-store'] !== 'redis') throw new Error(`--kafka-store: expected sqlite or redis, got "${flags['kafka-store']}"`);
const kafkaStore: 'sqlite' | 'redis' = flags['kafka-store'];
if (flags.redis !== '' && !flags.redis.startsWith('redis://')) throw new Error(`--redis: expected a redis:// URL, got "${flags.redis}"`);
const autoKafka = flags.bootstrap.trim() === 'auto';

/** The brokers asked for, in the order given, embedded first; undefined: every one reachable. */
function askedBrokers(): Broker[] | undefined {
  if (flags.brokers.trim() === '') return undefined;
  const list = flags.brokers.split(',').map((b) => b.trim());
  for (const b of list) if (!(knownBrokers as readonly string[]).includes(b)) throw new Error(`--brokers: unknown broker "${b}" (known: ${knownBrokers.join(', ')})`);
  if (new Set(list).size !== list.length) throw new Error(`--brokers: "${flags.brokers}" names a broker twice`);
  const asked = list as Broker[];
  // Every ratio is against embedded, so it is always measured.
  return ['embedded', ...asked.filter((b) => b !== 'embedded')];
}

/**
 * What this build's CLI supports, from its --help: the Redis broker and the Redis store are
 * added on other branches, and until both are in, a run on them must stop with a clear reason
 * instead of a child process failing on an unknown flag.
 */
function redisSupport(main: string): { store: boolean; broker: boolean } {
  const help = execFileSync(process.execPath, [main, '--help'], { encoding: 'utf8' });
  const brokerLine = help.split('\n').find((l) => l.trimStart().startsWith('--broker ')) ?? '';
  return { store: /^\s*--store\b/m.test(help), broker: /redis/i.test(brokerLine) };
}

const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`;
const kafkaPrefixes: string[] = [];
const redisPrefixes: string[] = [];
let prefixCount = 0;
// Fixed width, so no prefix is the start of another (m001 against m0010): cleanup matches by prefix.
const nextPrefix = () => `bench-bc-${runId}-m${String(++prefixCount).padStart(3, '0')}`;

interface Backends {
  readonly kafka?: BenchKafka;
  readonly redis?: BenchRedis;
}

interface Target {
  readonly models: string;
  readonly main: string;
  readonly backends: Backends;
}

interface Running {
  readonly deployment: SpillwayDeployment;
  /** Its key prefix on Redis, if it keeps anything there. */
  readonly redisPrefix?: string;
  /** Whether its system includes the Kafka JVM, the Redis server: for the system's CPU. */
  readonly usesKafka: boolean;
  readonly usesRedis: boolean;
}

/** A fresh deployment on `broker`; on Kafka and Redis with a prefix no earlier one used. */
async function startOn(broker: Broker, target: Target): Promise<Running> {
  const base = { models: target.models, main: target.main, topology };
  if (broker === 'embedded') return { deployment: await startDeployment(base), usesKafka: false, usesRedis: false };
  const prefix = nextPrefix();
  if (broker === 'kafka') {
    const kafka = target.backends.kafka!;
    const store = kafkaStore === 'redis' ? ['--store', target.backends.redis!.url] : [];
    kafkaPrefixes.push(prefix);
    if (kafkaStore === 'redis') redisPrefixes.push(prefix);
    const deployment = await startDeployment({ ...base, args: ['--broker', `kafka://${kafka.bootstrap.join(',')}`, ...store, '--prefix', prefix] });
    return { deployment, usesKafka: true, usesRedis: kafkaStore === 'redis', ...(kafkaStore === 'redis' ? { redisPrefix: prefix } : {}) };
  }
  const url = target.backends.redis!.url;
  redisPrefixes.push(prefix);
  const deployment = await startDeployment({ ...base, args: ['--broker', url, '--store', url, '--prefix', prefix] });
  return { deployment, redisPrefix: prefix, usesKafka: false, usesRedis: true };
}

function startCpu(server: Running, target: Target): () => { cpu: CpuUse; system_cpu: number } {
  const end = cpuWindow({ processes: server.deployment.processes, kafkaPid: target.backends.kafka?.pid ?? Number.NaN, redisPid: target.backends.redis?.pid ?? Number.NaN });
  return () => {
    const cpu = end();
    // The embedded broker's work is inside Spillway's processes; Kafka's and Redis's are not, but are the system's cost.
    const known = (v: number) => (Number.isFinite(v) ? v : 0);
    return { cpu, system_cpu: cpu.server + (server.usesKafka ? known(cpu.kafka) : 0) + (server.usesRedis ? known(cpu.redis) : 0) };
  };
}

/** Stops the deployment, then deletes what it left on Redis and returns how many keys that was. */
async function stopAndClean(server: Running, target: Target): Promise<number | undefined> {
  await server.deployment.stop();
  if (server.redisPrefix === undefined) return undefined;
  return deleteSpillwayKeys(target.backends.redis!.url, server.redisPrefix).catch((error: unknown) => {
    log(`  warning: could not delete the Redis keys of ${server.redisPrefix}: ${String(error)}`);
    return Number.NaN;
  });
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

async function measureThroughput(broker: Broker, connections: number, round: number, order: number, target: Target): Promise<ThroughputMeasurement> {
  const server = await startOn(broker, target);
  let m: ThroughputMeasurement;
  let keysLeft: number | undefined;
  try {
    const url = server.deployment.url;
    const firstMs = await prime(new URL(echoPath, url), echoBody, isEchoRecord);
    if (warmupS > 0) await closedLoad(url, connections, warmupS);
    const { verify, tally } = sampledBodyCheck(verifyEvery, isEchoRecord);
    const endCpu = startCpu(server, target);
    const { result, latency_ms } = await closedLoad(url, connections, durationS, verify);
    const { checked, bad, firstBad } = tally;
    const { cpu, system_cpu } = endCpu();
    const stats = result.statusCodeStats ?? {};
    const ok200 = stats['200']?.count ?? 0;
    const status202 = stats['202']?.count ?? 0;
    const rps = ok200 / result.duration;
    m = {
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
      system_cpu,
      rps_per_system_cpu: rps / system_cpu,
      valid: result.non2xx === 0 && result.errors === 0 && result.timeouts === 0 && status202 === 0 && bad === 0 && checked > 0,
    };
    log(
      `round ${round} c=${connections} ${broker.padEnd(8)} ${fmt(rps, 0).padStart(6)} req/s  p50 ${fmt(m.latency_ms.p50)} ms  p99 ${fmt(m.latency_ms.p99)} ms  first ${fmt(firstMs, 0)} ms  ` +
        `cpu ${processCpu(cpu)} kafka ${fmt(cpu.kafka, 2)} redis ${fmt(cpu.redis, 2)} bench ${fmt(cpu.bench, 2)} other ${fmt(cpu.other, 2)}  checked ${checked}${m.valid ? '' : '  INVALID'}`,
    );
  } finally {
    // After the stop, so the count is what the deployment leaves behind once it is gone.
    keysLeft = await stopAndClean(server, target);
  }
  return keysLeft === undefined ? m : { ...m, redis_keys_left: keysLeft };
}

// ---------------------------------------------------------------- latency (sleep)

const sleepInput = (i: number) => ({ i, text: 'sleep benchmark' });
const sleepPath = '/v1/models/sleep/predictions';

async function measureLatency(
  broker: Broker,
  round: number,
  order: number,
  schedules: { warmup: readonly number[]; measured: readonly number[] },
  target: Target,
  serviceMs: number,
): Promise<LatencyRun> {
  const running = await startOn(broker, target);
  const server = running.deployment;
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
    const endCpu = startCpu(running, target);
    const shots = await callOnSchedule(schedules.measured, call, { drain_ms: (waitS + 10) * 1000, failedDetail });
    const { cpu, system_cpu } = endCpu();
    const s = summarizeShots(shots);
    log(
      `round ${round} latency ${broker.padEnd(8)} mean ${fmt(s.mean)} ms  p50 ${fmt(s.p50)}  p99 ${fmt(s.p99)}  max ${fmt(s.max)}  failures ${s.failures}  first ${fmt(firstMs, 0)} ms  ` +
        `cpu ${processCpu(cpu)} kafka ${fmt(cpu.kafka, 2)} redis ${fmt(cpu.redis, 2)} bench ${fmt(cpu.bench, 2)} other ${fmt(cpu.other, 2)}`,
    );
    return { round, broker, order, first_request_ms: firstMs, shots, cpu, system_cpu };
  } finally {
    agent.destroy();
    const left = await stopAndClean(running, target);
    if (left !== undefined && left > 0) log(`  deleted ${left} Redis keys of ${running.redisPrefix}`);
  }
}

// ---------------------------------------------------------------- main

interface Skipped {
  readonly broker: Broker;
  readonly reason: string;
}

/**
 * The Kafka and Redis the brokers need, started or found. A broker asked for by --brokers that
 * cannot run stops the bench with the reason; without --brokers it is skipped with the reason.
 */
async function provision(main: string): Promise<{ systems: Systems; backends: Backends; skipped: Skipped[] }> {
  const asked = askedBrokers();
  const wanted: Broker[] = asked ?? ['embedded', 'kafka', 'redis'];
  const skipped: Skipped[] = [];
  const unavailable = (broker: Broker, reason: string) => {
    if (asked !== undefined) throw new Error(`--brokers ${broker}: ${reason}`);
    skipped.push({ broker, reason });
  };
  const support = redisSupport(main);
  const missing = [...(support.broker ? [] : ['the Redis broker (--broker redis://…)']), ...(support.store ? [] : ['the Redis store (--store)'])];
  if (wanted.includes('redis') && missing.length > 0) {
    const what = missing.length === 2 ? `neither ${missing[0]} nor ${missing[1]}` : `no ${missing[0]}`;
    unavailable('redis', `this build of Spillway has ${what} (\`node dist/cli/main.js --help\` does not list it); merge the redis-broker and redis-store work, then \`npm run build\``);
  }
  if (wanted.includes('kafka') && kafkaStore === 'redis' && !support.store) {
    throw new Error('--kafka-store redis: this build of Spillway has no Redis store (`node dist/cli/main.js --help` lacks --store); merge the redis-store work and run `npm run build`.');
  }
  const chosen = () => wanted.filter((b) => !skipped.some((s) => s.broker === b));
  let kafka: BenchKafka | undefined;
  let redis: BenchRedis | undefined;
  try {
    if (chosen().includes('kafka')) {
      if (autoKafka) {
        log('starting a Kafka for this run (scripts/kafka up, own folder, KAFKA_PORT=auto)');
        try {
          kafka = startBenchKafka();
        } catch (error) {
          unavailable('kafka', `scripts/kafka up failed: ${String(error)}`);
        }
      } else {
        const bootstrap = flags.bootstrap.split(',').map((s) => s.trim());
        if (Number.isFinite(await topicCount(bootstrap))) kafka = useKafka(bootstrap);
        else unavailable('kafka', `no Kafka answers at ${bootstrap.join(',')} (start one with scripts/kafka up, or pass --bootstrap auto to let the bench start its own)`);
      }
    }
    const needRedis = chosen().includes('redis') || (chosen().includes('kafka') && kafkaStore === 'redis');
    if (needRedis) {
      try {
        redis = flags.redis !== '' ? await useRedis(flags.redis) : await startBenchRedis();
      } catch (error) {
        const reason = flags.redis !== '' ? `no Redis answers at ${flags.redis}: ${String(error)}` : `could not start a Redis with scripts/redis: ${String(error)}`;
        if (chosen().includes('kafka') && kafkaStore === 'redis') throw new Error(`--kafka-store redis: ${reason}`);
        unavailable('redis', reason);
      }
    }
  } catch (error) {
    kafka?.stop();
    await redis?.stop();
    throw error;
  }
  const label: Record<Broker, string> = { embedded: 'embedded', kafka: kafkaStore === 'redis' ? 'Kafka + Redis store' : 'Kafka', redis: 'Redis' };
  return { systems: { brokers: chosen(), label }, backends: { ...(kafka === undefined ? {} : { kafka }), ...(redis === undefined ? {} : { redis }) }, skipped };
}

async function main(): Promise<void> {
  const build = snapshotBuild();
  let provisioned: Awaited<ReturnType<typeof provision>>;
  try {
    provisioned = await provision(build.main);
  } catch (error) {
    build.remove();
    throw error;
  }
  const { systems, backends, skipped } = provisioned;
  const { kafka, redis } = backends;
  // A Kafka or Redis this bench started runs detached from it: an interrupted run must not leave
  // one behind on a shared machine. (Spillway's children get the terminal's signal themselves.)
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping the servers this run started`);
    build.remove();
    kafka?.stop();
    void (redis?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  for (const s of skipped) log(`skipping ${s.broker}: ${s.reason}`);
  if (kafka !== undefined && !Number.isFinite(kafka.pid)) log(`warning: no Kafka broker process found for ${kafka.bootstrap[0]}; its CPU will show as NaN`);
  if (redis !== undefined && (redis.facts.appendonly !== 'yes' || redis.facts.appendfsync !== 'always')) {
    log('warning: this Redis is not on appendonly yes / appendfsync always; its figures are not of the durable setting the embedded broker gives');
  }
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const topicsAtStart = kafka === undefined ? Number.NaN : await topicCount(kafka.bootstrap);
  // Read now: the broker's class path is gone once a Kafka this bench started is stopped.
  const versions = kafka === undefined ? undefined : kafkaVersions(kafka.pid);
  const echoRepo = modelRepository([{ name: 'echo' }]);
  const sleepRepo = modelRepository([{ name: 'sleep' }]);
  const sleepConfig = sleepRepo.configs['sleep']!;
  const parameters = (sleepConfig['parameters'] ?? {}) as Record<string, unknown>;
  const concurrency = Number(sleepConfig['concurrency']);
  const serviceMs = Number(parameters['per_batch_ms'] ?? 50) + Number(parameters['per_item_ms'] ?? 0);
  const capacity = (concurrency / serviceMs) * 1000;
  const rate = loadFraction * capacity;
  log(
    `broker compare: ${systems.brokers.map((b) => systems.label[b]).join(', ')}; topology ${topology}; ${rounds} rounds; throughput c=${connectionCounts.join(',')} ${durationS} s after ${warmupS} s warm-up; ` +
      `latency ${fmt(rate)} req/s (${loadFraction * 100}% of ${fmt(capacity)}) for ${latencyDurationS} s after ${latencyWarmupS} s`,
  );
  if (kafka !== undefined) log(`Kafka ${kafka.bootstrap.join(',')} (pid ${kafka.pid}, ${topicsAtStart} topics, started by ${kafka.started_by}); store of the Kafka runs: ${kafkaStore}`);
  if (redis !== undefined) log(describeRedis(redis));

  const throughput: ThroughputMeasurement[] = [];
  const latency: LatencyRun[] = [];
  let kafkaCleanup: Awaited<ReturnType<typeof deletePrefixes>> | undefined;
  let redisKeysSwept = 0;
  try {
    for (let round = 1; round <= rounds; round++) {
      if (parts.has('throughput')) {
        for (const [ci, connections] of connectionCounts.entries()) {
          // Rotate who goes first, round by round, so a drift in machine load favours no broker.
          const order = rotation(systems.brokers, round - 1 + ci);
          for (const [i, broker] of order.entries()) {
            throughput.push(await measureThroughput(broker, connections, round, i + 1, { models: echoRepo.dir, main: build.main, backends }));
          }
        }
      }
      if (parts.has('latency')) {
        const roundSeed = seed + round - 1;
        const schedules = {
          measured: buildSchedule(steadyProfile({ rate, duration_s: latencyDurationS }), { process: 'poisson', seed: roundSeed }),
          warmup: buildSchedule(steadyProfile({ rate, duration_s: latencyWarmupS }), { process: 'poisson', seed: roundSeed + 1_000_000 }),
        };
        const order = rotation(systems.brokers, round - 1 + connectionCounts.length);
        log(`round ${round} latency: seed ${roundSeed}, ${schedules.measured.length} arrivals, order ${order.join(', ')}`);
        for (const [i, broker] of order.entries()) {
          latency.push(await measureLatency(broker, round, i + 1, schedules, { models: sleepRepo.dir, main: build.main, backends }, serviceMs));
        }
      }
    }
  } finally {
    echoRepo.remove();
    sleepRepo.remove();
    build.remove();
    if (kafka !== undefined) {
      kafkaCleanup = await deletePrefixes(kafka.bootstrap, kafkaPrefixes);
      log(`deleted ${kafkaCleanup.topics} topics and ${kafkaCleanup.groups} groups of ${kafkaPrefixes.length} prefixes${kafkaCleanup.errors.length > 0 ? `; errors: ${kafkaCleanup.errors.join('; ')}` : ''}`);
    }
    if (redis !== undefined) {
      // Each deployment's keys went after it stopped; this catches what a failed start left.
      for (const prefix of redisPrefixes) redisKeysSwept += await deleteSpillwayKeys(redis.url, prefix).catch(() => 0);
      log(`Redis: ${redisPrefixes.length} prefixes cleaned (${redisKeysSwept} keys left over at the end)`);
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    kafka?.stop();
    await redis?.stop();
  }

  const t = parts.has('throughput') ? throughputReport(throughput, systems, connectionCounts, rounds, quietCpu) : undefined;
  const l = parts.has('latency') ? latencyReport(latency, systems, rounds, seed) : undefined;
  const valid = (t?.valid ?? true) && (l?.valid ?? true);
  const file = writeResult('broker-compare', {
    benchmark: 'broker-compare',
    command: `npx tsx bench/broker-compare.ts ${process.argv.slice(2).join(' ')}`.trim(),
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    build_sha256: build.sha256,
    brokers: systems.brokers,
    labels: systems.label,
    skipped,
    topology,
    kafka_store: kafkaStore,
    kafka: kafka === undefined ? null : { bootstrap: kafka.bootstrap, started_by: kafka.started_by, pid: kafka.pid, versions, topics_at_start: topicsAtStart, prefixes: kafkaPrefixes, cleanup: kafkaCleanup },
    redis: redis === undefined ? null : { url: redis.url, started_by: redis.started_by, pid: redis.pid, ...redis.facts, prefixes: redisPrefixes, keys_left_at_end: redisKeysSwept },
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

  const topologyText = topology === 'serve' ? 'one `spillway serve` process' : 'one `spillway gateway` + one `spillway worker` process';
  process.stdout.write(
    [
      `## Spillway by broker: ${systems.brokers.map((b) => systems.label[b]).join(', ')}; ${topologyText} (${machine.cpus} CPUs, ${machine.cpu_model}, Node ${machine.node}, commit ${machine.git_commit}${machine.git_dirty ? ' + local changes' : ''}, build ${build.sha256.slice(0, 12)})`,
      '',
      ...(kafka === undefined ? [] : [`Kafka: ${kafka.bootstrap.join(',')} (Kafka ${versions?.kafka_broker ?? 'unknown'}, started by ${kafka.started_by}); store of the Kafka runs: ${kafkaStore}.`]),
      ...(redis === undefined ? [] : [`${describeRedis(redis)}.`]),
      ...skipped.map((s) => `Skipped ${s.broker}: ${s.reason}`),
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

try {
  await main();
} catch (error) {
  // A bad flag or a broker that cannot run is the user's to fix: the message, not a stack trace.
  process.stderr.write(`broker-compare: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
}
