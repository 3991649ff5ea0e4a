/**
 * Queueing formulas for `spillway plan`: Erlang B (loss), Erlang C (delay), M/M/c waiting
 * times, and M/D/c waiting times both exactly and by approximation. Pure functions of the
 * offered load `a` (Erlangs: arrival rate × mean service time) and the number of servers `c`.
 *
 * Erlang B is computed by the recurrence B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1)): every
 * step stays in [0, 1], so it neither overflows (as aᶜ/c! does past c ≈ 170) nor loses
 * precision, and c of several thousand costs microseconds. Erlang C is derived from it.
 */

/** Erlang B: the probability that an arrival finds all `c` servers busy and is lost (M/G/c/c). */
export function erlangB(a: number, c: number): number {
  checkLoad(a, c);
  let b = 1;
  for (let k = 1; k <= c; k++) b = (a * b) / (k + a * b);
  return b;
}

/**
 * The smallest c with Erlang B(a, c) ≤ target, with the B it reaches. One pass of the same
 * recurrence, so the search costs no more than a single evaluation at the answer.
 */
export function erlangBServersFor(a: number, target: number, maxServers: number): { servers: number; blocking: number } | undefined {
  checkLoad(a, 0);
  if (!(target > 0 && target < 1)) throw new RangeError(`blocking target must be in (0, 1), got ${target}`);
  let b = 1;
  for (let k = 1; k <= maxServers; k++) {
    b = (a * b) / (k + a * b);
    if (b <= target) return { servers: k, blocking: b };
  }
  return undefined;
}

/**
 * Erlang C: the probability that an arrival has to wait (M/M/c). 1 when a ≥ c, where the
 * queue never empties.
 */
export function erlangC(a: number, c: number): number {
  checkLoad(a, c);
  if (c === 0 || a >= c) return 1;
  const b = erlangB(a, c);
  return (c * b) / (c - a * (1 - b));
}

/** Waiting time (before service starts) of a c-server queue: P(wait > 0), mean and quantiles. */
export interface WaitModel {
  /** Probability that an arrival waits at all. */
  readonly pWait: number;
  /** Mean wait, in the unit of the service time. */
  readonly meanWait: number;
  /** The p-quantile of the wait (p in [0, 1)), in the unit of the service time. */
  quantile(p: number): number;
}

/**
 * M/M/c waiting time: P(W > t) = C·exp(−(c − a)·t / S), so the mean is C·S / (c − a) and the
 * p-quantile is S·ln(C / (1 − p)) / (c − a), or 0 when C ≤ 1 − p. Needs a < c.
 * `serviceTime` is the mean service time S; the result is in the same unit.
 */
export function mmcWait(a: number, c: number, serviceTime: number): WaitModel {
  return scaledWait(a, c, serviceTime, 1);
}

/**
 * M/G/c waiting time by the Allen–Cunneen approximation: the M/M/c wait scaled by
 * (1 + Cs²)/2, Cs the coefficient of variation of the service time (0 for deterministic
 * service, 1 for exponential). The tail keeps Erlang C as P(wait > 0) and shrinks the
 * exponential by the same factor, as Kingman's heavy-traffic limit does.
 *
 * For M/D/c (Cs = 0) the mean is exact for c = 1 (Pollaczek–Khinchine) and the tail is
 * accurate in heavy traffic, but at light load the p99 comes out low (M/D/5 at 2 Erlangs:
 * 0.30·S against a true 0.38·S), so `mdcExactWait` is preferred where it is affordable.
 */
export function mgcWait(a: number, c: number, serviceTime: number, cs2: number): WaitModel {
  if (!(cs2 >= 0)) throw new RangeError(`squared coefficient of variation must be ≥ 0, got ${cs2}`);
  return scaledWait(a, c, serviceTime, (1 + cs2) / 2);
}

/** M/D/c: deterministic service, the Allen–Cunneen approximation with Cs = 0. */
export function mdcWait(a: number, c: number, serviceTime: number): WaitModel {
  return mgcWait(a, c, serviceTime, 0);
}

/**
 * The exact M/D/c waiting time (FCFS, Poisson arrivals, every service S), after Crommelin
 * (1932). With deterministic service, every customer in service at time t has left by t + S
 * and nobody else has, so the number waiting at times t, t + S, t + 2S, … follows
 * Q' = max(0, Q + A − c), A ~ Poisson(a). Following one arrival from a time S − u before it
 * (0 ≤ u < S), its place in line drops by c every S, which gives
 *
 *   P(W ≤ kS + u) = P(Q + Poisson(a·(1 − u/S)) ≤ (k + 1)·c − 1),   k = 0, 1, …
 *
 * with Q the number waiting at an arbitrary time, and E[W] = E[Q] / λ by Little's law. Q's
 * distribution is found by iterating the recursion from an empty queue; near saturation that
 * takes many steps, so past `budget` multiply-adds this returns undefined and the caller
 * falls back to `mdcWait`, whose heavy-traffic tail is accurate there.
 */
