/**
 * Produce and consume throughput of the two Node Kafka clients Spillway could use,
 * @platformatic/kafka and kafkajs, against the real Kafka of `scripts/kafka up`.
 *
 *   scripts/kafka up && npx tsx bench/kafka-clients.ts [--rounds 5] [--duration 4] ...   (~4 minutes)
 *
 * - Both clients run in this process, one at a time, each on fresh topics (and a fresh group)
 *   made with the admin client and deleted afterwards; garbage is collected before each window.
 * - produce-single: --concurrency senders, each awaiting a send of one message at a time (the
 *   gateway: many small concurrent publishes). produce-coalesced: the same senders through
 *   Spillway's coalescing (one request in flight, the sends made meanwhile go in the next one,
 *   at most 1000 messages). produce-batch: --batch-concurrency senders of
 *   --batch-size messages (the ceiling). Idempotent producer, acks=all, string key, ~300-byte
 *   JSON value, one header. --warmup seconds unmeasured, then --duration seconds measured.
 * - consume: a group reads a topic pre-filled with --messages messages (the same producer and
 *   batches for both) from the beginning, committing each batch's offsets before the next;
 *   the rate runs from joining the group to the last commit.
 * - Rounds alternate which client goes first; the figure is the ratio of a round's pair.
 * - Checks: no failed send; the topic's end offsets add up to the messages acknowledged (none
 *   lost, none doubled); the consumer read each key exactly once and committed the end offsets.
 * - Also reported: this process's CPU per second and messages per CPU-second (less sensitive to
 *   other programs than the plain rate), the broker's CPU, and other programs' CPU (noise).
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { num, parseFlags } from './lib/args.js';
import { machineCpuSeconds, processCpuSeconds } from './lib/cpu.js';
import { brokerPid, kafkaVersions } from './lib/kafka-broker-info.js';
import { clients, coalescing, consumeAll, describeError, KafkaAdmin, openProducer, type BenchMessage, type BenchProducer, type Client } from './lib/kafka-client-adapters.js';
import { log, machineInfo, markdownTable, writeResult } from './lib/report.js';
import { fmt, median, summarize, type Summary } from './lib/stats.js';

const flags = parseFlags('Usage: npx tsx bench/kafka-clients.ts [options]   (needs `scripts/kafka up`)', {
  bootstrap: { description: 'Kafka bootstrap servers, comma-separated', default: '127.0.0.1:9092' },
  rounds: { description: 'interleaved rounds (each measures both clients in every scenario)', default: '5' },
  duration: { description: 'seconds of measured sending per produce measurement', default: '4' },
  warmup: { description: 'seconds of unmeasured sending first, on the same fresh producer and topic', default: '1' },
  concurrency: { description: 'concurrent senders of one message each (produce-single)', default: '64' },
  'batch-size': { description: 'messages per send (produce-batch)', default: '100' },
  'batch-concurrency': { description: 'concurrent senders of one batch each (produce-batch)', default: '4' },
  messages: { description: 'messages in the pre-filled topic each consumer reads (consume)', default: '200000' },
  partitions: { description: 'partitions of every topic', default: '4' },
  'value-bytes': { description: 'approximate size of each JSON value', default: '300' },
  'max-wait': { description: 'ms the broker may hold an empty fetch open (both consumers)', default: '500' },
  'consume-timeout': { description: 'seconds before an unfinished consumer counts as failed', default: '120' },
  'quiet-cpu': { description: 'a pair is "quiet" if other programs used less CPU than this (CPU-s/s) in both halves', default: '0.25' },
  scenarios: { description: 'comma-separated subset of produce-single,produce-coalesced,produce-batch,consume', default: 'produce-single,produce-coalesced,produce-batch,consume' },
  'platformatic-sends': {
    description: 'serialized: one send at a time reaches the @platformatic/kafka producer (1.x loses overlapping idempotent sends); concurrent: as called',
    default: 'serialized',
  },
});
const bootstrap = flags.bootstrap.split(',').map((s) => s.trim());
const rounds = num('rounds', flags.rounds, { min: 1, integer: true });
const durationS = num('duration', flags.duration, { min: 0.5 });
const warmupS = num('warmup', flags.warmup, { min: 0 });
const concurrency = num('concurrency', flags.concurrency, { min: 1, integer: true });
const batchSize = num('batch-size', flags['batch-size'], { min: 1, integer: true });
const batchConcurrency = num('batch-concurrency', flags['batch-concurrency'], { min: 1, integer: true });
const consumeMessages = num('messages', flags.messages, { min: 1, integer: true });
const partitions = num('partitions', flags.partitions, { min: 1, integer: true });
const valueBytes = num('value-bytes', flags['value-bytes'], { min: 50, integer: true });
const maxWaitMs = num('max-wait', flags['max-wait'], { min: 0, integer: true });
const consumeTimeoutS = num('consume-timeout', flags['consume-timeout'], { min: 1 });
const quietCpu = num('quiet-cpu', flags['quiet-cpu'], { min: 0 });
if (flags['platformatic-sends'] !== 'serialized' && flags['platformatic-sends'] !== 'concurrent') {
  throw new Error(`--platformatic-sends: expected serialized or concurrent, got "${flags['platformatic-sends']}"`);
}
const serializePlatformatic = flags['platformatic-sends'] === 'serialized';

const allScenarios = ['produce-single', 'produce-coalesced', 'produce-batch', 'consume'] as const;
type Scenario = (typeof allScenarios)[number];
const scenarios = flags.scenarios.split(',').map((name) => {
  const scenario = allScenarios.find((s) => s === name.trim());
  if (scenario === undefined) throw new Error(`--scenarios: unknown scenario "${name}" (known: ${allScenarios.join(', ')})`);
  return scenario;
});
const runId = Date.now().toString(36);

/** A JSON value of about --value-bytes, like a prediction request, and one id header. */
const input = JSON.stringify({ text: 'The quick brown fox jumps over the lazy dog', values: [0.125, 0.25, 0.5, 1, 2, 4, 8, 16], pad: '' });
const valueOf = (key: string, pad: string) => `{"id":"${key}","model":"echo","created_at":${Date.now()},"input":${input.replace('"pad":""', `"pad":"${pad}"`)}}`;
const padding = 'x'.repeat(Math.max(0, valueBytes - valueOf(`${runId}-00-0000000`, '').length));
const message = (key: string): BenchMessage => ({ key, value: valueOf(key, padding), headers: { 'spillway-id': key } });

