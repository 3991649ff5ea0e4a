import { randomBytes } from 'node:crypto';
import type { BenchOptions } from './options.js';
import type { TimeWindow } from './profiles.js';
import { Fate, Outcome } from './request-log.js';
import type { RunResult } from './runner.js';
import type { ServerSample } from './sampler.js';
import { distribution, NumberList, type Distribution } from './stats.js';
import { buildTimeline, type TimelineSecond } from './timeline.js';

/** Counts for a set of requests. accepted + rejected + errored = sent; completed + lost = accepted. */
export interface Tally {
  readonly sent: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly errored: number;
  readonly completed: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly lost: number;
  readonly latency_ms: Distribution;
}

export interface PhaseReport extends Tally {
  /** The scheduled-time windows (seconds) the phase covers. */
  readonly windows: readonly TimeWindow[];
  /** The server's split of the phase's completed requests. */
  readonly queue_ms: Distribution;
  readonly inference_ms: Distribution;
}

export interface BenchReport extends Tally {
  readonly report_version: 1;
  readonly started_at: string;
  readonly target: string;
  readonly model: string;
  readonly profile: string;
  readonly duration_s: number;
  /** From the start until the bench stopped following requests (sending plus draining). */
  readonly elapsed_s: number;
  /** Counts of the errored requests by HTTP status ("500") or transport failure ("ECONNRESET"). */
  readonly errors: Readonly<Record<string, number>>;
  /** Whether the accounting identities hold (they should, always). */
  readonly reconciles: boolean;
  readonly send_lag_ms: Distribution;
  readonly queue_ms: Distribution;
  readonly inference_ms: Distribution;
  readonly phases: Readonly<Record<string, PhaseReport>>;
  readonly spike: TimeWindow | null;
  readonly backlog_peak: number | null;
  readonly backlog_peak_at_s: number | null;
  readonly drain: { readonly baseline: number | null; readonly drained_at_s: number | null } | null;
  readonly drain_s: number | null;
  readonly worker_seconds: number | null;
  readonly worker_busy_fraction: number | null;
  readonly workers_peak: number;
  readonly slots_peak: number;
  readonly drain_timed_out: boolean;
  readonly interrupted: boolean;
  readonly notes: readonly string[];
  readonly settings: Readonly<Record<string, string | number | boolean | null>>;
  readonly timeline: readonly TimelineSecond[];
  /** Every sample of GET /v1/models/{model}, at the --sample-ms resolution. */
  readonly samples: readonly ReportSample[];
}

export interface ReportSample {
  readonly t_s: number;
  readonly queue_depth: number | null;
  readonly slots: number;
  readonly workers: number;
}

class TallyBuilder {
  sent = 0;
  accepted = 0;
  rejected = 0;
  errored = 0;
  succeeded = 0;
  failed = 0;
  lost = 0;
  readonly latencies = new NumberList();
  readonly queue = new NumberList();
  readonly inference = new NumberList();

  build(): Tally {
    return {
      sent: this.sent,
      accepted: this.accepted,
      rejected: this.rejected,
      errored: this.errored,
      completed: this.succeeded + this.failed,
      succeeded: this.succeeded,
      failed: this.failed,
      lost: this.lost,
      latency_ms: distribution(this.latencies.values()),
    };
  }
}

const round = (x: number, places: number) => Math.round(x * 10 ** places) / 10 ** places;

/**
 * drain_s: seconds from the spike's end to the first sample at or after it whose queue_depth is
 * at or below the pre-spike level (the largest queue_depth sampled from the start up to the
 * spike's start). Null without a spike, or if no such sample came before the bench stopped.
 */
