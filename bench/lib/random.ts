/**
 * Seeded randomness for benchmarks: the same seed gives the same arrival schedule, so two
 * systems measured in one run face exactly the same load, and a run can be repeated.
 */

/** mulberry32: a tiny 32-bit PRNG, uniform on [0, 1). Good enough for arrival times. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An exponential variate with the given rate (events per unit of time). */
export function exponential(random: () => number, rate: number): number {
  // 1 - u lies in (0, 1], so the log is finite.
  return -Math.log(1 - random()) / rate;
}

/**
 * Send times (ms from the start) of a Poisson process of `ratePerS` arrivals per second over
 * `durationMs`: exponential gaps, so arrivals are independent of each other and of the
 * responses, as with many independent clients.
 */
export function poissonSchedule(ratePerS: number, durationMs: number, seed: number): number[] {
  const random = seededRandom(seed);
  const ratePerMs = ratePerS / 1000;
  const times: number[] = [];
  for (let t = exponential(random, ratePerMs); t < durationMs; t += exponential(random, ratePerMs)) times.push(t);
  return times;
}