// Collect garbage between measurements, so that one client's garbage is not charged to the next.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Measurement {
  readonly round: number;
  readonly scenario: Scenario;
  readonly client: Client;
  readonly order: number;
  readonly topic: string;
  /** Messages acknowledged (produce) or distinct messages read and committed (consume) in the window. */
  readonly messages: number;
  /** Produce: the measured sending window. Consume: from joining the group to the last commit. */
  readonly seconds: number;
  readonly msgs_per_s: number;
  /** Produce: time of each awaited send (one message, or one batch). */
  readonly send_latency_ms?: Summary;
  /**
   * CPU-seconds used by this (bench) process in the window, and per second of it (consume: from
   * creating the consumer, so joining the group counts too).
   */
  readonly cpu_s: number;
  readonly client_cpu: number;
  readonly msgs_per_cpu_s: number;
  readonly broker_cpu: number;
  /** CPU-seconds per second used by everything else on the machine (noise), and steal. */
  readonly other_cpu: number;
  readonly steal: number;
  readonly checks: Record<string, number | string | boolean>;
  readonly problems: string[];
  readonly valid: boolean;
}

/** Clocks at one moment: wall time (ms), this process's CPU, the broker's, the machine's. */
interface Snapshot {
  readonly t: number;
  readonly own: NodeJS.CpuUsage;
  readonly broker: number;
  readonly machine: ReturnType<typeof machineCpuSeconds>;
}

const brokerProcess = brokerPid(bootstrap[0] ?? '127.0.0.1:9092');

function snapshot(): Snapshot {
  return { t: performance.now(), own: process.cpuUsage(), broker: processCpuSeconds(brokerProcess), machine: machineCpuSeconds() };
}

/** The start of a measured window, after collecting the garbage the previous one left. */
function openWindow(): Snapshot {
  gc();
  return snapshot();
}

