/** The figures and Markdown tables of bench/broker-compare.ts, from its raw measurements. */
import { summarizeShots, type Shot, type ShotSummary } from '../../src/loadgen/scheduled-calls.js';
import { distribution, median, type Distribution } from '../../src/loadgen/stats.js';
import type { CpuUse } from './cpu-window.js';
import { diff, fmt, markdownTable } from './report.js';

export const brokers = ['embedded', 'kafka'] as const;
export type Broker = (typeof brokers)[number];

export interface ThroughputMeasurement {
  readonly round: number;
  readonly broker: Broker;
  readonly connections: number;
  readonly order: number;
  /** The priming request on the fresh server, awaited alone (NaN if it failed). */
  readonly first_request_ms: number;
  readonly duration_s: number;
  /** 200 responses (finished predictions) per second. */
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
  readonly cpu: CpuUse;
  /** Requests per CPU-second of the server, plus the Kafka JVM's when it is the broker. */
  readonly rps_per_system_cpu: number;
  readonly valid: boolean;
}

export interface LatencyDetail {
  readonly status_code: number;
  readonly queue_ms: number;
  readonly inference_ms: number;
  readonly total_ms: number;
  readonly error?: string;
}

export interface LatencyRun {
  readonly round: number;
  readonly broker: Broker;
  readonly order: number;
  readonly first_request_ms: number;
  readonly shots: readonly Shot<LatencyDetail>[];
  readonly cpu: CpuUse;
}

const pair = (a: number | null, b: number | null, decimals = 2) => `${fmt(a, decimals)} / ${fmt(b, decimals)}`;
const label = (b: Broker) => (b === 'kafka' ? 'Kafka' : 'embedded');

export function throughputReport(ms: readonly ThroughputMeasurement[], connectionCounts: readonly number[], rounds: number, quietCpu: number) {
  const of = (round: number, connections: number, broker: Broker) => ms.find((m) => m.round === round && m.connections === connections && m.broker === broker)!;
  const pairsOf = (connections: number) => Array.from({ length: rounds }, (_, i) => ({ round: i + 1, embedded: of(i + 1, connections, 'embedded'), kafka: of(i + 1, connections, 'kafka') }));
  const summary = connectionCounts.map((connections) => {
    const pairs = pairsOf(connections);
    const ratios = pairs.map((p) => p.kafka.rps / p.embedded.rps);
    const quiet = pairs.filter((p) => p.embedded.cpu.other < quietCpu && p.kafka.cpu.other < quietCpu);
    const pick = (b: Broker, f: (m: ThroughputMeasurement) => number | null) => median(pairs.map((p) => f(p[b]) ?? Number.NaN));
    const both = (f: (m: ThroughputMeasurement) => number | null) => ({ embedded: pick('embedded', f), kafka: pick('kafka', f) });
    return {
      connections,
      ratios,
      median_ratio: median(ratios),
      min_ratio: Math.min(...ratios),
      max_ratio: Math.max(...ratios),
      quiet_rounds: quiet.map((p) => p.round),
      median_ratio_quiet: median(quiet.map((p) => p.kafka.rps / p.embedded.rps)),
      median_ratio_per_system_cpu: median(pairs.map((p) => p.kafka.rps_per_system_cpu / p.embedded.rps_per_system_cpu)),
      median_rps: both((m) => m.rps),
      median_p50_ms: both((m) => m.latency_ms.p50),
      median_p99_ms: both((m) => m.latency_ms.p99),
      median_server_cpu: both((m) => m.cpu.server),
      median_kafka_cpu: both((m) => m.cpu.kafka),
    };
  });
  const summaryTable = markdownTable(
    ['c', 'median embedded req/s', 'median Kafka req/s', 'median ratio Kafka/embedded (min–max)', 'quiet pairs only (n)', 'ratio per system CPU-s', 'median p50 ms emb / Kafka', 'median p99 ms emb / Kafka', 'server CPU emb / Kafka', 'Kafka JVM CPU emb / Kafka'],
    summary.map((s) => [
      String(s.connections),
      fmt(s.median_rps.embedded, 0),
      fmt(s.median_rps.kafka, 0),
      `${fmt(s.median_ratio, 3)} (${fmt(s.min_ratio, 3)}–${fmt(s.max_ratio, 3)})`,
      `${fmt(s.median_ratio_quiet, 3)} (${s.quiet_rounds.length})`,
      fmt(s.median_ratio_per_system_cpu, 3),
      pair(s.median_p50_ms.embedded, s.median_p50_ms.kafka, 1),
      pair(s.median_p99_ms.embedded, s.median_p99_ms.kafka, 1),
      pair(s.median_server_cpu.embedded, s.median_server_cpu.kafka),
      pair(s.median_kafka_cpu.embedded, s.median_kafka_cpu.kafka),
    ]),
  );
  const roundsTable = markdownTable(
    ['round', 'c', 'first', 'emb req/s', 'Kafka req/s', 'ratio', 'emb p50/p99 ms', 'Kafka p50/p99 ms', 'server CPU emb/Kafka', 'JVM CPU emb/Kafka', 'bench CPU emb/Kafka', 'other CPU emb/Kafka', 'first request ms emb/Kafka'],
    connectionCounts.flatMap((c) =>
      pairsOf(c).map(({ round, embedded: e, kafka: k }) => [
        String(round),
        String(c),
        label(e.order === 1 ? 'embedded' : 'kafka'),
        fmt(e.rps, 0),
        fmt(k.rps, 0),
        fmt(k.rps / e.rps, 3),
        pair(e.latency_ms.p50, e.latency_ms.p99, 1),
        pair(k.latency_ms.p50, k.latency_ms.p99, 1),
        pair(e.cpu.server, k.cpu.server),
        pair(e.cpu.kafka, k.cpu.kafka),
        pair(e.cpu.bench, k.cpu.bench),
        pair(e.cpu.other, k.cpu.other),
        pair(e.first_request_ms, k.first_request_ms, 0),
      ]),
    ),
  );
  const checks = markdownTable(
    ['broker', 'c', 'round', '200', '202', 'non-2xx', 'errors', 'timeouts', 'bodies checked', 'bad bodies'],
    ms.map((m) => [label(m.broker), String(m.connections), String(m.round), String(m.ok_200), String(m.status_202), String(m.non_2xx), String(m.errors), String(m.timeouts), String(m.bodies_checked), String(m.bodies_bad)]),
  );
  return {
    valid: ms.every((m) => m.valid),
    data: { summary, measurements: ms },
    markdown: ['### Throughput: echo, closed loop, `Prefer: wait=30`', '', summaryTable, '', roundsTable, '', checks].join('\n'),
  };
}

