/**
 * A small seeded pseudo-random generator (sfc32, seeded through splitmix32). Math.random cannot
 * be seeded, and a bench run is only comparable with another if both send the same arrivals.
 */
export type Random = () => number;

export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  // splitmix32 spreads a small integer seed over all four words, so seeds 1 and 2 diverge at once.
  const split = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split();
  let c = split();
  let d = split();
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
}

/** An exponential variate with mean 1: the gap between arrivals of a unit-rate Poisson process. */
export function unitExponential(random: Random): number {
  // 1 - u is in (0, 1], so the logarithm is finite.
  return -Math.log(1 - random());
}
