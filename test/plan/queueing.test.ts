import { describe, expect, it } from 'vitest';
import { erlangB, erlangBServersFor, erlangC, mdcExactWait, mdcWait, mdcWaitBest, mgcWait, mmcWait } from '../../src/plan/queueing.js';

/**
 * Erlang B by the textbook formula (aᶜ/c!) / Σₖ aᵏ/k!, summed in log space so it holds for
 * large c too: an independent check of the recurrence in src/plan/queueing.ts.
 */
function erlangBDirect(a: number, c: number): number {
  const logTerms: number[] = [];
  let logTerm = 0; // log(a⁰/0!)
  for (let k = 0; k <= c; k++) {
    if (k > 0) logTerm += Math.log(a) - Math.log(k);
    logTerms.push(logTerm);
  }
  const max = Math.max(...logTerms);
  const sum = logTerms.reduce((s, t) => s + Math.exp(t - max), 0);
  return Math.exp(logTerms[c]! - max) / sum;
}

/** Erlang C by its own textbook formula: (aᶜ/c!)·c/(c−a) / (Σₖ₌₀..c₋₁ aᵏ/k! + (aᶜ/c!)·c/(c−a)). */
function erlangCDirect(a: number, c: number): number {
  let term = 1;
  let sum = 0;
  for (let k = 0; k < c; k++) {
    sum += term;
    term *= a / (k + 1);
  }
  const top = (term * c) / (c - a);
  return top / (sum + top);
}

describe('Erlang B', () => {
  it('matches published worked examples', () => {
    // a = 2 Erlangs on 3 servers: (8/6) / (1 + 2 + 2 + 8/6) = 4/19 = 0.2105.
    expect(erlangB(2, 3)).toBeCloseTo(4 / 19, 12);
    expect(erlangB(2, 3)).toBeCloseTo(0.2105, 4);
    // The Erlang B table: 10 Erlangs on 10 lines blocks 0.2146.
    expect(erlangB(10, 10)).toBeCloseTo(0.2146, 4);
    // The Erlang B table: 10 lines at 1% grade of service carry 4.46 Erlangs.
    expect(erlangB(4.46, 10)).toBeCloseTo(0.01, 4);
    // Wolfram's ErlangB documentation: 25 Erlangs on 30 lines block "approximately 0.05".
    expect(erlangB(25, 30)).toBeCloseTo(0.0526, 4);
  });

  it('agrees with the direct summation formula, up to thousands of servers', () => {
    for (const [a, c] of [
      [0.5, 1],
      [2, 3],
      [8, 18],
      [37.5, 40],
      [150, 170],
      [900, 1000],
      [4000, 4100],
    ] as const) {
      expect(erlangB(a, c)).toBeCloseTo(erlangBDirect(a, c), 10);
    }
  });

  it('stays finite where aᶜ/c! overflows a double, and falls as servers are added', () => {
    const big = erlangB(5000, 5200);
    expect(Number.isFinite(big)).toBe(true);
    expect(big).toBeGreaterThan(0);
    expect(big).toBeLessThan(erlangB(5000, 5100));
    expect(erlangB(0, 3)).toBe(0);
    expect(erlangB(3, 0)).toBe(1);
  });

  it('finds the least number of servers for a blocking target', () => {
    for (const [a, target] of [
      [8, 0.001],
      [8, 0.01],
      [2, 0.2],
      [300, 0.001],
    ] as const) {
      const found = erlangBServersFor(a, target, 100_000)!;
      expect(found.blocking).toBeLessThanOrEqual(target);
      expect(erlangB(a, found.servers - 1)).toBeGreaterThan(target);
      expect(found.blocking).toBeCloseTo(erlangB(a, found.servers), 15);
    }
    // 8 Erlangs (160 req/s × 50 ms): 18 servers for 0.1%, 15 for 1%.
    expect(erlangBServersFor(8, 0.001, 1000)?.servers).toBe(18);
    expect(erlangBServersFor(8, 0.01, 1000)?.servers).toBe(15);
    expect(erlangBServersFor(8, 0.001, 10)).toBeUndefined();
  });

  it('refuses meaningless arguments', () => {
    expect(() => erlangB(-1, 3)).toThrow(RangeError);
    expect(() => erlangB(Number.NaN, 3)).toThrow(RangeError);
    expect(() => erlangB(2, 2.5)).toThrow(RangeError);
    expect(() => erlangBServersFor(2, 0, 10)).toThrow(RangeError);
  });
});