export function drainTime(samples: readonly ServerSample[], spike: TimeWindow | undefined) {
  if (spike === undefined) return { drain: null, drain_s: null };
  let baseline: number | null = null;
  for (const s of samples) {
    if (s.t_ms > spike.from_s * 1000) break;
    if (s.queue_depth !== null) baseline = Math.max(baseline ?? 0, s.queue_depth);
  }
  const level = baseline ?? 0;
  const drained = samples.find((s) => s.t_ms >= spike.to_s * 1000 && s.queue_depth !== null && s.queue_depth <= level);
  const drainedAt = drained === undefined ? null : round(drained.t_ms / 1000, 3);
  return {
    drain: { baseline: level, drained_at_s: drainedAt },
    drain_s: drainedAt === null ? null : round(drainedAt - spike.to_s, 3),
  };
}

/** Σ over sample intervals of the slots at the interval's start × its length, in slot-seconds. */
export function workerSeconds(samples: readonly ServerSample[]): number | null {
  if (samples.length < 2) return null;
  let total = 0;
  for (let k = 0; k + 1 < samples.length; k++) {
    const a = samples[k]!;
    const b = samples[k + 1]!;
    total += (a.slots * (b.t_ms - a.t_ms)) / 1000;
  }
  return round(total, 2);
}

