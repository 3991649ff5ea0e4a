/**
 * Arrival-rate profiles. Each is a rate over time, λ(t), given with its cumulative Λ(t) and the
 * inverse of Λ, so one schedule generator serves them all: the k-th arrival of a unit-rate
 * process at "expected count" x lands at Λ⁻¹(x) (time-change of a Poisson process).
 */

/** A span of scheduled time, in seconds from the start of the run. */
export interface TimeWindow {
  readonly from_s: number;
  readonly to_s: number;
}

/** A named part of the run; a request belongs to the phase its scheduled send time falls in. */
export interface PhaseSpec {
  readonly name: string;
  readonly windows: readonly TimeWindow[];
}

interface ProfileBase {
  readonly duration_s: number;
  readonly phases: readonly PhaseSpec[];
  /** Index into `phases` of the phase that holds scheduled time `t_s`. */
  phaseIndex(t_s: number): number;
  /** The burst's spike window, shaded in charts and used for drain_s. */
  readonly spike?: TimeWindow;
}

export interface RateProfile extends ProfileBase {
  readonly kind: 'steady' | 'burst' | 'diurnal';
  /** Requests per second at time t. */
  rateAt(t_s: number): number;
  /** Expected arrivals in [0, t]. */
  cumulative(t_s: number): number;
  /** The earliest t with cumulative(t) = x. */
  inverse(x: number): number;
}

export interface ReplayProfile extends ProfileBase {
  readonly kind: 'replay';
  /** Scheduled send times in seconds, ascending. */
  readonly arrivals: Float64Array;
}

export type Profile = RateProfile | ReplayProfile;

const whole = (duration_s: number): PhaseSpec[] => [{ name: 'all', windows: [{ from_s: 0, to_s: duration_s }] }];

export function steadyProfile(o: { rate: number; duration_s: number }): RateProfile {
  return {
    kind: 'steady',
    duration_s: o.duration_s,
    phases: whole(o.duration_s),
    phaseIndex: () => 0,
    rateAt: () => o.rate,
    cumulative: (t) => o.rate * t,
    inverse: (x) => x / o.rate,
  };
}

/** `rate` outside the spike, `spike_rate` (the whole rate, not an addition) inside it. */
export function burstProfile(o: {
  rate: number;
  spike_rate: number;
  spike_at_s: number;
  spike_for_s: number;
  duration_s: number;
}): RateProfile {
  const start = o.spike_at_s;
  const end = o.spike_at_s + o.spike_for_s;
  const atStart = o.rate * start;
  const atEnd = atStart + o.spike_rate * (end - start);
  return {
    kind: 'burst',
    duration_s: o.duration_s,
    spike: { from_s: start, to_s: end },
    phases: [
      { name: 'before', windows: [{ from_s: 0, to_s: start }] },
      { name: 'during', windows: [{ from_s: start, to_s: end }] },
      { name: 'after', windows: [{ from_s: end, to_s: o.duration_s }] },
    ],
    phaseIndex: (t) => (t < start ? 0 : t < end ? 1 : 2),
    rateAt: (t) => (t >= start && t < end ? o.spike_rate : o.rate),
    cumulative: (t) => (t < start ? o.rate * t : t < end ? atStart + o.spike_rate * (t - start) : atEnd + o.rate * (t - end)),
    inverse: (x) => (x < atStart ? x / o.rate : x < atEnd ? start + (x - atStart) / o.spike_rate : end + (x - atEnd) / o.rate),
  };
}

/**
 * λ(t) = rate × (1 − amplitude × cos(2πt / period)): starts at the trough (night), peaks at
 * half a period. `amplitude` is a fraction of the mean in [0, 1], so the rate never goes negative.
 * Phases: `low` where λ is under the mean, `high` where it is at or over it.
 */
export function diurnalProfile(o: { rate: number; amplitude: number; period_s: number; duration_s: number }): RateProfile {
  const { rate: m, amplitude: a, period_s: p } = o;
  const w = (2 * Math.PI) / p;
  const cumulative = (t: number) => m * (t - (a / w) * Math.sin(w * t));
  const low: TimeWindow[] = [];
  const high: TimeWindow[] = [];
  for (let k = 0; k * p - p / 4 < o.duration_s; k++) {
    const clip = (from: number, to: number, into: TimeWindow[]) => {
      const f = Math.max(0, from);
      const t = Math.min(o.duration_s, to);
      if (t > f) into.push({ from_s: f, to_s: t });
    };
    clip(k * p - p / 4, k * p + p / 4, low);
    clip(k * p + p / 4, k * p + (3 * p) / 4, high);
  }
  return {
    kind: 'diurnal',
    duration_s: o.duration_s,
    phases: [
      { name: 'low', windows: low },
      { name: 'high', windows: high },
    ],
    phaseIndex: (t) => (Math.cos(w * t) > 0 ? 0 : 1),
    rateAt: (t) => m * (1 - a * Math.cos(w * t)),
    cumulative,
    inverse: (x) => {
      // Λ(t) is within m·a/w of m·t, which brackets the root; Λ is non-decreasing, so bisect.
      const slack = a / w;
      let lo = Math.max(0, x / m - slack);
      let hi = x / m + slack;
      for (let i = 0; i < 64 && hi - lo > 1e-9; i++) {
        const mid = (lo + hi) / 2;
        if (cumulative(mid) < x) lo = mid;
        else hi = mid;
      }
      return hi;
    },
  };
}

/** Arrivals read from a file; scheduled times past `duration_s` are not sent. */
export function replayProfile(o: { arrivals: Float64Array; duration_s: number }): ReplayProfile {
  return { kind: 'replay', duration_s: o.duration_s, arrivals: o.arrivals, phases: whole(o.duration_s), phaseIndex: () => 0 };
}
