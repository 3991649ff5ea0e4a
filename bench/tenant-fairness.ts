/**
 * Fair queuing between tenants (issue 13): tenant B sends a tenth of a model's capacity while
 * tenant A floods it at ten times its capacity. In one run, with `spillway bench --mix`:
 *   1. B alone;
 *   2. B beside A's flood, `queuing: fair` (each tenant in a lane of its own);
 *   3. B beside A's flood, `queuing: fifo` (one line for everyone).
 * Aim: B's p99 beside the flood with fair queuing within 2× of B's p99 alone, while A keeps the
 * workers busy. A's queue is capped by its `max_queued` (a flood past it is answered 429), as a
 * shared deployment would cap it; without a cap the fifo line would only grow.
 *
 *   npm run build && npx tsx bench/tenant-fairness.ts   (~5 minutes)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { num, parseFlags } from './lib/args.js';
import { fmt, log, machineInfo, markdownTable, ratio, writeResult } from './lib/report.js';
import { modelRepository, snapshotBuild, startSpillway } from './lib/spillway.js';

const flags = parseFlags('Usage: npx tsx bench/tenant-fairness.ts [options]   (needs `npm run build`)', {
  duration: { description: 'seconds of arrivals per phase', default: '60' },
  'service-ms': { description: "the model's service time per request (sleep model, batch size 1)", default: '200' },
  concurrency: { description: "the model's worker slots", default: '4' },
  'b-share': { description: "B's rate as a fraction of capacity", default: '0.1' },
  flood: { description: "A's rate as a multiple of capacity", default: '10' },
  'max-queued': { description: "A's max_queued: how much of its flood the queue holds", default: '400' },
  seed: { description: 'seed of the arrival schedules', default: '1' },
});
const durationS = num('duration', flags.duration, { min: 5 });
const serviceMs = num('service-ms', flags['service-ms'], { min: 1 });
const concurrency = num('concurrency', flags.concurrency, { min: 1, integer: true });
const bShare = num('b-share', flags['b-share'], { min: 0.001 });
const floodX = num('flood', flags.flood, { min: 0.1 });
const maxQueued = num('max-queued', flags['max-queued'], { min: 1, integer: true });
const seed = num('seed', flags.seed, { min: 0, integer: true });

const capacity = (concurrency * 1000) / serviceMs;
const rateB = capacity * bShare;
const rateA = capacity * floodX;

type Phase = 'alone' | 'fair' | 'fifo';
interface TenantFigures {
  readonly sent: number;
  readonly completed: number;
  readonly rejected: number;
  readonly lost: number;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly queue_p99: number | null;
}
interface PhaseResult {
  readonly phase: Phase;
  readonly tenants: Readonly<Record<string, TenantFigures>>;
  readonly worker_busy_fraction: number | null;
}

interface Distribution {
  readonly p50: number | null;
  readonly p99: number | null;
}
interface TenantReport {
  readonly sent: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly rejected: number;
  readonly lost: number;
  readonly latency_ms: Distribution;
  readonly queue_ms: Distribution;
  readonly worker_busy_fraction: number | null;
}

async function runPhase(phase: Phase, main: string, models: string): Promise<PhaseResult> {
  const work = mkdtempSync(join(tmpdir(), 'spillway-fairness-'));
  try {
    const config = join(work, 'spillway.yaml');
    writeFileSync(config, `queuing: ${phase === 'fifo' ? 'fifo' : 'fair'}\ntenants:\n  A: { max_queued: ${maxQueued} }\n  B: {}\n`);
    const server = await startSpillway({ main, models, args: ['--config', config] });
    try {
      const key = (tenant: string) => {
        const out = execFileSync(process.execPath, [main, 'keys', 'create', '--data', server.dataDir, '--config', config, '--tenant', tenant, '--scopes', 'predict,read', '--json'], {
          encoding: 'utf8',
        });
        return (JSON.parse(out) as { key: string }).key;
      };
      const tenants = [
        ...(phase === 'alone' ? [] : [{ name: 'A', key: key('A'), profile: 'steady', rate: rateA, seed }]),
        { name: 'B', key: key('B'), profile: 'steady', rate: rateB, seed: seed + 1 },
      ];
      const mix = join(work, 'mix.json');
      writeFileSync(mix, JSON.stringify({ tenants }));
      const out = join(work, 'report.json');
      // A's queue drains at the model's capacity after the arrivals end.
      const drainS = Math.ceil((maxQueued / capacity) * 2 + 30);
      execFileSync(
        process.execPath,
        [main, 'bench', '--target', server.url, '--model', 'sleep', '--duration', String(durationS), '--mix', mix, '--drain-timeout', String(drainS), '--out', out, '--no-html', '--quiet'],
        { stdio: ['ignore', 'inherit', 'inherit'] },
      );
      const report = JSON.parse(readFileSync(out, 'utf8')) as { tenants: Record<string, TenantReport> };
      const figures = Object.fromEntries(
        Object.entries(report.tenants).map(([name, t]) => [
          name,
          { sent: t.sent, completed: t.succeeded + t.failed, rejected: t.rejected, lost: t.lost, p50: t.latency_ms.p50, p99: t.latency_ms.p99, queue_p99: t.queue_ms.p99 },
        ]),
      );
      const busy = report.tenants['A']?.worker_busy_fraction ?? report.tenants['B']?.worker_busy_fraction ?? null;
      for (const [name, f] of Object.entries(figures)) {
        log(`${phase.padEnd(5)} ${name}: sent ${f.sent} completed ${f.completed} rejected ${f.rejected} lost ${f.lost}  p50 ${fmt(f.p50)} ms  p99 ${fmt(f.p99)} ms  queue p99 ${fmt(f.queue_p99)} ms`);
      }
      return { phase, tenants: figures, worker_busy_fraction: busy };
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const build = snapshotBuild();
  const repo = modelRepository([{ name: 'sleep', overrides: { concurrency, max_batch_size: 1, parameters: { per_batch_ms: serviceMs, per_item_ms: 0 } } }]);
  const results: PhaseResult[] = [];
  try {
    log(`capacity ${fmt(capacity)} req/s; A floods at ${fmt(rateA)} req/s (max_queued ${maxQueued}), B sends ${fmt(rateB)} req/s; ${durationS} s per phase`);
    for (const phase of ['alone', 'fair', 'fifo'] as const) results.push(await runPhase(phase, build.main, repo.dir));
  } finally {
    repo.remove();
    build.remove();
  }
  const of = (phase: Phase) => results.find((r) => r.phase === phase);
  const bAlone = of('alone')?.tenants['B']?.p99;
  const rows = results.flatMap((r) =>
    Object.entries(r.tenants).map(([name, f]) => [
      r.phase === 'alone' ? 'B alone' : `beside A's flood, ${r.phase}`,
      name,
      String(f.sent),
      String(f.completed),
      String(f.rejected),
      String(f.lost),
      fmt(f.p50, 0),
      fmt(f.p99, 0),
      name === 'B' ? `${fmt(ratio(f.p99, bAlone), 2)}×` : '',
      fmt(r.worker_busy_fraction === null ? null : r.worker_busy_fraction * 100, 0),
    ]),
  );
  const table = markdownTable(['phase', 'tenant', 'sent', 'completed', 'rejected (429)', 'lost', 'p50 ms', 'p99 ms', "B's p99 / alone", 'workers busy %'], rows);
  process.stdout.write(`\n${table}\n`);
  const path = writeResult('tenant-fairness', {
    machine: machineInfo(),
    git_commit: build.git_commit,
    git_dirty: build.git_dirty,
    settings: { durationS, serviceMs, concurrency, capacity, rateA, rateB, maxQueued, seed },
    results,
  });
  log(`wrote ${path}`);
}

await main();
