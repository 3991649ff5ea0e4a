/**
 * Queue position and ETA (issue 15): how close is the ETA a queued prediction shows to the time
 * a worker really starts it? A burst against the sleep model queues a few hundred requests; a
 * sample of them is polled every second while queued, and each ETA shown is compared with the
 * record's `started_at` once it has run. Arrivals come from src/loadgen (a burst profile, the
 * seeded schedule and the open loop), percentiles from src/loadgen/stats.ts.
 *
 * Baseline, in the same run: the ETA the drain rate alone would give, (position + 0.5) ÷ the
 * deployment's drain rate over its window (read from GET /v1/models/sleep/scaling every second),
 * for the same sightings, against the same start times.
 *
 * With `--flood X`, fair queuing is on and the burst is tenant B's, in a lane of its own, while
 * tenant A floods its own lane at X × capacity from start to end: the workers take from the two
 * lanes in turns, so B's requests start at about half the model's rate while A's lane holds work,
 * which the ETA counts (the other lanes' turns) and the baseline, B's lane position alone over
 * the model's drain rate, does not.
 *
 *   npm run build && npx tsx bench/queue-eta.ts               (~1.5 minutes)
 *   npx tsx bench/queue-eta.ts --flood 0.75 --base 0.25 --spike 2
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { num, parseFlags } from './lib/args.js';
import { fmt, log, machineInfo, markdownTable, writeResult } from './lib/report.js';
import { modelRepository, snapshotBuild, startSpillway } from './lib/spillway.js';
import { burstProfile, steadyProfile } from '../src/loadgen/profiles.js';
import { buildSchedule } from '../src/loadgen/schedule.js';
import { callOnSchedule } from '../src/loadgen/scheduled-calls.js';
import { distribution, type Distribution } from '../src/loadgen/stats.js';

const flags = parseFlags('Usage: npx tsx bench/queue-eta.ts [options]   (needs `npm run build`)', {
  'service-ms': { description: "the model's service time per request (sleep model, batch size 1)", default: '100' },
  concurrency: { description: "the model's worker slots", default: '4' },
  base: { description: 'arrival rate before and after the burst, as a fraction of capacity', default: '0.5' },
  spike: { description: 'arrival rate during the burst, as a multiple of capacity', default: '4' },
  'spike-at': { description: 'seconds of base load before the burst (the drain rate is measured meanwhile)', default: '15' },
  'spike-for': { description: 'seconds the burst lasts', default: '8' },
  duration: { description: 'seconds of arrivals in all', default: '30' },
  'sample-every': { description: 'poll every n-th request', default: '4' },
  'poll-ms': { description: 'how often each sampled queued prediction is polled', default: '1000' },
  seed: { description: 'seed of the arrival schedule', default: '1' },
  flood: { description: 'tenant A floods its own lane at this × capacity beside the burst (tenant B); 0: one lane, no tenants', default: '0' },
});
const serviceMs = num('service-ms', flags['service-ms'], { min: 1 });
const concurrency = num('concurrency', flags.concurrency, { min: 1, integer: true });
const baseX = num('base', flags.base, { min: 0.01 });
const spikeX = num('spike', flags.spike, { min: 0.01 });
const spikeAt = num('spike-at', flags['spike-at'], { min: 1 });
const spikeFor = num('spike-for', flags['spike-for'], { min: 1 });
const duration = num('duration', flags.duration, { min: spikeAt + spikeFor });
const sampleEvery = num('sample-every', flags['sample-every'], { min: 1, integer: true });
const pollMs = num('poll-ms', flags['poll-ms'], { min: 50 });
const seed = num('seed', flags.seed, { min: 0, integer: true });
const floodX = num('flood', flags.flood, { min: 0 });
const capacity = (concurrency * 1000) / serviceMs;

interface Queue {
  readonly position: number;
  readonly ahead_exact: boolean;
  readonly eta?: string;
  readonly measured_at: string;
}
interface Shown {
  readonly id: string;
  readonly status: string;
  readonly started_at?: string;
  readonly queue?: Queue;
}
/** One ETA a client saw. */
interface Sighting {
  readonly position: number;
  readonly measuredAt: number;
  readonly eta: number | null;
  /** The baseline's ETA for the same sighting; null while no drain was measured. */
  readonly drainEta: number | null;
}

/** Authorization for B's requests and polls, and for the admin reading of /scaling (with --flood). */
const auth = { b: {} as Record<string, string>, admin: {} as Record<string, string> };

