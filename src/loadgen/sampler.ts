import type { HttpClient } from './http-client.js';
import { describeModel, type ModelSummary } from './model-probe.js';

/** One look at the model from the server's side. Times are ms since the start of the run. */
export interface ServerSample {
  readonly t_ms: number;
  /** Requests queued or running (null if the gateway did not say). */
  readonly queue_depth: number | null;
  /** Slots of the workers serving the model: Σ concurrency over ready workers. */
  readonly slots: number;
  readonly workers: number;
}

/**
 * Busy time reported by one worker between two of its heartbeats. The ratio busy/capacity is
 * exact (both come from the worker's own counters and clock); where it sits on the run's
 * timeline is when the bench saw the two heartbeats, so up to a sample interval late.
 */
export interface BusyInterval {
  readonly from_ms: number;
  readonly to_ms: number;
  readonly busy_ms: number;
  /** Slot-milliseconds the worker had: concurrency × the time between its heartbeats. */
  readonly capacity_ms: number;
}

interface Seen {
  readonly last_seen: string;
  readonly busy_ms: number | undefined;
  readonly observed_ms: number;
}

/** Polls GET /v1/models/{model} every `interval_ms`, never two at a time. */
export class ModelSampler {
  readonly samples: ServerSample[] = [];
  readonly busy: BusyInterval[] = [];
  /** Workers that reported no busy_ms, so utilisation cannot be known for them. */
  workersWithoutBusy = 0;
  /** Samples that failed, by reason (the gateway's answer, or why it could not be reached). */
  readonly failures = new Map<string, number>();
  private readonly seen = new Map<string, Seen>();
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly o: { http: HttpClient; model: string; interval_ms: number; clock: () => number },
  ) {}

  get latest(): ServerSample | undefined {
    return this.samples[this.samples.length - 1];
  }

  /** Records the baseline (busy counters before any load) at the current time and starts sampling. */
  start(baseline: ModelSummary): void {
    this.record(baseline, this.o.clock());
    const tick = () => {
      if (this.stopped) return;
      if (this.current === undefined) this.current = this.sampleOnce().finally(() => (this.current = undefined));
      this.timer = setTimeout(tick, this.o.interval_ms - (this.o.clock() % this.o.interval_ms));
    };
    this.timer = setTimeout(tick, this.o.interval_ms);
  }

  /** Stops the periodic samples and takes a last one, so the run's end is covered. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current;
    await this.sampleOnce();
  }

  private async sampleOnce(): Promise<void> {
    let summary: ModelSummary;
    try {
      summary = await describeModel(this.o.http, this.o.model, Math.max(this.o.interval_ms * 2, 2000));
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
      return;
    }
    this.record(summary, this.o.clock());
  }

  /** Public for tests: folds one model summary into the samples and busy intervals. */
  record(summary: ModelSummary, now: number): void {
    let slots = 0;
    let workers = 0;
    let withoutBusy = 0;
    for (const w of summary.workers) {
      if (w.state !== 'ready') continue;
      workers++;
      const concurrency = w.concurrency ?? summary.concurrency ?? 1;
      slots += concurrency;
      if (w.busy_ms === undefined) withoutBusy++;
      const before = this.seen.get(w.worker);
      if (before !== undefined && before.last_seen !== w.last_seen) {
        const span = Date.parse(w.last_seen) - Date.parse(before.last_seen);
        const busy = w.busy_ms !== undefined && before.busy_ms !== undefined ? w.busy_ms - before.busy_ms : Number.NaN;
        // A negative difference is a restarted worker (its counter began again): skip that gap.
        if (span > 0 && busy >= 0) {
          this.busy.push({ from_ms: before.observed_ms, to_ms: now, busy_ms: busy, capacity_ms: concurrency * span });
        }
      }
      if (before?.last_seen !== w.last_seen) {
        this.seen.set(w.worker, { last_seen: w.last_seen, busy_ms: w.busy_ms, observed_ms: now });
      }
    }
    this.workersWithoutBusy = Math.max(this.workersWithoutBusy, withoutBusy);
    const depth = typeof summary.queue_depth === 'number' ? summary.queue_depth : null;
    this.samples.push({ t_ms: now, queue_depth: depth, slots, workers });
  }
}