export function latencyReport(runs: readonly LatencyRun[], rounds: number, seed: number) {
  const shotsOf = (b: Broker) => runs.filter((r) => r.broker === b).flatMap((r) => r.shots);
  const overall = { embedded: summarizeShots(shotsOf('embedded')), kafka: summarizeShots(shotsOf('kafka')) };
  const added = {
    mean: diff(overall.kafka.mean, overall.embedded.mean),
    p50: diff(overall.kafka.p50, overall.embedded.p50),
    p90: diff(overall.kafka.p90, overall.embedded.p90),
    p99: diff(overall.kafka.p99, overall.embedded.p99),
  };
  const perRound = Array.from({ length: rounds }, (_, i) => {
    const of = (b: Broker) => runs.find((r) => r.round === i + 1 && r.broker === b)!;
    const e = of('embedded');
    const k = of('kafka');
    const de = summarizeShots(e.shots);
    const dk = summarizeShots(k.shots);
    return {
      round: i + 1,
      seed: seed + i,
      first: e.order === 1 ? 'embedded' : 'kafka',
      arrivals: e.shots.length,
      embedded: { ...de, cpu: e.cpu, first_request_ms: e.first_request_ms },
      kafka: { ...dk, cpu: k.cpu, first_request_ms: k.first_request_ms },
      added_p50: diff(dk.p50, de.p50),
      added_p99: diff(dk.p99, de.p99),
    };
  });
  const part = (b: Broker, f: (s: Shot<LatencyDetail>) => number) => {
    const values = shotsOf(b)
      .filter((s) => s.ok)
      .map(f);
    const s = distribution(values);
    return { mean: s.mean, p50: s.p50, p99: s.p99 };
  };
  const parts = {
    queue_ms: (b: Broker) => part(b, (s) => s.detail.queue_ms),
    inference_ms: (b: Broker) => part(b, (s) => s.detail.inference_ms),
    total_ms: (b: Broker) => part(b, (s) => s.detail.total_ms),
    outside_record_ms: (b: Broker) => part(b, (s) => s.latency - s.detail.total_ms),
    client_ms: (b: Broker) => part(b, (s) => s.latency),
  };
  const breakdown = Object.fromEntries(Object.entries(parts).map(([name, f]) => [name, { embedded: f('embedded'), kafka: f('kafka') }]));
  const failures = overall.embedded.failures + overall.kafka.failures;

  const row = (name: string, s: ShotSummary) => [name, String(s.count), fmt(s.mean), fmt(s.p50), fmt(s.p90), fmt(s.p99), fmt(s.max), String(s.failures), fmt(s.send_lag_p99, 2)];
  const overallTable = markdownTable(
    ['broker', 'requests', 'mean ms', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'failures', 'send lag p99 ms'],
    [
      row('embedded', overall.embedded),
      row('Kafka', overall.kafka),
      ['Kafka − embedded', '', fmt(added.mean), fmt(added.p50), fmt(added.p90), fmt(added.p99), fmt(diff(overall.kafka.max, overall.embedded.max)), '', ''],
    ],
  );
  const roundsTable = markdownTable(
    ['round', 'seed', 'first', 'arrivals', 'emb mean / p50 / p99 ms', 'Kafka mean / p50 / p99 ms', 'added p50 ms', 'added p99 ms', 'server CPU emb/Kafka', 'JVM CPU emb/Kafka', 'other CPU emb/Kafka', 'first request ms emb/Kafka'],
    perRound.map((r) => [
      String(r.round),
      String(r.seed),
      label(r.first === 'kafka' ? 'kafka' : 'embedded'),
      String(r.arrivals),
      `${fmt(r.embedded.mean)} / ${fmt(r.embedded.p50)} / ${fmt(r.embedded.p99)}`,
      `${fmt(r.kafka.mean)} / ${fmt(r.kafka.p50)} / ${fmt(r.kafka.p99)}`,
      fmt(r.added_p50),
      fmt(r.added_p99),
      pair(r.embedded.cpu.server, r.kafka.cpu.server),
      pair(r.embedded.cpu.kafka, r.kafka.cpu.kafka),
      pair(r.embedded.cpu.other, r.kafka.cpu.other),
      pair(r.embedded.first_request_ms, r.kafka.first_request_ms, 0),
    ]),
  );
  const names: Record<keyof typeof parts, string> = {
    queue_ms: '`queue_ms` (accepted → started)',
    inference_ms: '`inference_ms`',
    total_ms: '`total_ms` (accepted → completed)',
    outside_record_ms: 'outside the record (HTTP, result publish, store, wake-up)',
    client_ms: 'client latency',
  };
  const fm = (p: { mean: number | null; p50: number | null; p99: number | null }) => `${fmt(p.mean, 2)} / ${fmt(p.p50, 2)} / ${fmt(p.p99, 1)}`;
  const breakdownTable = markdownTable(
    ['part (ms)', 'embedded mean / p50 / p99', 'Kafka mean / p50 / p99', 'added mean / p50'],
    (Object.keys(parts) as (keyof typeof parts)[]).map((name) => {
      const b = breakdown[name]!;
      return [names[name], fm(b.embedded), fm(b.kafka), `${fmt(diff(b.kafka.mean, b.embedded.mean), 2)} / ${fmt(diff(b.kafka.p50, b.embedded.p50), 2)}`];
    }),
  );
  const verdict =
    `Kafka's added p50: ${fmt(added.p50, 2)} ms (aim < 5 ms: ${added.p50 < 5 ? 'met' : 'NOT met'}; per round ${perRound.map((r) => fmt(r.added_p50, 2)).join(', ')}); ` +
    `added mean ${fmt(added.mean, 2)} ms, added p99 ${fmt(added.p99, 2)} ms`;
  return {
    valid: failures === 0,
    data: { overall, added, meets_aim: added.p50 < 5, rounds: perRound, breakdown, failures_sample: runs.flatMap((r) => r.shots).filter((s) => !s.ok).slice(0, 10) },
    markdown: ['### Latency: sleep model, open-loop Poisson, `Prefer: wait`', '', overallTable, '', verdict, '', roundsTable, '', breakdownTable].join('\n'),
  };
}
