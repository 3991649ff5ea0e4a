import { describe, expect, it } from 'vitest';
import { renderHtml } from '../../src/loadgen/html-report.js';
import type { BenchOptions } from '../../src/loadgen/options.js';
import { burstProfile } from '../../src/loadgen/profiles.js';
import { buildReport, drainTime, formatReportJson, workerSeconds } from '../../src/loadgen/report.js';
import { Fate, Outcome, RequestLog } from '../../src/loadgen/request-log.js';
import type { RunResult } from '../../src/loadgen/runner.js';
import { ModelSampler, type ServerSample } from '../../src/loadgen/sampler.js';

const profile = burstProfile({ rate: 10, spike_rate: 100, spike_at_s: 2, spike_for_s: 1, duration_s: 4 });

const options = {
  target: 'http://127.0.0.1:9',
  model: 'sleep',
  profile,
  arrivals: 'poisson',
  seed: 1,
  client: 'wait',
  wait_s: 60,
  poll_ms: 250,
  drain_timeout_s: 120,
  sample_ms: 1000,
  body: '{"input":{}}',
  out: 'r.json',
  html: 'r.html',
  records: undefined,
  quiet: true,
  settings: { profile: 'burst', drain_timeout: 120 },
} satisfies BenchOptions;

const sample = (t_ms: number, queue_depth: number | null, slots = 4): ServerSample => ({ t_ms, queue_depth, slots, workers: slots / 4 });

/** A log with one request of every fate, scheduled in the given phase times (seconds). */
function fakeRun(): RunResult {
  const log = new RequestLog();
  const add = (t_s: number, o: { outcome: Outcome; status?: number; fate?: Fate; latency?: number; error?: string }) => {
    const i = log.add(t_s * 1000, profile.phaseIndex(t_s));
    log.sent[i] = t_s * 1000 + 1;
    log.answered[i] = t_s * 1000 + 5;
    log.status[i] = o.status ?? 0;
    if (o.error !== undefined) log.setError(i, o.error);
    else log.outcome[i] = o.outcome;
    if (o.fate !== undefined) log.fate[i] = o.fate;
    if (o.latency !== undefined) {
      log.final[i] = t_s * 1000 + o.latency;
      log.queueMs[i] = o.latency - 50;
      log.inferenceMs[i] = 50;
    }
  };
  add(0.5, { outcome: Outcome.accepted, status: 200, fate: Fate.succeeded, latency: 60 });
  add(1.5, { outcome: Outcome.rejected, status: 429 });
  add(2.1, { outcome: Outcome.accepted, status: 202, fate: Fate.succeeded, latency: 900 });
  add(2.2, { outcome: Outcome.accepted, status: 202, fate: Fate.failed, latency: 1000 });
  add(2.3, { outcome: Outcome.accepted, status: 202, fate: Fate.lost });
  add(2.4, { outcome: Outcome.error, status: 500, error: '500' });
  add(2.5, { outcome: Outcome.error, error: 'ECONNRESET' });
  add(3.5, { outcome: Outcome.rejected, status: 503 });
  add(3.6, { outcome: Outcome.accepted, status: 200, fate: Fate.succeeded, latency: 700 });
  return {
    log,
    samples: [sample(0, 0), sample(1000, 2), sample(2000, 3), sample(3000, 40), sample(4000, 10), sample(5000, 3), sample(6000, 0)],
    busy: [
      { from_ms: 0, to_ms: 2000, busy_ms: 2000, capacity_ms: 8000 },
      { from_ms: 2000, to_ms: 4000, busy_ms: 8000, capacity_ms: 8000 },
    ],
    workers_without_busy: 0,
    sample_failures: {},
    started_at: '2026-01-01T00:00:00.000Z',
    send_end_ms: 3601,
    deadline_ms: 123_601,
    end_ms: 6000,
    drain_timed_out: false,
    interrupted: false,
  };
}

