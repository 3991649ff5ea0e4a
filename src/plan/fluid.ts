/**
 * The fluid model of a spike: requests treated as a continuous flow, ignoring randomness.
 * Arrivals run at `spikeRate` for `spikeForS` seconds, then at `baseRate`; the workers serve
 * at most `capacity` requests per second. What they cannot serve waits in the queue.
 *
 * It is accurate when the backlog is large against the number of workers (then the random
 * queue of the steady state is small beside it) and says nothing about the spike's first
 * seconds, when the queue is still of the order of the workers.
 */

export interface Burst {
  /** Requests waiting when the spike ends (the most there will be). */
  readonly backlogPeak: number;
  /** Seconds after the spike ends until the backlog is gone; Infinity if capacity ≤ base rate. */
  readonly drainS: number;
  /** Seconds the request arriving at the end of the spike waits: the backlog ahead of it ÷ capacity. */
  readonly maxWaitS: number;
  /**
   * Mean wait of the requests that arrive during the spike: the backlog grows linearly, so the
   * wait ahead of each arrival does too, and the mean is half the last one's.
   */
  readonly spikeMeanWaitS: number;
}

/**
 * Backlog peak Q = max(0, (spikeRate − capacity) · spikeForS), drained at the spare capacity
 * (capacity − baseRate): drain = Q / (capacity − baseRate).
 */
export function burst(capacity: number, baseRate: number, spikeRate: number, spikeForS: number): Burst {
  for (const [name, v] of [['capacity', capacity], ['base rate', baseRate], ['spike rate', spikeRate], ['spike duration', spikeForS]] as const) {
    if (!(v >= 0 && Number.isFinite(v))) throw new RangeError(`${name} must be a finite number ≥ 0, got ${v}`);
  }
  const backlogPeak = Math.max(0, (spikeRate - capacity) * spikeForS);
  if (backlogPeak === 0) return { backlogPeak: 0, drainS: 0, maxWaitS: 0, spikeMeanWaitS: 0 };
  const spare = capacity - baseRate;
  const maxWaitS = capacity > 0 ? backlogPeak / capacity : Number.POSITIVE_INFINITY;
  return {
    backlogPeak,
    drainS: spare > 0 ? backlogPeak / spare : Number.POSITIVE_INFINITY,
    maxWaitS,
    spikeMeanWaitS: maxWaitS / 2,
  };
}

/**
 * The least capacity (requests/s) whose drain time is at most `catchUpS`: from
 * (spike − μ)·F ≤ T·(μ − base), μ ≥ (spike·F + base·T) / (F + T). A weighted mean of the two
 * rates, so it always lies between them: never less than the base rate, never more than the
 * spike rate (which leaves no backlog at all).
 */
export function capacityToDrain(baseRate: number, spikeRate: number, spikeForS: number, catchUpS: number): number {
  if (spikeForS === 0 || spikeRate <= baseRate) return baseRate;
  if (catchUpS === 0) return spikeRate;
  return (spikeRate * spikeForS + baseRate * catchUpS) / (spikeForS + catchUpS);
}

/**
 * The workers that clear `backlog` requests within `targetS` seconds while `arrivalRate` keeps
 * coming, each worker serving `perWorkerRate` requests per second (μ × slots). The fluid model
 * again: with N workers the backlog falls at N·c − λ, so it is gone within T when
 * N·c ≥ λ + B/T, i.e. N = ⌈(λ + B/T) / c⌉. And never fewer than keep up with the arrivals alone
 * (utilization below 1, as the planner asks: ⌊λ/c⌋ + 1), nor any worker with nothing to do.
 */
export function workersToCatchUp(backlog: number, arrivalRate: number, perWorkerRate: number, targetS: number): number {
  for (const [name, v] of [['backlog', backlog], ['arrival rate', arrivalRate]] as const) {
    if (!(v >= 0 && Number.isFinite(v))) throw new RangeError(`${name} must be a finite number ≥ 0, got ${v}`);
  }
  if (!(perWorkerRate > 0 && Number.isFinite(perWorkerRate))) throw new RangeError(`per-worker rate must be a finite number > 0, got ${perWorkerRate}`);
  if (!(targetS > 0 && Number.isFinite(targetS))) throw new RangeError(`target must be a finite number of seconds > 0, got ${targetS}`);
  if (backlog === 0 && arrivalRate === 0) return 0;
  const toDrain = (arrivalRate + backlog / targetS) / perWorkerRate;
  // The tolerance keeps float noise in an exact case (3.0000000001) from adding a worker.
  const drain = Math.ceil(toDrain - 1e-9 * Math.max(1, toDrain));
  const keepUp = arrivalRate === 0 ? 0 : Math.floor(arrivalRate / perWorkerRate) + 1;
  return Math.max(1, drain, keepUp);
}