/** `seconds` is the window of the rate; CPU figures are per second of the whole window from `w` to `end`. */
function figuresOf(w: Snapshot, end: Snapshot, seconds: number, messages: number) {
  const wall = (end.t - w.t) / 1000;
  const cpu = (end.own.user - w.own.user + end.own.system - w.own.system) / 1e6;
  const broker = end.broker - w.broker;
  const machine = end.machine;
  return {
    messages,
    seconds,
    msgs_per_s: messages / seconds,
    cpu_s: cpu,
    client_cpu: cpu / wall,
    msgs_per_cpu_s: messages / cpu,
    broker_cpu: broker / wall,
    other_cpu: Math.max(0, (machine.busy - w.machine.busy - cpu - broker) / wall),
    steal: (machine.steal - w.machine.steal) / wall,
  };
}

interface Sink {
  acked: number;
  failed: number;
  firstError?: string;
  readonly latencies: number[];
}

/** `senders` loops, each awaiting one send of `perSend` messages at a time, until `until`. */
async function sendUntil(producer: BenchProducer, topic: string, senders: number, perSend: number, until: number, tag: string): Promise<Sink> {
  const sink: Sink = { acked: 0, failed: 0, latencies: [] };
  const sender = async (s: number) => {
    for (let seq = 0; performance.now() < until; seq++) {
      const batch = Array.from({ length: perSend }, (_, i) => message(`${tag}-${s}-${seq}-${i}`));
      const t = performance.now();
      try {
        await producer.send(topic, batch);
        sink.latencies.push(performance.now() - t);
        sink.acked += perSend;
      } catch (error) {
        sink.failed += perSend;
        sink.firstError ??= describeError(error);
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: senders }, (_, s) => sender(s)));
  return sink;
}

async function measureProduce(admin: KafkaAdmin, client: Client, scenario: Exclude<Scenario, 'consume'>, round: number, order: number): Promise<Measurement> {
  const topic = `spillway-bench-kc-${runId}-r${round}-${scenario}-${client}`;
  const [senders, perSend] = scenario === 'produce-batch' ? [batchConcurrency, batchSize] : [concurrency, 1];
  await admin.createTopic(topic, partitions);
  const plain = await openProducer(client, bootstrap, `bench-${client}`, { serialize: serializePlatformatic });
  const producer = scenario === 'produce-coalesced' ? coalescing(plain) : plain;
  let warm: Sink;
  let sink: Sink;
  let figures: ReturnType<typeof figuresOf>;
  try {
    warm = await sendUntil(producer, topic, senders, perSend, performance.now() + warmupS * 1000, 'w');
    const w = openWindow();
    sink = await sendUntil(producer, topic, senders, perSend, w.t + durationS * 1000, 'm');
    const end = snapshot();
    figures = figuresOf(w, end, (end.t - w.t) / 1000, sink.acked);
  } finally {
    await producer.close();
  }
  const written = (await admin.endOffsets(topic, partitions)).reduce((a, b) => a + b, 0);
  await admin.deleteTopic(topic).catch((e: unknown) => log(`warning: could not delete ${topic}: ${String(e)}`));
  const problems: string[] = [];
  if (warm.failed + sink.failed > 0) problems.push(`${warm.failed + sink.failed} messages not acknowledged: ${warm.firstError ?? sink.firstError}`);
  if (written !== warm.acked + sink.acked) problems.push(`topic holds ${written} messages, ${warm.acked + sink.acked} were acknowledged`);
  if (sink.acked === 0) problems.push('nothing acknowledged');
  return {
    round,
    scenario,
    client,
    order,
    topic,
    ...figures,
    send_latency_ms: summarize(sink.latencies),
    checks: { warmup_acked: warm.acked, acked: sink.acked, failed: warm.failed + sink.failed, written, senders, messages_per_send: perSend },
    problems,
    valid: problems.length === 0,
  };
}