describe('the bench report', () => {
  it('accounts for every request: totals, phases and errors reconcile', () => {
    const r = buildReport(options, fakeRun());
    expect(r).toMatchObject({ sent: 9, accepted: 5, rejected: 2, errored: 2, completed: 4, succeeded: 3, failed: 1, lost: 1 });
    expect(r.errors).toEqual({ '500': 1, ECONNRESET: 1 });
    expect(r.reconciles).toBe(true);
    expect(Object.keys(r.phases)).toEqual(['before', 'during', 'after']);
    expect(r.phases['before']).toMatchObject({ sent: 2, accepted: 1, rejected: 1, completed: 1, lost: 0 });
    expect(r.phases['during']).toMatchObject({ sent: 5, accepted: 3, errored: 2, completed: 2, lost: 1 });
    expect(r.phases['after']).toMatchObject({ sent: 2, accepted: 1, rejected: 1, completed: 1 });
    for (const key of ['sent', 'accepted', 'rejected', 'errored', 'completed', 'lost'] as const) {
      expect(Object.values(r.phases).reduce((n, p) => n + p[key], 0)).toBe(r[key]);
    }
    // Latency is over completed requests (succeeded or failed), from the scheduled send.
    expect(r.latency_ms).toMatchObject({ count: 4, p50: 700, max: 1000 });
    expect(r.inference_ms.mean).toBe(50);
    expect(r.phases['during']?.queue_ms).toMatchObject({ count: 2, p50: 850, max: 950 });
    expect(r.backlog_peak).toBe(40);
    expect(r.worker_seconds).toBe(24);
    expect(r.worker_busy_fraction).toBe(0.625);
  });

  it('says why samples of the model failed, each reason once with its count', () => {
    const run = {
      ...fakeRun(),
      sample_failures: { 'cannot reach http://gw/v1/models/sleep (TIMEOUT)': 1, 'GET http://gw/v1/models/sleep answered 503 SPILLWAY_STORE_UNAVAILABLE': 2 },
    };
    expect(buildReport(options, run).notes).toContain(
      '3 samples of the model failed: 2× GET http://gw/v1/models/sleep answered 503 SPILLWAY_STORE_UNAVAILABLE; 1× cannot reach http://gw/v1/models/sleep (TIMEOUT)',
    );
    const one = { ...fakeRun(), sample_failures: { 'cannot reach http://gw/v1/models/sleep (ECONNREFUSED)': 1 } };
    expect(buildReport(options, one).notes).toContain('1 sample of the model failed: 1× cannot reach http://gw/v1/models/sleep (ECONNREFUSED)');
    expect(buildReport(options, fakeRun()).notes.some((n) => n.includes('samples of the model'))).toBe(false);
  });

  it('builds a per-second timeline', () => {
    const r = buildReport(options, fakeRun());
    expect(r.timeline).toHaveLength(6);
    expect(r.timeline.map((s) => s.arrivals)).toEqual([1, 1, 5, 2, 0, 0]);
    expect(r.timeline.map((s) => s.rejections)).toEqual([0, 1, 0, 1, 0, 0]);
    expect(r.timeline.map((s) => s.errors)).toEqual([0, 0, 2, 0, 0, 0]);
    expect(r.timeline.map((s) => s.completions)).toEqual([1, 0, 0, 2, 1, 0]);
    // The lost request stays in flight to the end; the others settle.
    expect(r.timeline.map((s) => s.in_flight)).toEqual([0, 0, 3, 2, 1, 1]);
    // Backlog and slots from the sample nearest each second's end.
    expect(r.timeline.map((s) => s.backlog)).toEqual([2, 3, 40, 10, 3, 0]);
    expect(r.timeline.map((s) => s.utilization)).toEqual([0.25, 0.25, 1, 1, null, null]);
    expect(r.timeline[2]?.expected_arrivals).toBe(100);
  });

  it('drain_s: from the spike end to the first sample back at the pre-spike level', () => {
    const spike = { from_s: 2, to_s: 3 };
    // Pre-spike level is 3 (the largest before the spike), reached again at 5 s.
    expect(drainTime([sample(0, 0), sample(1000, 3), sample(2000, 2), sample(3000, 40), sample(4000, 10), sample(5000, 3)], spike)).toEqual({
      drain: { baseline: 3, drained_at_s: 5 },
      drain_s: 2,
    });
    expect(drainTime([sample(0, 0), sample(3000, 40), sample(4000, 10)], spike).drain_s).toBeNull();
    expect(drainTime([sample(0, 0)], undefined)).toEqual({ drain: null, drain_s: null });
  });

  it('worker_seconds: slots × interval, summed over samples', () => {
    expect(workerSeconds([sample(0, 0, 4), sample(1000, 0, 8), sample(1500, 0, 8)])).toBe(8);
    expect(workerSeconds([sample(0, 0, 4)])).toBeNull();
  });

  it('writes JSON with one line per timeline second', () => {
    const r = buildReport(options, fakeRun());
    const text = formatReportJson(r);
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(r)));
    expect(text.split('\n').filter((l) => l.includes('"arrivals"'))).toHaveLength(6);
    expect(text.split('\n').filter((l) => l.includes('"queue_depth"'))).toHaveLength(7);
  });

  it('renders a self-contained HTML page: no script, nothing loaded from elsewhere', () => {
    const run = fakeRun();
    const html = renderHtml(buildReport(options, run));
    expect(html).toContain('<svg');
    expect(html).toContain('class="shade"');
    for (const text of ['before', 'during', 'after', 'ECONNRESET', 'Worker utilisation']) expect(html).toContain(text);
    expect(html).not.toMatch(/<script|<link|src=|@import|url\(/i);
  });
});