describe('Erlang C', () => {
  it('matches published worked examples', () => {
    // a = 2, c = 3 (Wolfram's ErlangC documentation): c·B / (c − a(1 − B)) = 4/9 = 0.4444.
    expect(erlangC(2, 3)).toBeCloseTo(4 / 9, 12);
    // 10 Erlangs (e.g. 360 calls/h × 100 s): 11 agents → 0.6821, 12 → 0.4494, 13 → 0.2853.
    expect(erlangC(10, 11)).toBeCloseTo(0.6821, 4);
    expect(erlangC(10, 12)).toBeCloseTo(0.4494, 4);
    expect(erlangC(10, 13)).toBeCloseTo(0.2853, 4);
    // 30 calls/h of 5 minutes (2.5 Erlangs): 6 agents are the fewest with P(wait) ≤ 10%.
    expect(erlangC(2.5, 5)).toBeGreaterThan(0.1);
    expect(erlangC(2.5, 6)).toBeLessThanOrEqual(0.1);
  });

  it('agrees with its direct formula', () => {
    for (const [a, c] of [
      [0.5, 1],
      [2, 3],
      [2, 5],
      [9.5, 10],
      [80, 100],
    ] as const) {
      expect(erlangC(a, c)).toBeCloseTo(erlangCDirect(a, c), 10);
    }
  });

  it('is 1 when the servers cannot keep up, and ρ for one server', () => {
    expect(erlangC(3, 3)).toBe(1);
    expect(erlangC(4, 3)).toBe(1);
    expect(erlangC(0.7, 1)).toBeCloseTo(0.7, 12);
  });
});

describe('M/M/c waiting time', () => {
  it('reduces to Wq = ρ/(μ − λ) for one server', () => {
    const lambda = 8; // per s
    const mu = 10; // per s
    const rho = lambda / mu;
    const wait = mmcWait(rho, 1, 1 / mu);
    expect(wait.meanWait).toBeCloseTo(rho / (mu - lambda), 12); // 0.4 s
    // P(Wq > t) = ρ·e^{−(μ−λ)t}: the p99 is ln(ρ/0.01)/(μ−λ).
    expect(wait.quantile(0.99)).toBeCloseTo(Math.log(rho / 0.01) / (mu - lambda), 12);
  });

  it('gives C/(cμ − λ) as the mean wait and 0 as a quantile below P(wait)', () => {
    // a = 2, c = 3, S = 1: Wq = (4/9) / (3 − 2) = 0.444.
    const wait = mmcWait(2, 3, 1);
    expect(wait.meanWait).toBeCloseTo(4 / 9, 12);
    expect(wait.pWait).toBeCloseTo(4 / 9, 12);
    expect(wait.quantile(0.5)).toBe(0); // 55.6% do not wait at all
    expect(wait.quantile(0.99)).toBeCloseTo(Math.log((4 / 9) / 0.01), 12);
  });

  it('matches a simulation of an M/M/c queue', () => {
    const sim = simulate({ servers: 3, load: 2, service: 1, deterministic: false, customers: 400_000, seed: 7 });
    const model = mmcWait(2, 3, 1);
    expect(sim.pWait).toBeCloseTo(model.pWait, 2);
    expect(Math.abs(sim.meanWait / model.meanWait - 1)).toBeLessThan(0.05);
    expect(Math.abs(sim.p99 / model.quantile(0.99) - 1)).toBeLessThan(0.05);
  });

  it('refuses an unstable queue', () => {
    expect(() => mmcWait(3, 3, 1)).toThrow(/without bound/);
  });
});

describe('M/D/c, exact', () => {
  it('gives P(wait) = ρ and the Pollaczek–Khinchine mean ρS / (2(1 − ρ)) for one server', () => {
    for (const rho of [0.3, 0.5, 0.9]) {
      const wait = mdcExactWait(rho, 1, 50)!;
      expect(wait.pWait).toBeCloseTo(rho, 8);
      expect(wait.meanWait).toBeCloseTo((rho * 50) / (2 * (1 - rho)), 5);
    }
  });

  it("puts its M/D/1 quantiles where Erlang's closed form for the M/D/1 wait does", () => {
    for (const rho of [0.5, 0.7]) {
      const wait = mdcExactWait(rho, 1, 1)!;
      for (const p of [0.9, 0.99]) expect(md1Cdf(rho, wait.quantile(p))).toBeCloseTo(p, 6);
    }
  });

  it.each([
    { servers: 3, load: 2.4 },
    { servers: 5, load: 2 }, // the worked case: 40 req/s × 50 ms on 5 workers
    { servers: 20, load: 17 },
  ])('matches a simulated M/D/$servers queue at $load Erlangs', ({ servers, load }) => {
    const sim = simulate({ servers, load, service: 1, deterministic: true, customers: 600_000, seed: 11 });
    const wait = mdcExactWait(load, servers, 1)!;
    expect(Math.abs(wait.pWait - sim.pWait)).toBeLessThan(0.01);
    expect(Math.abs(wait.meanWait / sim.meanWait - 1)).toBeLessThan(0.06);
    expect(Math.abs(wait.quantile(0.99) / sim.p99 - 1)).toBeLessThan(0.06);
  });

  it('gives up past its budget, and the planner then falls back to the approximation', () => {
    expect(mdcExactWait(9.99, 10, 1, 1e5)).toBeUndefined();
    expect(mdcWaitBest(2, 5, 1).exact).toBe(true);
    const near = mdcWaitBest(9999, 10_000, 1);
    expect(near.exact).toBe(false);
    expect(near.wait.meanWait).toBeCloseTo(mdcWait(9999, 10_000, 1).meanWait, 12);
  });
});

