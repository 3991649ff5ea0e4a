import { Outcome, type RequestLog } from './request-log.js';
import type { Profile } from './profiles.js';
import type { BusyInterval, ServerSample } from './sampler.js';
import { percentile } from './stats.js';

/** What happened in one second of the run, [t, t + 1). */
export interface TimelineSecond {
  readonly t: number;
  /** Requests scheduled in this second. */
  readonly arrivals: number;
  /** What the profile expects on average in this second (null for replay). */
  readonly expected_arrivals: number | null;
  /** Requests whose POST was answered 429/503 in this second. */
  readonly rejections: number;
  /** Requests whose POST failed otherwise in this second. */
  readonly errors: number;
  /** Requests whose final result became known in this second. */
  readonly completions: number;
  /** queue_depth of the model at the sample nearest the end of this second. */
  readonly backlog: number | null;
  /** Requests sent and not yet settled (final, refused or failed) at the end of this second. */
  readonly in_flight: number;
  /** Latency (scheduled send → final known) of the requests completed in this second. */
  readonly latency_p50_ms: number | null;
  readonly latency_p99_ms: number | null;
  /** Busy slot-time ÷ slot-time of the workers in this second (null when unknown). */
  readonly utilization: number | null;
  /** Worker slots at the sample nearest the end of this second. */
  readonly slots: number | null;
}

const second = (ms: number) => Math.floor(ms / 1000);

export function buildTimeline(o: {
  log: RequestLog;
  profile: Profile;
  samples: readonly ServerSample[];
  busy: readonly BusyInterval[];
  end_ms: number;
}): TimelineSecond[] {
  const { log } = o;
  const n = Math.max(1, Math.ceil(o.end_ms / 1000));
  const arrivals = new Uint32Array(n);
  const rejections = new Uint32Array(n);
  const errors = new Uint32Array(n);
  const completions = new Uint32Array(n);
  const inFlightDelta = new Int32Array(n + 1);
  const latencies: number[][] = Array.from({ length: n }, () => []);
  const at = (ms: number) => Math.min(n - 1, Math.max(0, second(ms)));
  for (let i = 0; i < log.size; i++) {
    arrivals[at(log.scheduled[i] ?? 0)]!++;
    const sent = log.sent[i] ?? Number.NaN;
    if (!Number.isNaN(sent)) inFlightDelta[at(sent)]!++;
    const outcome = log.outcome[i];
    const answered = log.answered[i] ?? Number.NaN;
    if (outcome === Outcome.rejected) rejections[at(answered)]!++;
    if (outcome === Outcome.error) errors[at(answered)]!++;
    const final = log.final[i] ?? Number.NaN;
    if (!Number.isNaN(final)) {
      completions[at(final)]!++;
      latencies[at(final)]!.push(log.latencyMs(i));
    }
    // Lost requests stay in flight to the end of the run.
    const settled = log.settledMs(i);
    if (!Number.isNaN(sent) && !Number.isNaN(settled)) inFlightDelta[at(settled)]!--;
  }

  const busy = new Float64Array(n);
  const capacity = new Float64Array(n);
  for (const b of o.busy) {
    const span = b.to_ms - b.from_ms;
    if (span <= 0) continue;
    // Spread the interval's busy and capacity over the seconds it covers, in proportion.
    for (let s = at(b.from_ms); s <= at(b.to_ms); s++) {
      const overlap = Math.min(b.to_ms, (s + 1) * 1000) - Math.max(b.from_ms, s * 1000);
      if (overlap <= 0) continue;
      busy[s]! += (b.busy_ms * overlap) / span;
      capacity[s]! += (b.capacity_ms * overlap) / span;
    }
  }

  const out: TimelineSecond[] = [];
  let sample = 0;
  let inFlight = 0;
  for (let s = 0; s < n; s++) {
    // Samples fall near whole seconds, so "the last sample before the end" would often be the
    // one from the second's start; the nearest to the end matches in_flight, taken at the end.
    const end = (s + 1) * 1000;
    while (sample + 1 < o.samples.length && Math.abs((o.samples[sample + 1]?.t_ms ?? Infinity) - end) <= Math.abs((o.samples[sample]?.t_ms ?? Infinity) - end)) sample++;
    const nearest = o.samples[sample];
    const backlog = nearest?.queue_depth ?? null;
    const slots = nearest?.slots ?? null;
    inFlight += inFlightDelta[s] ?? 0;
    const sorted = latencies[s]!.sort((a, b) => a - b);
    const round = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);
    const expected =
      o.profile.kind === 'replay' || s >= o.profile.duration_s
        ? null
        : o.profile.cumulative(Math.min(s + 1, o.profile.duration_s)) - o.profile.cumulative(s);
    out.push({
      t: s,
      arrivals: arrivals[s] ?? 0,
      expected_arrivals: expected === null ? null : Math.round(expected * 100) / 100,
      rejections: rejections[s] ?? 0,
      errors: errors[s] ?? 0,
      completions: completions[s] ?? 0,
      backlog,
      in_flight: inFlight,
      latency_p50_ms: round(percentile(sorted, 50)),
      latency_p99_ms: round(percentile(sorted, 99)),
      utilization: (capacity[s] ?? 0) > 0 ? Math.round(((busy[s] ?? 0) / (capacity[s] ?? 1)) * 1000) / 1000 : null,
      slots,
    });
  }
  return out;
}