describe('the model sampler', () => {
  const worker = (last_seen: string, busy_ms?: number) => ({
    worker: 'w1',
    last_seen,
    state: 'ready',
    concurrency: 4,
    ...(busy_ms === undefined ? {} : { busy_ms }),
  });
  const sampler = () => new ModelSampler({ http: undefined as never, model: 'sleep', interval_ms: 1000, clock: () => 0 });

  it('turns busy_ms between heartbeats into busy intervals, skipping restarts', () => {
    const s = sampler();
    s.record({ name: 'sleep', queue_depth: 0, workers: [worker('2026-01-01T00:00:00.000Z', 1000)] }, 0);
    s.record({ name: 'sleep', queue_depth: 5, workers: [worker('2026-01-01T00:00:00.000Z', 1000)] }, 1000);
    s.record({ name: 'sleep', queue_depth: 9, workers: [worker('2026-01-01T00:00:02.000Z', 5000)] }, 2000);
    s.record({ name: 'sleep', queue_depth: 9, workers: [worker('2026-01-01T00:00:04.000Z', 10)] }, 4000);
    expect(s.busy).toEqual([{ from_ms: 0, to_ms: 2000, busy_ms: 4000, capacity_ms: 8000 }]);
    expect(s.samples.map((x) => [x.queue_depth, x.slots])).toEqual([
      [0, 4],
      [5, 4],
      [9, 4],
      [9, 4],
    ]);
  });

  it('without busy_ms, utilisation is unknown and slots come from the model concurrency', () => {
    const s = sampler();
    const w = { worker: 'w1', last_seen: '2026-01-01T00:00:00.000Z', state: 'ready' };
    s.record({ name: 'sleep', concurrency: 3, workers: [w, { ...w, worker: 'w2' }, { ...w, worker: 'w3', state: 'failed' }] }, 0);
    s.record({ name: 'sleep', concurrency: 3, workers: [{ ...w, last_seen: '2026-01-01T00:00:02.000Z' }] }, 2000);
    expect(s.busy).toEqual([]);
    expect(s.workersWithoutBusy).toBe(2);
    expect(s.samples.map((x) => [x.queue_depth, x.slots, x.workers])).toEqual([
      [null, 6, 2],
      [null, 3, 1],
    ]);
  });
});