describe('M/D/c approximation', () => {
  it('is exact for the M/D/1 mean (Pollaczek–Khinchine)', () => {
    for (const rho of [0.3, 0.5, 0.9]) {
      expect(mdcWait(rho, 1, 50).meanWait).toBeCloseTo((rho * 50) / (2 * (1 - rho)), 10);
    }
  });

  it('is the M/M/c wait scaled by (1 + Cs²)/2', () => {
    const mm = mmcWait(2, 3, 1);
    expect(mgcWait(2, 3, 1, 1).meanWait).toBeCloseTo(mm.meanWait, 12);
    expect(mdcWait(2, 3, 1).meanWait).toBeCloseTo(mm.meanWait / 2, 12);
    expect(mdcWait(2, 3, 1).quantile(0.99)).toBeCloseTo(mm.quantile(0.99) / 2, 12);
  });

  it('is close to the exact p99 in heavy traffic but low at light load, hence the exact one first', () => {
    for (const [a, c] of [
      [0.9, 1],
      [2.7, 3],
      [45, 50],
    ] as const) {
      const ratio = mdcWait(a, c, 1).quantile(0.99) / mdcExactWait(a, c, 1)!.quantile(0.99);
      expect(ratio).toBeGreaterThan(0.95);
      expect(ratio).toBeLessThan(1.1);
    }
    // M/D/5 at 2 Erlangs: 0.30·S against the true 0.38·S.
    expect(mdcWait(2, 5, 1).quantile(0.99)).toBeCloseTo(0.298, 3);
    expect(mdcExactWait(2, 5, 1)!.quantile(0.99)).toBeCloseTo(0.384, 2);
  });
});

/**
 * Erlang's closed form for the M/D/1 wait (service 1, load ρ):
 * P(W ≤ x) = (1 − ρ) Σₖ₌₀..⌊x⌋ (ρ(k − x))ᵏ / k! · e^{−ρ(k − x)}. Alternating terms, so only for small x.
 */
function md1Cdf(rho: number, x: number): number {
  let sum = 0;
  let factorial = 1;
  for (let k = 0; k <= Math.floor(x); k++) {
    if (k > 0) factorial *= k;
    sum += (Math.pow(rho * (k - x), k) / factorial) * Math.exp(-rho * (k - x));
  }
  return (1 - rho) * sum;
}

interface Simulated {
  readonly pWait: number;
  readonly meanWait: number;
  readonly p99: number;
}

/**
 * A first-come-first-served c-server queue with Poisson arrivals, simulated customer by
 * customer: each starts at max(arrival, earliest free server). Seeded, so reproducible.
 */
function simulate(o: { servers: number; load: number; service: number; deterministic: boolean; customers: number; seed: number }): Simulated {
  const random = mulberry32(o.seed);
  const rate = o.load / o.service;
  const free = new Array<number>(o.servers).fill(0);
  const warmUp = Math.floor(o.customers / 20);
  const waits: number[] = [];
  let now = 0;
  for (let n = 0; n < o.customers; n++) {
    now += -Math.log(1 - random()) / rate;
    let earliest = 0;
    for (let s = 1; s < o.servers; s++) if (free[s]! < free[earliest]!) earliest = s;
    const start = Math.max(now, free[earliest]!);
    const service = o.deterministic ? o.service : -Math.log(1 - random()) * o.service;
    free[earliest] = start + service;
    if (n >= warmUp) waits.push(start - now);
  }
  waits.sort((x, y) => x - y);
  const waited = waits.filter((w) => w > 0).length;
  return {
    pWait: waited / waits.length,
    meanWait: waits.reduce((s, w) => s + w, 0) / waits.length,
    p99: waits[Math.ceil(0.99 * waits.length) - 1]!,
  };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
