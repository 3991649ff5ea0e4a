/**
 * Does an analytics tap slow serving? End-to-end echo throughput of one `spillway serve` on the
 * embedded broker alone, with a `spillway tap` process reading the same streams into DuckDB, and
 * with that tap stopped dead (SIGSTOP: a tap that hangs, holding whatever it held), in the same
 * rotating rounds. Aim: less than 5% difference. Closed loop (autocannon, `Prefer: wait=30`).
 *
 *   npm run build && npx tsx bench/tap-overhead.ts   (~3 minutes)
 */
import { median as medianOf } from '../src/loadgen/stats.js';
import { num, parseFlags } from './lib/args.js';
import { closedLoop } from './lib/closed-loop.js';
import { fmt, log, machineInfo, markdownTable, writeResult } from './lib/report.js';
import { rotation } from './lib/rotation.js';
import { modelRepository, snapshotBuild, startSpillway, type SpillwayProcess } from './lib/spillway.js';

const flags = parseFlags('Usage: npx tsx bench/tap-overhead.ts [options]   (needs `npm run build`)', {
  rounds: { description: 'rounds; each measures every system', default: '3' },
  duration: { description: 'seconds per measurement', default: '10' },
  warmup: { description: 'seconds of unmeasured load on each fresh deployment first', default: '3' },
  connections: { description: 'connections', default: '64' },
});
const rounds = num('rounds', flags.rounds, { min: 1, integer: true });
const durationS = num('duration', flags.duration, { min: 1 });
const warmupS = num('warmup', flags.warmup, { min: 0 });
const connections = num('connections', flags.connections, { min: 1, integer: true });

const systems = ['none', 'tap', 'stopped'] as const;
type System = (typeof systems)[number];
const input = { text: 'The quick brown fox jumps over the lazy dog', n: 1 };
const body = JSON.stringify({ input });

interface Measured {
  readonly system: System;
  readonly round: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly bad: number;
}

async function main(): Promise<void> {
  const build = snapshotBuild();
  const repo = modelRepository([{ name: 'echo' }]);
  const results: Measured[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const system of rotation(systems, round - 1)) {
        const server = await startSpillway({ models: repo.dir, main: build.main });
        let tap: SpillwayProcess | undefined;
        try {
          if (system !== 'none') tap = await startSpillway({ models: repo.dir, main: build.main, command: 'tap', dataDir: server.dataDir });
          const url = `${server.url}/v1/models/echo/predictions`;
          const headers = { 'content-type': 'application/json', prefer: 'wait=30' };
          if (warmupS > 0) await closedLoop({ url, headers, body, connections, seconds: warmupS, timeout_s: 30 });
          if (system === 'stopped') process.kill(tap!.pid, 'SIGSTOP');
          const run = await closedLoop({ url, headers, body, connections, seconds: durationS, timeout_s: 30 });
          const r = run.result;
          const ok = r.statusCodeStats?.['200']?.count ?? 0;
          // A closed loop ends with one request in flight per connection; beyond those, requests
          // still unanswered when the measurement ended count too: a stalled server answers none.
          const unanswered = Math.max(0, r.requests.sent - r.requests.total - connections);
          const bad = r.non2xx + r.errors + r.timeouts + (r.statusCodeStats?.['202']?.count ?? 0) + unanswered;
          const rps = ok / r.duration;
          results.push({ system, round, rps, p50: run.latency_ms.p50 ?? Number.NaN, p99: run.latency_ms.p99 ?? Number.NaN, bad });
          log(`round ${round} ${system.padEnd(7)} ${fmt(rps, 0)} req/s  p50 ${fmt(run.latency_ms.p50)} ms  p99 ${fmt(run.latency_ms.p99)} ms  bad ${bad}`);
        } finally {
          if (tap !== undefined) {
            if (system === 'stopped') process.kill(tap.pid, 'SIGCONT');
            await tap.stop();
          }
          await server.stop();
        }
      }
    }
  } finally {
    repo.remove();
    build.remove();
  }
  const median = (xs: number[]) => medianOf(xs) ?? Number.NaN;
  const of = (system: System, key: 'rps' | 'p50' | 'p99') => median(results.filter((r) => r.system === system).map((r) => r[key]));
  const ratios = (system: System) => Array.from({ length: rounds }, (_, i) => {
    const pick = (s: System) => results.find((r) => r.system === s && r.round === i + 1)?.rps ?? Number.NaN;
    return pick(system) / pick('none');
  });
  const rows = systems.map((system) => {
    const rs = ratios(system);
    const m = median(rs);
    return [system, fmt(of(system, 'rps'), 0), system === 'none' ? '1' : `**${fmt(m, 3)}** (${fmt(Math.min(...rs), 3)}–${fmt(Math.max(...rs), 3)})`, system === 'none' ? '–' : Math.abs(1 - m) < 0.05 ? 'met' : 'NOT met', fmt(of(system, 'p50')), fmt(of(system, 'p99'))];
  });
  const m = machineInfo();
  const bad = results.reduce((n, r) => n + r.bad, 0);
  const table = markdownTable(['system', 'median req/s', 'median ÷ none (min–max)', 'aim: within 5%', 'median p50 ms', 'median p99 ms'], rows);
  const file = writeResult('tap-overhead', { machine: m, settings: { rounds, duration_s: durationS, warmup_s: warmupS, connections }, results });
  process.stdout.write(`## tap overhead (${m.cpus} CPUs, Node ${m.node}, commit ${build.git_commit}${build.git_dirty ? ' + local changes' : ''}), c=${connections}\n\n${table}\n\n${bad === 0 ? 'Valid run: no non-2xx, 202, error, timeout.' : `INVALID RUN: ${bad} non-2xx, 202s, errors or timeouts.`}\nResult file: ${file}\n`);
}

await main();