/** Fills a fresh topic for a consumer to read, the same way for both clients: one send at a time. */
async function prefill(topic: string): Promise<number> {
  const producer = await openProducer('platformatic', bootstrap, 'bench-prefill');
  let acked = 0;
  try {
    for (let from = 0; from < consumeMessages; from += batchSize) {
      const batch = Array.from({ length: Math.min(batchSize, consumeMessages - from) }, (_, i) => message(`c-${from + i}`));
      await producer.send(topic, batch);
      acked += batch.length;
    }
  } finally {
    await producer.close();
  }
  return acked;
}

async function measureConsume(admin: KafkaAdmin, client: Client, round: number, order: number): Promise<Measurement> {
  const topic = `spillway-bench-kc-${runId}-r${round}-consume-${client}`;
  const groupId = `${topic}-group`;
  await admin.createTopic(topic, partitions);
  const filled = await prefill(topic);
  const written = (await admin.endOffsets(topic, partitions)).reduce((a, b) => a + b, 0);
  const w = openWindow();
  let end: Snapshot | undefined;
  const outcome = await consumeAll(client, {
    bootstrap,
    topic,
    groupId,
    expected: consumeMessages,
    timeoutMs: consumeTimeoutS * 1000,
    maxWaitMs,
    onDone: () => {
      end = snapshot();
    },
  });
  const figures = figuresOf(w, end ?? snapshot(), (outcome.doneAt - outcome.joinedAt) / 1000, outcome.uniqueKeys);
  const ends = await admin.endOffsets(topic, partitions);
  const committed = await admin.committedOffsets(groupId, topic, partitions);
  await admin.deleteGroup(groupId).catch((e: unknown) => log(`warning: could not delete group ${groupId}: ${String(e)}`));
  await admin.deleteTopic(topic).catch((e: unknown) => log(`warning: could not delete ${topic}: ${String(e)}`));
  const problems: string[] = [];
  if (outcome.error !== undefined) problems.push(outcome.error);
  if (filled !== consumeMessages || written !== consumeMessages) problems.push(`pre-fill wrote ${written} of ${consumeMessages}`);
  if (outcome.uniqueKeys !== consumeMessages) problems.push(`read ${outcome.uniqueKeys} distinct keys of ${consumeMessages}`);
  if (outcome.read !== outcome.uniqueKeys) problems.push(`${outcome.read - outcome.uniqueKeys} duplicates`);
  if (committed.some((c, i) => c !== ends[i])) problems.push(`committed offsets ${committed.join(',')} are not the end offsets ${ends.join(',')}`);
  return {
    round,
    scenario: 'consume',
    client,
    order,
    topic,
    ...figures,
    checks: {
      written,
      read: outcome.read,
      unique_keys: outcome.uniqueKeys,
      batches: outcome.batches,
      commits: outcome.commits,
      committed_at_end: committed.every((c, i) => c === ends[i]),
      join_ms: Math.round(outcome.joinedAt - outcome.startedAt),
      first_message_ms: Math.round(outcome.firstAt - outcome.startedAt),
    },
    problems,
    valid: problems.length === 0,
  };
}

