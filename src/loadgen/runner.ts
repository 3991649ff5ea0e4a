import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { bearerHeaders, HttpClient } from './http-client.js';
import { describeModel } from './model-probe.js';
import type { BenchOptions } from './options.js';
import { PredictionClient } from './prediction-client.js';
import { ProgressLine, RecentLatencies, type ProgressSnapshot, type ProgressStream } from './progress.js';
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

export interface RunSignals {
  readonly stderr: ProgressStream;
  /** Stop sending; requests already sent are still followed until the drain deadline. */
  readonly stopSending?: AbortSignal;
  /** Stop following requests now: what is unfinished counts as lost. */
  readonly stopDraining?: AbortSignal;
}

/** What one loop knows of its run's end; the rest of a RunResult the loops share. */
type LoopEnd = Pick<RunResult, 'send_end_ms' | 'deadline_ms' | 'drain_timed_out' | 'interrupted'>;

/**
 * One open loop: sends one profile's schedule with its own key, whatever the responses do, and
 * follows every request to its end. Latency is measured from the scheduled send time, so a
 * generator that fell behind shows it as send lag rather than hiding the wait.
 */
class OpenLoop {
  readonly log = new RequestLog();
  readonly counts = { sent: 0, accepted: 0, rejected: 0, errors: 0, completed: 0, settled: 0 };
  sending = true;
  private readonly http: HttpClient;
  private readonly deadline = new AbortController();
  private readonly client: PredictionClient;

  constructor(
    private readonly o: BenchOptions,
    private readonly clock: () => number,
    recent: RecentLatencies,
  ) {
    this.http = new HttpClient(o.target, bearerHeaders(o.api_key));
    // Every request in flight listens for the deadline; thousands of listeners are expected.
    setMaxListeners(0, this.deadline.signal);
    const { log, counts } = this;
    this.client = new PredictionClient({
      http: this.http,
      model: o.model,
      body: o.body,
      mode: o.client,
      wait_s: o.wait_s,
      poll_ms: o.poll_ms,
      log,
      clock,
      signal: this.deadline.signal,
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
  }

  async run(io: RunSignals): Promise<LoopEnd> {
    const { o, log, clock, deadline } = this;
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
        this.counts.sent++;
        outstanding++;
        void this.client.send(i).finally(() => {
          if (--outstanding === 0 && !this.sending) allSettled();
        });
      },
      { clock_ms: clock, end_s: o.profile.duration_s, stop: stopped },
    );
    this.sending = false;
    const sendEnd = clock();
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
    this.http.close();
    return {
      send_end_ms: sendEnd,
      deadline_ms: sendEnd + o.drain_timeout_s * 1000,
      drain_timed_out: timedOut,
      interrupted: stopped?.aborted === true,
    };
  }
}

/** The progress line of all the loops together: their counts summed. */
function progressOf(loops: readonly OpenLoop[], elapsed_s: number, backlog: number | null, recent_p50_ms: number | null): ProgressSnapshot {
  const sum = (pick: (c: OpenLoop['counts']) => number) => loops.reduce((n, l) => n + pick(l.counts), 0);
  return {
    elapsed_s,
    phase: loops.some((l) => l.sending) ? 'sending' : 'draining',
    sent: sum((c) => c.sent),
    answered: sum((c) => c.accepted + c.rejected + c.errors),
    accepted: sum((c) => c.accepted),
    rejected: sum((c) => c.rejected),
    errors: sum((c) => c.errors),
    completed: sum((c) => c.completed),
    in_flight: sum((c) => c.sent - c.settled),
    backlog,
    recent_p50_ms,
  };
}

/**
 * Several open loops at once (the tenants of a --mix), started together on one clock, with one
 * sampler of the model (its queue and workers are everyone's). The loops share the target, the
 * model and the sampling settings of the first; each has its own profile, key and log. Returns a
 * result per loop, in order.
 */
export async function runOpenLoops(runs: readonly BenchOptions[], io: RunSignals): Promise<RunResult[]> {
  const first = runs[0];
  if (first === undefined) throw new Error('runOpenLoops: no runs');
  const http = new HttpClient(first.target, bearerHeaders(first.api_key));
  let origin = performance.now();
  const clock = () => performance.now() - origin;
  const sampler = new ModelSampler({ http, model: first.model, interval_ms: first.sample_ms, clock });
  const recent = new RecentLatencies(5000);
  const loops = runs.map((o) => new OpenLoop(o, clock, recent));
  const progress = new ProgressLine(io.stderr, () =>
    progressOf(loops, clock() / 1000, sampler.latest?.queue_depth ?? null, recent.p50(clock())),
  );

  // The baseline sample (busy counters before any load) is taken at time 0 of the run.
  const baseline = await describeModel(http, first.model, 10_000);
  origin = performance.now();
  const startedAt = new Date().toISOString();
  sampler.start(baseline);
  if (!first.quiet) progress.start();
  const ends = await Promise.all(loops.map((loop) => loop.run(io)));
  await sampler.stop();
  progress.stop();
  http.close();
  const endMs = clock();
  return loops.map((loop, k) => ({
    log: loop.log,
    samples: sampler.samples,
    busy: sampler.busy,
    workers_without_busy: sampler.workersWithoutBusy,
    sample_failures: Object.fromEntries(sampler.failures),
    started_at: startedAt,
    ...ends[k]!,
    end_ms: endMs,
  }));
}

/** The open-loop run of one profile: {@link runOpenLoops} with one loop. */
export async function runOpenLoop(o: BenchOptions, io: RunSignals): Promise<RunResult> {
  const [result] = await runOpenLoops([o], io);
  return result!;
}