export function mdcExactWait(a: number, c: number, serviceTime: number, budget = 1e7): WaitModel | undefined {
  checkLoad(a, c);
  if (!(serviceTime > 0 && Number.isFinite(serviceTime))) throw new RangeError(`service time must be > 0, got ${serviceTime}`);
  if (!(a < c)) throw new RangeError(`offered load ${a} needs more than ${c} servers: the queue grows without bound`);
  const waiting = waitingCount(a, c, budget);
  if (waiting === undefined) return undefined;
  const cumulative = new Float64Array(waiting.length);
  let meanQ = 0;
  let running = 0;
  for (let q = 0; q < waiting.length; q++) {
    running += waiting[q]!;
    cumulative[q] = running;
    meanQ += q * waiting[q]!;
  }
  const atMost = (q: number): number => (q < 0 ? 0 : (cumulative[Math.min(q, cumulative.length - 1)] ?? 1));
  // P(W ≤ kS + u) by the formula above.
  const cdf = (k: number, u: number): number => {
    const arrivals = poisson(a * (1 - u / serviceTime));
    const limit = (k + 1) * c - 1;
    let p = 0;
    for (let i = 0; i < arrivals.p.length; i++) p += arrivals.p[i]! * atMost(limit - arrivals.start - i);
    return p;
  };
  const pNoWait = cdf(0, 0);
  return {
    pWait: Math.max(0, 1 - pNoWait),
    meanWait: a === 0 ? 0 : (meanQ * serviceTime) / a,
    quantile(p: number): number {
      if (!(p >= 0 && p < 1)) throw new RangeError(`quantile must be in [0, 1), got ${p}`);
      if (pNoWait >= p) return 0;
      // W just below (k + 1)S is Q ≤ (k + 1)c − 1: find the S-long interval holding the quantile.
      let k = 0;
      while (atMost((k + 1) * c - 1) < p) k++;
      let low = 0;
      let high = serviceTime;
      for (let i = 0; i < 60 && high - low > serviceTime * 1e-12; i++) {
        const mid = (low + high) / 2;
        if (cdf(k, mid) >= p) high = mid;
        else low = mid;
      }
      return k * serviceTime + high;
    },
  };
}

/** Stationary distribution of the number waiting at an arbitrary time in M/D/c. */
function waitingCount(a: number, c: number, budget: number): Float64Array | undefined {
  const arrivals = poisson(a);
  let dist = Float64Array.of(1);
  let previousChange = Number.POSITIVE_INFINITY;
  let work = 0;
  for (;;) {
    const next = new Float64Array(Math.max(1, dist.length + arrivals.start + arrivals.p.length - c));
    let empty = 0;
    for (let q = 0; q < dist.length; q++) {
      const w = dist[q]!;
      if (w === 0) continue;
      for (let i = 0; i < arrivals.p.length; i++) {
        const to = q + arrivals.start + i - c;
        const v = w * arrivals.p[i]!;
        if (to <= 0) empty += v;
        else next[to]! += v;
      }
    }
    next[0]! += empty;
    work += dist.length * arrivals.p.length;
    let end = next.length;
    while (end > 1 && next[end - 1]! < 1e-18) end--;
    const trimmed = next.subarray(0, end);
    let change = 0;
    for (let q = 0; q < end; q++) change += Math.abs(trimmed[q]! - (dist[q] ?? 0));
    dist = trimmed;
    // The iterates converge about geometrically: estimate what is left from the last ratio.
    const ratio = change / previousChange;
    if (change < 1e-14 || (ratio > 0 && ratio < 1 && (change * ratio) / (1 - ratio) < 1e-9)) return dist;
    if (work > budget) return undefined;
    previousChange = change;
  }
}

/** Poisson(mean) probabilities p[i] = P(X = start + i), covering all but ~1e-16 of the mass. */
function poisson(mean: number): { start: number; p: Float64Array } {
  if (mean <= 0) return { start: 0, p: Float64Array.of(1) };
  // Weights relative to the mode, by the ratio of neighbours, then normalised: no factorials.
  const mode = Math.floor(mean);
  const up: number[] = [];
  for (let k = mode + 1, w = 1; ; k++) {
    w *= mean / k;
    if (w < 1e-18) break;
    up.push(w);
  }
  const down: number[] = [];
  for (let k = mode, w = 1; k > 0; k--) {
    w *= k / mean;
    if (w < 1e-18) break;
    down.push(w);
  }
  const p = Float64Array.from([...down.reverse(), 1, ...up]);
  const total = p.reduce((s, x) => s + x, 0);
  for (let i = 0; i < p.length; i++) p[i]! /= total;
  return { start: mode - down.length, p };
}

/** M/D/c waiting time: exact where affordable, else the heavy-traffic approximation. */
export function mdcWaitBest(a: number, c: number, serviceTime: number): { readonly wait: WaitModel; readonly exact: boolean } {
  const exact = mdcExactWait(a, c, serviceTime);
  return exact === undefined ? { wait: mdcWait(a, c, serviceTime), exact: false } : { wait: exact, exact: true };
}

function scaledWait(a: number, c: number, serviceTime: number, factor: number): WaitModel {
  checkLoad(a, c);
  if (!(serviceTime > 0 && Number.isFinite(serviceTime))) throw new RangeError(`service time must be > 0, got ${serviceTime}`);
  if (!(a < c)) throw new RangeError(`offered load ${a} needs more than ${c} servers: the queue grows without bound`);
  const pWait = erlangC(a, c);
  // Mean of the exponential part of the wait, given that the arrival waits.
  const conditionalMean = (factor * serviceTime) / (c - a);
  return {
    pWait,
    meanWait: pWait * conditionalMean,
    quantile(p: number): number {
      if (!(p >= 0 && p < 1)) throw new RangeError(`quantile must be in [0, 1), got ${p}`);
      const tail = 1 - p;
      return pWait <= tail ? 0 : conditionalMean * Math.log(pWait / tail);
    },
  };
}

function checkLoad(a: number, c: number): void {
  if (!(a >= 0 && Number.isFinite(a))) throw new RangeError(`offered load must be a finite number ≥ 0, got ${a}`);
  if (!(Number.isInteger(c) && c >= 0)) throw new RangeError(`server count must be an integer ≥ 0, got ${c}`);
}