export function buildReport(o: BenchOptions, run: RunResult): BenchReport {
  const { log, samples } = run;
  const phases = o.profile.phases.map(() => new TallyBuilder());
  const all = new TallyBuilder();
  const errors: Record<string, number> = {};
  for (let i = 0; i < log.size; i++) {
    const tallies = [all, phases[log.phase[i] ?? 0] ?? all];
    for (const t of tallies) {
      t.sent++;
      switch (log.outcome[i]) {
        case Outcome.accepted:
          t.accepted++;
          break;
        case Outcome.rejected:
          t.rejected++;
          break;
        default:
          // Pending cannot remain after the run: an unanswered POST is recorded as an error.
          t.errored++;
      }
      const fate = log.fate[i];
      if (fate === Fate.lost) t.lost++;
      if (fate === Fate.succeeded || fate === Fate.failed) {
        if (fate === Fate.succeeded) t.succeeded++;
        else t.failed++;
        t.latencies.push(log.latencyMs(i));
        t.queue.push(log.queueMs[i] ?? Number.NaN);
        t.inference.push(log.inferenceMs[i] ?? Number.NaN);
      }
    }
    if (log.outcome[i] === Outcome.error) {
      const key = log.errorKeys[log.errorKey[i] ?? 0] ?? 'unknown';
      errors[key] = (errors[key] ?? 0) + 1;
    }
  }
  const total = all.build();
  const lags = new Float64Array(log.size);
  for (let i = 0; i < log.size; i++) lags[i] = log.lagMs(i);

  let backlogPeak: number | null = null;
  let backlogPeakAt: number | null = null;
  for (const s of samples) {
    if (s.queue_depth !== null && (backlogPeak === null || s.queue_depth > backlogPeak)) {
      backlogPeak = s.queue_depth;
      backlogPeakAt = round(s.t_ms / 1000, 3);
    }
  }
  let busy = 0;
  let capacity = 0;
  for (const b of run.busy) {
    busy += b.busy_ms;
    capacity += b.capacity_ms;
  }
  const { drain, drain_s } = drainTime(samples, o.profile.spike);
  const errored = Object.values(errors).reduce((a, b) => a + b, 0);
  const reconciles =
    total.accepted + total.rejected + total.errored === total.sent &&
    total.completed + total.lost === total.accepted &&
    errored === total.errored;

  const notes: string[] = [];
  if (run.workers_without_busy > 0) notes.push('some workers report no busy_ms: worker utilisation is unknown for them');
  if (run.busy.length === 0) notes.push('no worker reported busy time during the run: worker_busy_fraction is unknown');
  if (run.drain_timed_out) notes.push(`requests still unfinished ${o.drain_timeout_s} s after the arrival window ended were counted lost`);
  if (run.interrupted) notes.push('the run was interrupted: requests scheduled after the interruption were not sent');
  const unanswered = errors['no_response'] ?? 0;
  if (unanswered > 0) {
    notes.push(
      `${unanswered} requests had no answer when the bench stopped following them (errors.no_response); ` +
        'a gateway holds a request (Prefer: wait) only after queueing it, so they were probably accepted',
    );
  }
  const refused = (errors['401'] ?? 0) + (errors['403'] ?? 0);
  if (refused > 0) {
    notes.push(
      `${refused} requests were refused for their API key (errors 401: no key, or one the gateway does not accept; ` +
        '403: a key without the predict scope); see --key',
    );
  }
  const sampleFailures = Object.entries(run.sample_failures).sort(([, a], [, b]) => b - a);
  if (sampleFailures.length > 0) {
    const count = sampleFailures.reduce((n, [, c]) => n + c, 0);
    const reasons = sampleFailures.map(([reason, c]) => `${c}× ${reason}`).join('; ');
    notes.push(`${count} ${count === 1 ? 'sample' : 'samples'} of the model failed: ${reasons}`);
  }
  if (o.profile.spike !== undefined && drain_s === null) notes.push('the backlog did not return to its pre-spike level before the bench stopped');

  const phaseReports: Record<string, PhaseReport> = {};
  o.profile.phases.forEach((p, k) => {
    const b = phases[k]!;
    phaseReports[p.name] = { windows: p.windows, ...b.build(), queue_ms: distribution(b.queue.values()), inference_ms: distribution(b.inference.values()) };
  });
  return {
    report_version: 1,
    started_at: run.started_at,
    target: o.target,
    model: o.model,
    profile: o.profile.kind,
    duration_s: o.profile.duration_s,
    elapsed_s: round(run.end_ms / 1000, 3),
    ...total,
    errors,
    reconciles,
    send_lag_ms: distribution(lags),
    queue_ms: distribution(all.queue.values()),
    inference_ms: distribution(all.inference.values()),
    phases: phaseReports,
    spike: o.profile.spike ?? null,
    backlog_peak: backlogPeak,
    backlog_peak_at_s: backlogPeakAt,
    drain,
    drain_s,
    worker_seconds: workerSeconds(samples),
    worker_busy_fraction: capacity > 0 ? round(busy / capacity, 4) : null,
    workers_peak: samples.reduce((m, s) => Math.max(m, s.workers), 0),
    slots_peak: samples.reduce((m, s) => Math.max(m, s.slots), 0),
    drain_timed_out: run.drain_timed_out,
    interrupted: run.interrupted,
    notes,
    settings: o.settings,
    timeline: buildTimeline({ log, profile: o.profile, samples, busy: run.busy, end_ms: run.end_ms }),
    samples: samples.map((s) => ({ t_s: round(s.t_ms / 1000, 3), queue_depth: s.queue_depth, slots: s.slots, workers: s.workers })),
  };
}

/** Report arrays written one element a line, so a long run's report stays readable. */
const rowArrays: ReadonlySet<string> = new Set(['timeline', 'samples']);

/**
 * Indented JSON, but one line per timeline second and per sample, wherever they sit (a mix
 * report has them once per tenant).
 */
export function formatReportJson(report: object): string {
  const rows: (readonly unknown[])[] = [];
  // A random tag, so no string in the report (a file name, a tenant's name) can pass for a marker.
  const tag = `rows_${randomBytes(8).toString('hex')}_`;
  const marked = JSON.stringify(
    report,
    (key, value: unknown) => {
      if (!rowArrays.has(key) || !Array.isArray(value)) return value;
      rows.push(value);
      return `${tag}${rows.length - 1}`;
    },
    2,
  );
  const render = (items: readonly unknown[], indent: string) =>
    items.length === 0 ? '[]' : `[\n${items.map((x) => `${indent}  ${JSON.stringify(x)}`).join(',\n')}\n${indent}]`;
  const marker = new RegExp(`^( *)(.*)"${tag}(\\d+)"`, 'gm');
  return `${marked.replace(marker, (_, indent: string, head: string, k: string) => `${indent}${head}${render(rows[Number(k)] ?? [], indent)}`)}\n`;
}
