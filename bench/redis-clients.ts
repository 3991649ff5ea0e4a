/**
 * Which Redis client Spillway's Redis adapters use, decided by measurement: ioredis, iovalkey
 * and node-redis (`redis`) issuing the commands the adapters issue most (XADD of a request-sized
 * entry, SET with expiry, GET), one at a time and 64 at once, each client in a process of its
 * own, in interleaved rounds on one Redis started by scripts/redis. The figure that matters is
 * client CPU per command: it is what the gateway and worker pay on top of their own work.
 * The candidates are installed into a cache folder, not into the project.
 *
 *   npx tsx bench/redis-clients.ts [--rounds 3] [--ops 30000]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from '../src/loadgen/stats.js';
import { num, parseFlags } from './lib/args.js';
import { fmt, log, machineInfo, markdownTable, writeResult } from './lib/report.js';
import { repoRoot } from './lib/spillway.js';

const flags = parseFlags('Usage: npx tsx bench/redis-clients.ts [options]', {
  rounds: { description: 'interleaved rounds (each runs every client at every concurrency)', default: '3' },
  ops: { description: 'commands of each kind per measurement at concurrency 64 (a tenth of that at 1)', default: '30000' },
  appendfsync: { description: "the server's fsync policy; `no` keeps the disk out of a client comparison", default: 'no' },
});
const rounds = num('rounds', flags.rounds, { min: 1, integer: true });
const ops = num('ops', flags.ops, { min: 100, integer: true });

const candidates = { ioredis: 'ioredis@6', iovalkey: 'iovalkey@0.4', 'node-redis': 'redis@6' } as const;
type Client = keyof typeof candidates;
const clients = Object.keys(candidates) as Client[];
const concurrencies = [1, 64] as const;
const commands = ['xadd', 'set', 'get'] as const;
type Figures = Record<(typeof commands)[number], { ops_per_s: number; client_cpu_us_per_op: number }>;

const cache = join(process.env['SPILLWAY_CACHE'] ?? join(homedir(), '.cache/spillway'), 'bench-redis-clients');
if (!existsSync(join(cache, 'node_modules/redis'))) {
  log(`installing ${Object.values(candidates).join(', ')} into ${cache}`);
  mkdirSync(cache, { recursive: true });
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', cache, ...Object.values(candidates)], { stdio: 'inherit' });
}
const versions = Object.fromEntries(
  (['ioredis', 'iovalkey', 'redis'] as const).map((p) => [p, (JSON.parse(execFileSync('node', ['-p', `JSON.stringify(require('${cache}/node_modules/${p}/package.json'))`], { encoding: 'utf8' })) as { version: string }).version]),
);

const redisDir = mkdtempSync(join(tmpdir(), 'spillway-bench-clients-'));
const redisEnv = { ...process.env, SPILLWAY_REDIS_DIR: redisDir, REDIS_PORT: 'auto', REDIS_APPENDFSYNC: flags.appendfsync };
const script = join(repoRoot, 'scripts/redis');
const url = execFileSync('bash', [script, 'up'], { env: redisEnv, encoding: 'utf8' }).trim().split('\n').at(-1) ?? '';
const probe = join(repoRoot, 'bench/lib/redis-client-probe.mjs');

const measurements: { round: number; client: Client; concurrency: number; figures: Figures }[] = [];
try {
  for (let round = 1; round <= rounds; round++) {
    for (const concurrency of concurrencies) {
      // Rotate the order each round, so no client always runs first (or last) on a warm server.
      const order = clients.map((_, i) => clients[(i + round) % clients.length] as Client);
      for (const client of order) {
        const count = concurrency === 1 ? Math.ceil(ops / 10) : ops;
        const out = execFileSync(process.execPath, [probe, cache, client, url, String(concurrency), String(count)], { encoding: 'utf8' });
        measurements.push({ round, client, concurrency, figures: JSON.parse(out) as Figures });
        log(`round ${round} c=${concurrency} ${client}: ${out.trim()}`);
      }
    }
  }
} finally {
  execFileSync('bash', [script, 'down', '--wipe'], { env: redisEnv, stdio: 'ignore' });
  rmSync(redisDir, { recursive: true, force: true });
}

const rows: string[][] = [];
for (const concurrency of concurrencies) {
  for (const client of clients) {
    const mine = measurements.filter((m) => m.client === client && m.concurrency === concurrency);
    const cell = (command: (typeof commands)[number]) => {
      const rate = median(mine.map((m) => m.figures[command].ops_per_s));
      const cpu = median(mine.map((m) => m.figures[command].client_cpu_us_per_op));
      return `${fmt(rate, 0)} /s, ${fmt(cpu, 1)} µs`;
    };
    rows.push([String(concurrency), client, ...commands.map(cell)]);
  }
}
process.stdout.write(`\nMedian of ${rounds} rounds: commands per second, and client CPU per command (appendfsync ${flags.appendfsync}).\n\n`);
process.stdout.write(`${markdownTable(['concurrency', 'client', 'XADD', 'SET PX', 'GET'], rows)}\n`);
const path = writeResult('redis-clients', { benchmark: 'redis-clients', machine: machineInfo(), versions, settings: { rounds, ops, appendfsync: flags.appendfsync }, measurements });
process.stdout.write(`\nResult file: ${path}\n`);
