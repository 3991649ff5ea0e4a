/**
 * The honest price of stream stages: the digits-image pipeline run as three stream steps (PNG to
 * the 8x8 grid, the digits ONNX model, the top three labels; three queues, three pools) against
 * the same three steps in one handler (bench/lib/digits-image-inline: the demo models' own code
 * and ONNX file, one queue, one pool), end to end, in the same rounds. Closed loop (autocannon,
 * `Prefer: wait=30`), one `spillway serve` on the embedded broker per measurement, the order
 * alternating. See bench/README.md.
 *
 *   npm run build && npx tsx bench/pipeline-stages.ts   (~2 minutes)
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { median as medianOf } from '../src/loadgen/stats.js';
import { num, numList, parseFlags } from './lib/args.js';
import { closedLoop } from './lib/closed-loop.js';
import { processCpuSeconds } from './lib/cpu.js';
import { fmt, log, machineInfo, markdownTable, writeResult } from './lib/report.js';
import { repoRoot, snapshotBuild, startSpillway } from './lib/spillway.js';

const flags = parseFlags('Usage: npx tsx bench/pipeline-stages.ts [options]   (needs `npm run build`)', {
  rounds: { description: 'rounds; each measures both systems at every connection count', default: '3' },
  duration: { description: 'seconds per measurement', default: '10' },
  warmup: { description: 'seconds of unmeasured load on each fresh server first', default: '3' },
  connections: { description: 'connection counts, comma-separated', default: '32' },
  sample: { description: 'the PNG sent, from models/digits-image/samples', default: '7-b-grey-28-dark-on-light.png' },
});
const rounds = num('rounds', flags.rounds, { min: 1, integer: true });
const durationS = num('duration', flags.duration, { min: 1 });
const warmupS = num('warmup', flags.warmup, { min: 0 });
const connectionCounts = numList('connections', flags.connections, { min: 1, integer: true });

const systems = { stages: 'digits-image', inline: 'digits-image-inline' } as const;
type System = keyof typeof systems;
const expectedLabel = flags.sample.split('-')[0]!;
const body = JSON.stringify({ input: { image: readFileSync(join(repoRoot, 'models/digits-image/samples', flags.sample)).toString('base64') } });

/** The shipped models (for the pipeline and its steps) and the one-handler baseline beside them. */
function repository(): { dir: string; remove: () => void } {
  // Inside the checkout: handler models resolve their packages (pngjs, onnxruntime-node) from
  // their own folder, so a copy in the OS temp folder would find none.
  mkdirSync(join(repoRoot, 'bench/results'), { recursive: true });
  const dir = mkdtempSync(join(repoRoot, 'bench/results/.models-'));
  for (const name of ['digits', 'digits-preprocess', 'digits-top3', 'digits-image']) cpSync(join(repoRoot, 'models', name), join(dir, name), { recursive: true });
  // Its imports of the demo models' modules are relative to bench/lib; here they point at the checkout.
  cpSync(join(repoRoot, 'bench/lib/digits-image-inline'), join(dir, 'digits-image-inline'), { recursive: true });
  const handler = join(dir, 'digits-image-inline', 'handler.js');
  writeFileSync(handler, readFileSync(handler, 'utf8').replaceAll("'../../../models/", `'${pathToFileURL(join(repoRoot, 'models')).href}/`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const verify = (text: string) => {
  const record = JSON.parse(text) as { status?: string; output?: { top?: { label: string }[] } };
  return record.status === 'succeeded' && record.output?.top?.[0]?.label === expectedLabel && record.output.top.length === 3;
};

interface Measured {
  readonly system: System;
  readonly c: number;
  readonly round: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly cpu: number;
  readonly bad: number;
}

async function main(): Promise<void> {
  const build = snapshotBuild();
  const repo = repository();
  const results: Measured[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const c of connectionCounts) {
        const order: System[] = round % 2 === 1 ? ['stages', 'inline'] : ['inline', 'stages'];
        for (const system of order) {
          const server = await startSpillway({ models: repo.dir, main: build.main });
          try {
            const url = `${server.url}/v1/models/${systems[system]}/predictions`;
            const headers = { 'content-type': 'application/json', prefer: 'wait=30' };
            if (warmupS > 0) await closedLoop({ url, headers, body, connections: c, seconds: warmupS, timeout_s: 30 });
            const cpu0 = processCpuSeconds(server.pid);
            const run = await closedLoop({ url, headers, body, connections: c, seconds: durationS, timeout_s: 30, verify });
            const cpu = (processCpuSeconds(server.pid) - cpu0) / durationS;
            const r = run.result;
            // Only 200s count: a 202 (not done within the wait) is a failure here.
            const ok = r.statusCodeStats?.['200']?.count ?? 0;
            const bad = r.non2xx + r.errors + r.timeouts + (r.statusCodeStats?.['202']?.count ?? 0);
            const rps = ok / r.duration;
            results.push({ system, c, round, rps, p50: run.latency_ms.p50 ?? Number.NaN, p99: run.latency_ms.p99 ?? Number.NaN, cpu, bad });
            log(`round ${round} c=${c} ${system.padEnd(6)} ${fmt(rps, 0)} req/s  p50 ${fmt(run.latency_ms.p50)} ms  p99 ${fmt(run.latency_ms.p99)} ms  cpu ${fmt(cpu, 2)}  bad ${bad}`);
          } finally {
            await server.stop();
          }
        }
      }
    }
  } finally {
    repo.remove();
    build.remove();
  }
  const median = (xs: number[]) => medianOf(xs) ?? Number.NaN;
  const rows = connectionCounts.map((c) => {
    const of = (system: System, key: 'rps' | 'p50' | 'p99' | 'cpu') => median(results.filter((r) => r.system === system && r.c === c).map((r) => r[key]));
    const ratios = Array.from({ length: rounds }, (_, i) => {
      const pick = (system: System) => results.find((r) => r.system === system && r.c === c && r.round === i + 1)?.rps ?? Number.NaN;
      return pick('stages') / pick('inline');
    });
    return [String(c), fmt(of('inline', 'rps'), 0), fmt(of('stages', 'rps'), 0), `**${fmt(median(ratios), 3)}** (${fmt(Math.min(...ratios), 3)}–${fmt(Math.max(...ratios), 3)})`, `${fmt(of('inline', 'p50'))} / ${fmt(of('stages', 'p50'))}`, `${fmt(of('inline', 'p99'))} / ${fmt(of('stages', 'p99'))}`, `${fmt(of('inline', 'cpu'), 2)} / ${fmt(of('stages', 'cpu'), 2)}`];
  });
  const m = machineInfo();
  const table = markdownTable(['c', 'median inline req/s', 'median stages req/s', 'median stages ÷ inline (min–max)', 'median p50 ms inline / stages', 'median p99 ms inline / stages', 'server CPU-s/s inline / stages'], rows);
  const bad = results.reduce((n, r) => n + r.bad, 0);
  const file = writeResult('pipeline-stages', { machine: m, settings: { rounds, duration_s: durationS, warmup_s: warmupS, connections: connectionCounts, sample: flags.sample }, results });
  process.stdout.write(`## pipeline stages (${m.cpus} CPUs, Node ${m.node}, commit ${build.git_commit}${build.git_dirty ? ' + local changes' : ''})\n\n${table}\n\n${bad === 0 ? 'Valid run: no non-2xx, 202, error, timeout.' : `INVALID RUN: ${bad} non-2xx, 202s, errors or timeouts.`}\nResult file: ${file}\n`);
}

await main();
