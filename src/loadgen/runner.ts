import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { HttpClient } from './http-client.js';
import { describeModel } from './model-probe.js';
import type { BenchOptions } from './options.js';
import { PredictionClient } from './prediction-client.js';
import { ProgressLine, RecentLatencies, type ProgressStream } from './progress.js';
import { Fate, Outcome, RequestLog } from './request-log.js';
import { pace } from './pacer.js';
import { ModelSampler, type BusyInterval, type ServerSample } from './sampler.js';
import { arrivalTimes } from './schedule.js';

export interface RunResult {
  readonly log: RequestLog;
  readonly samples: readonly ServerSample[];
  readonly busy: readonly BusyInterval[];
  /** Most workers seen at once without a busy_ms counter (utilisation unknown for them). */
  readonly workers_without_busy: number;
  /** Samples of the model that failed, counted by reason. */
  readonly sample_failures: Readonly<Record<string, number>>;
  readonly started_at: string;
  /** When sending ended: the end of the arrival window (--duration), or an interruption. */
  readonly send_end_ms: number;
  /** send_end_ms + the drain timeout: accepted requests not final by then are lost. */
  readonly deadline_ms: number;
  /** When the bench stopped following requests. */
  readonly end_ms: number;
  readonly drain_timed_out: boolean;
  readonly interrupted: boolean;
}

/**
 * The open-loop run: sends on the schedule whatever the responses do, follows every request to
 * its end, and samples the model meanwhile. Latency is measured from the scheduled send time, so
 * a generator that fell behind shows it as send lag rather than hiding the wait.
 */
export async function runOpenLoop(
  o: BenchOptions,
  io: {
    stderr: ProgressStream;
    /** Stop sending; requests already sent are still followed until the drain deadline. */
    stopSending?: AbortSignal;
    /** Stop following requests now: what is unfinished counts as lost. */
    stopDraining?: AbortSignal;
  },
): Promise<RunResult> {
  const http = new HttpClient(o.target);
  const log = new RequestLog();
  let origin = performance.now();
  const clock = () => performance.now() - origin;
  const sampler = new ModelSampler({ http, model: o.model, interval_ms: o.sample_ms, clock });
  const deadline = new AbortController();
  // Every request in flight listens for the deadline; thousands of listeners are expected.
  setMaxListeners(0, deadline.signal);
  const recent = new RecentLatencies(5000);
  const counts = { sent: 0, accepted: 0, rejected: 0, errors: 0, completed: 0, settled: 0 };
  let sending = true;

  const client = new PredictionClient({
    http,
    model: o.model,
    body: o.body,
    mode: o.client,
    wait_s: o.wait_s,
    poll_ms: o.poll_ms,
    log,
    clock,
    signal: deadline.signal,
    observer: {
      answered: (i) => {
        const outcome = log.outcome[i];
        if (outcome === Outcome.accepted) counts.accepted++;
        else {
          if (outcome === Outcome.rejected) counts.rejected++;
          else counts.errors++;
          counts.settled++;
        }
      },
      finished: (i) => {
        counts.completed++;
        counts.settled++;
        recent.push(clock(), log.latencyMs(i));
      },
    },
  });
  const progress = new ProgressLine(io.stderr, () => ({
    elapsed_s: clock() / 1000,
    phase: sending ? 'sending' : 'draining',
    sent: counts.sent,
    answered: counts.accepted + counts.rejected + counts.errors,
    accepted: counts.accepted,
    rejected: counts.rejected,
    errors: counts.errors,
    completed: counts.completed,
    in_flight: counts.sent - counts.settled,
    backlog: sampler.latest?.queue_depth ?? null,
    recent_p50_ms: recent.p50(clock()),
  }));

  // The baseline sample (busy counters before any load) is taken at time 0 of the run.
  const baseline = await describeModel(http, o.model, 10_000);
  origin = performance.now();
  const startedAt = new Date().toISOString();
  sampler.start(baseline);
  if (!o.quiet) progress.start();

  let outstanding = 0;
  let allSettled: () => void = () => undefined;
  const settledPromise = new Promise<void>((resolve) => (allSettled = resolve));
  const stopped = io.stopSending;

  // The arrival window lasts the whole --duration even past the last arrival, so quiet tails
  // are sampled and the drain deadline counts from the window's end.
  await pace(
    arrivalTimes(o.profile, { process: o.arrivals, seed: o.seed }),
    (t_s) => {
      const i = log.add(t_s * 1000, o.profile.phaseIndex(t_s));
      counts.sent++;
      outstanding++;
      void client.send(i).finally(() => {
        if (--outstanding === 0 && !sending) allSettled();
      });
    },
    { clock_ms: clock, end_s: o.profile.duration_s, stop: stopped },
  );
  sending = false;
  const sendEnd = clock();
  const deadlineMs = sendEnd + o.drain_timeout_s * 1000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    deadline.abort();
  }, o.drain_timeout_s * 1000);
  const onStopDraining = () => deadline.abort();
  if (io.stopDraining?.aborted === true) deadline.abort();
  io.stopDraining?.addEventListener('abort', onStopDraining, { once: true });
  if (outstanding === 0) allSettled();
  await settledPromise;
  clearTimeout(timer);
  io.stopDraining?.removeEventListener('abort', onStopDraining);

  for (let i = 0; i < log.size; i++) {
    if (log.outcome[i] === Outcome.accepted && log.fate[i] === Fate.none) log.fate[i] = Fate.lost;
  }
  await sampler.stop();
  progress.stop();
  http.close();
  return {
    log,
    samples: sampler.samples,
    busy: sampler.busy,
    workers_without_busy: sampler.workersWithoutBusy,
    sample_failures: Object.fromEntries(sampler.failures),
    started_at: startedAt,
    send_end_ms: sendEnd,
    deadline_ms: deadlineMs,
    end_ms: clock(),
    drain_timed_out: timedOut,
    interrupted: stopped?.aborted === true,
  };
}