/** A measurement that threw: no figures, and the error as its problem. */
function failed(round: number, scenario: Scenario, client: Client, order: number, error: unknown): Measurement {
  const nan = Number.NaN;
  return {
    round,
    scenario,
    client,
    order,
    topic: '',
    messages: 0,
    seconds: nan,
    msgs_per_s: nan,
    cpu_s: nan,
    client_cpu: nan,
    msgs_per_cpu_s: nan,
    broker_cpu: nan,
    other_cpu: nan,
    steal: nan,
    checks: {},
    problems: [`failed: ${describeError(error)}`],
    valid: false,
  };
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const used = kafkaVersions(brokerProcess);
  const admin = new KafkaAdmin(bootstrap);
  log(
    `kafka clients: ${rounds} rounds x (${scenarios.join(', ')}) x (${clients.join(', ')}); produce ${warmupS}+${durationS} s, ` +
      `consume ${consumeMessages} messages; broker pid ${brokerProcess}; ${JSON.stringify(used)}`,
  );
  const measurements: Measurement[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const [si, scenario] of scenarios.entries()) {
        // Alternate who goes first, so a drift in machine load does not favour one client.
        const order: Client[] = (round + si) % 2 === 1 ? ['platformatic', 'kafkajs'] : ['kafkajs', 'platformatic'];
        for (const [i, client] of order.entries()) {
          const measure = scenario === 'consume' ? measureConsume(admin, client, round, i + 1) : measureProduce(admin, client, scenario, round, i + 1);
          const m = await measure.catch((error: unknown) => failed(round, scenario, client, i + 1, error));
          measurements.push(m);
          const latency = m.send_latency_ms === undefined ? `join ${String(m.checks['join_ms'])} ms` : `send p50 ${fmt(m.send_latency_ms.p50, 2)} p99 ${fmt(m.send_latency_ms.p99, 2)} ms`;
          log(
            `round ${round} ${scenario.padEnd(14)} ${client.padEnd(12)} ${fmt(m.msgs_per_s, 0).padStart(7)} msg/s  ${latency}  ` +
              `cpu client ${fmt(m.client_cpu, 2)} broker ${fmt(m.broker_cpu, 2)} other ${fmt(m.other_cpu, 2)}${m.valid ? '' : `  INVALID: ${m.problems.join('; ')}`}`,
          );
        }
      }
    }
  } finally {
    await admin.close();
  }

  const of = (round: number, scenario: Scenario, client: Client) => measurements.find((m) => m.round === round && m.scenario === scenario && m.client === client)!;
  const roundNumbers = Array.from({ length: rounds }, (_, i) => i + 1);
  const summary = scenarios.map((scenario) => {
    const pairs = roundNumbers.map((r) => ({ round: r, p: of(r, scenario, 'platformatic'), k: of(r, scenario, 'kafkajs') }));
    const ratios = pairs.map(({ p, k }) => p.msgs_per_s / k.msgs_per_s);
    const cpuRatios = pairs.map(({ p, k }) => p.msgs_per_cpu_s / k.msgs_per_cpu_s);
    const quiet = pairs.filter(({ p, k }) => p.other_cpu < quietCpu && k.other_cpu < quietCpu);
    const pick = (c: 'p' | 'k', f: (m: Measurement) => number) => median(pairs.map((pair) => f(pair[c])));
    const both = (f: (m: Measurement) => number) => ({ platformatic: pick('p', f), kafkajs: pick('k', f) });
    return {
      scenario,
      ratios,
      median_ratio: median(ratios),
      min_ratio: Math.min(...ratios),
      max_ratio: Math.max(...ratios),
      quiet_rounds: quiet.map((pair) => pair.round),
      median_ratio_quiet: median(quiet.map(({ p, k }) => p.msgs_per_s / k.msgs_per_s)),
      cpu_ratios: cpuRatios,
      median_cpu_ratio: median(cpuRatios),
      median_msgs_per_s: both((m) => m.msgs_per_s),
      median_msgs_per_cpu_s: both((m) => m.msgs_per_cpu_s),
      median_client_cpu: both((m) => m.client_cpu),
      median_broker_cpu: both((m) => m.broker_cpu),
      median_p50_ms: both((m) => m.send_latency_ms?.p50 ?? Number.NaN),
      median_p99_ms: both((m) => m.send_latency_ms?.p99 ?? Number.NaN),
    };
  });
  const valid = measurements.every((m) => m.valid);
  const pk = (v: { platformatic: number; kafkajs: number }, d: number) => `${fmt(v.platformatic, d)} / ${fmt(v.kafkajs, d)}`;

  const summaryTable = markdownTable(
    ['scenario', 'platformatic msg/s', 'kafkajs msg/s', 'ratio p/k (min–max)', 'ratio, quiet pairs (n)', 'msg per client CPU-s p / k', 'ratio per CPU-s', 'send p50 ms p / k', 'send p99 ms p / k', 'client CPU/s p / k', 'broker CPU/s p / k'],
    summary.map((s) => [
      s.scenario,
      fmt(s.median_msgs_per_s.platformatic, 0),
      fmt(s.median_msgs_per_s.kafkajs, 0),
      `${fmt(s.median_ratio, 2)} (${fmt(s.min_ratio, 2)}–${fmt(s.max_ratio, 2)})`,
      `${fmt(s.median_ratio_quiet, 2)} (${s.quiet_rounds.length})`,
      pk(s.median_msgs_per_cpu_s, 0),
      fmt(s.median_cpu_ratio, 2),
      pk(s.median_p50_ms, 2),
      pk(s.median_p99_ms, 2),
      pk(s.median_client_cpu, 2),
      pk(s.median_broker_cpu, 2),
    ]),
  );
  const roundsTable = markdownTable(
    ['round', 'scenario', 'first', 'platformatic msg/s', 'kafkajs msg/s', 'ratio p/k', 'p50/p99 ms platformatic', 'p50/p99 ms kafkajs', 'client CPU/s p / k', 'broker CPU/s p / k', 'other CPU/s p / k'],
    scenarios.flatMap((scenario) =>
      roundNumbers.map((r) => {
        const p = of(r, scenario, 'platformatic');
        const k = of(r, scenario, 'kafkajs');
        const lat = (m: Measurement) => (m.send_latency_ms === undefined ? '–' : `${fmt(m.send_latency_ms.p50, 2)} / ${fmt(m.send_latency_ms.p99, 2)}`);
        return [
          String(r),
          scenario,
          p.order === 1 ? 'platformatic' : 'kafkajs',
          fmt(p.msgs_per_s, 0),
          fmt(k.msgs_per_s, 0),
          fmt(p.msgs_per_s / k.msgs_per_s, 2),
          lat(p),
          lat(k),
          `${fmt(p.client_cpu, 2)} / ${fmt(k.client_cpu, 2)}`,
          `${fmt(p.broker_cpu, 2)} / ${fmt(k.broker_cpu, 2)}`,
          `${fmt(p.other_cpu, 2)} / ${fmt(k.other_cpu, 2)}`,
        ];
      }),
    ),
  );
  const checksTable = markdownTable(
    ['round', 'scenario', 'client', 'checks', 'valid'],
    measurements.map((m) => [
      String(m.round),
      m.scenario,
      m.client,
      Object.entries(m.checks)
        .map(([k, v]) => `${k} ${String(v)}`)
        .join(', '),
      m.valid ? 'yes' : `NO: ${m.problems.join('; ')}`,
    ]),
  );
  const file = writeResult('kafka-clients', {
    benchmark: 'kafka-clients',
    command: `npx tsx bench/kafka-clients.ts ${process.argv.slice(2).join(' ')}`.trim(),
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    versions: used,
    settings: {
      bootstrap,
      rounds,
      duration_s: durationS,
      warmup_s: warmupS,
      concurrency,
      batch_size: batchSize,
      batch_concurrency: batchConcurrency,
      consume_messages: consumeMessages,
      partitions,
      value_bytes: message(`${runId}-00-0000000`).value.length,
      max_wait_ms: maxWaitMs,
      consume_timeout_s: consumeTimeoutS,
      quiet_cpu: quietCpu,
      platformatic_sends: flags['platformatic-sends'],
      scenarios,
    },
    valid,
    summary,
    measurements,
  });

  process.stdout.write(
    [
      `## Kafka clients (${machine.cpus} CPUs, ${machine.cpu_model}, Node ${machine.node}, Kafka ${used.kafka_broker}, @platformatic/kafka ${used['@platformatic/kafka']}, kafkajs ${used.kafkajs})`,
      '',
      `Medians of ${rounds} interleaved rounds; ratios are platformatic ÷ kafkajs per round. produce-single: ${concurrency} concurrent senders of 1 message; ` +
        `produce-coalesced: the same through one-in-flight coalescing (≤ 1000 per request); ` +
        `produce-batch: ${batchConcurrency} concurrent senders of ${batchSize}; platformatic sends ${flags['platformatic-sends']}; consume: ${consumeMessages} messages on ${partitions} partitions, commit after each batch, rate from group join to last commit.`,
      '',
      summaryTable,
      '',
      roundsTable,
      '',
      checksTable,
      '',
      valid ? 'Valid run: every message acknowledged and written once, every consumer read each message once and committed the end offsets.' : 'INVALID RUN: see the checks table.',
      `Result file: ${file}`,
      '',
    ].join('\n'),
  );
  if (!valid) process.exitCode = 1;
}

await main();