/** The drain rate of the latest /scaling reading, polled every second. */
const drain = { rate: 0 };
async function followDrain(url: string, until: () => boolean): Promise<void> {
  while (!until()) {
    const res = await fetch(`${url}/v1/models/sleep/scaling`, { headers: auth.admin }).catch(() => undefined);
    if (res?.status === 200) drain.rate = ((await res.json()) as { drain_rate_per_s: number }).drain_rate_per_s;
    await sleep(1000);
  }
}
interface Sampled {
  readonly id: string;
  readonly phase: string;
  readonly sightings: Sighting[];
  startedAt: number | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function getRecord(url: string, id: string): Promise<Shown | undefined> {
  const res = await fetch(`${url}/v1/predictions/${id}`, { headers: auth.b }).catch(() => undefined);
  if (res?.status !== 200) return undefined;
  return (await res.json()) as Shown;
}

/** Polls one prediction while it is queued, noting each place shown; then waits for its start time. */
async function follow(url: string, sampled: Sampled, stopAt: number): Promise<void> {
  while (Date.now() < stopAt) {
    const record = await getRecord(url, sampled.id);
    if (record !== undefined && record.status !== 'queued') {
      if (record.started_at !== undefined) {
        sampled.startedAt = Date.parse(record.started_at);
        return;
      }
    } else if (record?.queue !== undefined) {
      const q = record.queue;
      const measuredAt = Date.parse(q.measured_at);
      sampled.sightings.push({
        position: q.position,
        measuredAt,
        eta: q.eta === undefined ? null : Date.parse(q.eta),
        drainEta: drain.rate > 0 ? measuredAt + ((q.position + 0.5) / drain.rate) * 1000 : null,
      });
    }
    await sleep(record?.status === 'queued' ? pollMs : 250);
  }
}

interface ErrorFigures {
  readonly predictions: number;
  readonly sightings: number;
  readonly without_eta: number;
  /** |ETA − start| in ms. */
  readonly abs_error_ms: Distribution;
  /** ETA − start in ms: positive is late (the ETA said later than it started). */
  readonly signed_error_ms: Distribution;
  /** |ETA − start| ÷ (start − measured_at): the error against how far ahead the ETA looked. */
  readonly relative_error_pct: Distribution;
}

function errorFigures(sampled: readonly Sampled[], pick: (s: Sampled) => readonly Sighting[], etaOf: (seen: Sighting) => number | null = (seen) => seen.eta): ErrorFigures {
  const abs: number[] = [];
  const signed: number[] = [];
  const relative: number[] = [];
  let sightings = 0;
  let withoutEta = 0;
  const ran = sampled.filter((s) => s.startedAt !== null && pick(s).length > 0);
  for (const s of ran) {
    for (const seen of pick(s)) {
      sightings += 1;
      const eta = etaOf(seen);
      if (eta === null) {
        withoutEta += 1;
        continue;
      }
      const error = eta - s.startedAt!;
      abs.push(Math.abs(error));
      signed.push(error);
      const lead = s.startedAt! - seen.measuredAt;
      if (lead > 0) relative.push((Math.abs(error) / lead) * 100);
    }
  }
  return {
    predictions: ran.length,
    sightings,
    without_eta: withoutEta,
    abs_error_ms: distribution(abs),
    signed_error_ms: distribution(signed),
    relative_error_pct: distribution(relative),
  };
}

async function main(): Promise<void> {
  const build = snapshotBuild();
  const repo = modelRepository([{ name: 'sleep', overrides: { concurrency, max_batch_size: 1, parameters: { per_batch_ms: serviceMs, per_item_ms: 0 } } }]);
  const profile = burstProfile({ rate: capacity * baseX, spike_rate: capacity * spikeX, spike_at_s: spikeAt, spike_for_s: spikeFor, duration_s: duration });
  const times = buildSchedule(profile, { process: 'poisson', seed });
  const phaseNames = profile.phases.map((p) => p.name);
  const sampled: Sampled[] = [];
  const follows: Promise<void>[] = [];
  let figures: { during: ErrorFigures; first: ErrorFigures; all: ErrorFigures; drain_during: ErrorFigures; drain_first: ErrorFigures } | undefined;
  let accepted = 0;
  try {
    const work = mkdtempSync(join(tmpdir(), 'spillway-bench-eta-'));
    const config = join(work, 'spillway.yaml');
    writeFileSync(config, 'queuing: fair\ntenants:\n  A: {}\n  B: {}\n');
    const server = await startSpillway({ main: build.main, models: repo.dir, args: floodX > 0 ? ['--config', config] : [] });
    let flooding: Promise<unknown> = Promise.resolve();
    try {
      if (floodX > 0) {
        const key = (tenant: string, scopes: string) =>
          (JSON.parse(execFileSync(process.execPath, [build.main, 'keys', 'create', '--data', server.dataDir, '--config', config, '--tenant', tenant, '--scopes', scopes, '--json'], { encoding: 'utf8' })) as { key: string }).key;
        const bearer = (k: string) => ({ authorization: `Bearer ${k}` });
        auth.b = bearer(key('B', 'predict,read'));
        auth.admin = bearer(key('ops', 'admin'));
        const floodKey = bearer(key('A', 'predict'));
        const floodTimes = buildSchedule(steadyProfile({ rate: capacity * floodX, duration_s: duration }), { process: 'poisson', seed: seed + 1000 });
        log(`tenant A floods its lane: ${fmt(capacity * floodX)} req/s, ${floodTimes.length} requests`);
        flooding = callOnSchedule(
          floodTimes,
          async (i) => {
            const res = await fetch(`${server.url}/v1/models/sleep/predictions`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', ...floodKey },
              body: JSON.stringify({ input: { flood: i } }),
            });
            await res.arrayBuffer();
            return { ok: res.status === 202, detail: res.status };
          },
          { failedDetail: () => 0 },
        );
      }
      // The drain rate is measured from a gateway's first use of its scaling signals: start it now.
      let done = false;
      const drainReadings = followDrain(server.url, () => done);
      log(`capacity ${fmt(capacity)} req/s; ${fmt(capacity * baseX)} req/s, then ${fmt(capacity * spikeX)} req/s for ${spikeFor} s at ${spikeAt} s; ${times.length} requests`);
      // Long enough for the backlog to drain after the last arrival, with room for a slow machine.
      const stopAt = () => Date.now() + ((times.length / capacity) * 2 + 30) * 1000;
      const shots = await callOnSchedule(
        times,
        async (i) => {
          const res = await fetch(`${server.url}/v1/models/sleep/predictions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...auth.b },
            body: JSON.stringify({ input: { n: i } }),
          });
          const body = (await res.json()) as Shown;
          if (res.status !== 202) return { ok: false, detail: res.status };
          accepted += 1;
          if (i % sampleEvery === 0) {
            const s: Sampled = { id: body.id, phase: phaseNames[profile.phaseIndex(times[i]!)] ?? 'all', sightings: [], startedAt: null };
            sampled.push(s);
            follows.push(follow(server.url, s, stopAt()));
          }
          return { ok: true, detail: res.status };
        },
        { failedDetail: () => 0 },
      );
      const failed = shots.filter((s) => !s.ok).length;
      if (failed > 0) log(`${failed} submissions failed`);
      await Promise.all(follows);
      done = true;
      await drainReadings;
      await flooding;
    } finally {
      await server.stop();
      rmSync(work, { recursive: true, force: true });
    }
    figures = {
      during: errorFigures(
        sampled.filter((s) => s.phase === 'during'),
        (s) => s.sightings,
      ),
      first: errorFigures(
        sampled.filter((s) => s.phase === 'during'),
        (s) => s.sightings.slice(0, 1),
      ),
      all: errorFigures(sampled, (s) => s.sightings),
      drain_during: errorFigures(
        sampled.filter((s) => s.phase === 'during'),
        (s) => s.sightings,
        (seen) => seen.drainEta,
      ),
      drain_first: errorFigures(
        sampled.filter((s) => s.phase === 'during'),
        (s) => s.sightings.slice(0, 1),
        (seen) => seen.drainEta,
      ),
    };
  } finally {
    repo.remove();
    build.remove();
  }
  const row = (name: string, f: ErrorFigures) => [
    name,
    String(f.predictions),
    String(f.sightings),
    String(f.without_eta),
    fmt(f.abs_error_ms.p50, 0),
    fmt(f.abs_error_ms.p90, 0),
    fmt(f.signed_error_ms.p50, 0),
    fmt(f.relative_error_pct.p50, 0),
    fmt(f.relative_error_pct.p90, 0),
  ];
  const table = markdownTable(
    ['ETAs', 'predictions', 'ETAs seen', 'without ETA', '|error| p50 ms', '|error| p90 ms', 'signed error p50 ms', '|error| ÷ lead p50 %', '|error| ÷ lead p90 %'],
    [
      row('Spillway: every poll, queued during the burst', figures.during),
      row('Spillway: first poll, queued during the burst', figures.first),
      row('Spillway: every poll, every phase', figures.all),
      row('baseline (drain rate): every poll, during the burst', figures.drain_during),
      row('baseline (drain rate): first poll, during the burst', figures.drain_first),
    ],
  );
  process.stdout.write(`\n${table}\n`);
  const maxPosition = Math.max(0, ...sampled.flatMap((s) => s.sightings.map((x) => x.position)));
  log(`accepted ${accepted}; deepest position seen ${maxPosition}`);
  const path = writeResult('queue-eta', {
    machine: machineInfo(),
    git_commit: build.git_commit,
    git_dirty: build.git_dirty,
    settings: { serviceMs, concurrency, capacity, baseX, spikeX, spikeAt, spikeFor, duration, sampleEvery, pollMs, seed, floodX },
    accepted,
    max_position: maxPosition,
    figures,
    sampled,
  });
  log(`wrote ${path}`);
}

await main();
