import { describe, expect, it } from 'vitest';
import { burst, capacityToDrain, workersToCatchUp } from '../../src/plan/fluid.js';

describe('burst', () => {
  it('grows the backlog at (spike − capacity) and drains it at (capacity − base)', () => {
    // The worked case: 5 workers of 20 req/s against 160 req/s for 60 s, then 40 req/s.
    const b = burst(100, 40, 160, 60);
    expect(b.backlogPeak).toBe(3600); // (160 − 100) × 60
    expect(b.drainS).toBe(60); // 3600 / (100 − 40)
    expect(b.maxWaitS).toBe(36); // 3600 / 100
    // 3 workers: (160 − 60) × 60 = 6000, drained in 6000 / 20 = 300 s.
    expect(burst(60, 40, 160, 60)).toEqual({ backlogPeak: 6000, drainS: 300, maxWaitS: 100, spikeMeanWaitS: 50 });
  });

  it('leaves no backlog when capacity covers the spike', () => {
    expect(burst(160, 40, 160, 60)).toEqual({ backlogPeak: 0, drainS: 0, maxWaitS: 0, spikeMeanWaitS: 0 });
    expect(burst(500, 40, 160, 60).backlogPeak).toBe(0);
  });

  it('never drains when capacity does not exceed the base rate', () => {
    expect(burst(40, 40, 160, 60).drainS).toBe(Number.POSITIVE_INFINITY);
    expect(burst(30, 40, 160, 60).drainS).toBe(Number.POSITIVE_INFINITY);
  });

  it('refuses negative or non-finite inputs', () => {
    expect(() => burst(-1, 40, 160, 60)).toThrow(RangeError);
    expect(() => burst(100, Number.NaN, 160, 60)).toThrow(RangeError);
  });
});

describe('capacityToDrain', () => {
  it('is the least capacity whose drain time meets the target', () => {
    // (160·60 + 40·60) / 120 = 100 req/s: exactly the worked case's 5 workers.
    expect(capacityToDrain(40, 160, 60, 60)).toBe(100);
    for (const [base, spike, forS, catchUp] of [
      [40, 160, 60, 60],
      [10, 500, 5, 300],
      [100, 101, 3600, 10],
    ] as const) {
      const mu = capacityToDrain(base, spike, forS, catchUp);
      expect(burst(mu, base, spike, forS).drainS).toBeCloseTo(catchUp, 9);
      expect(burst(mu * 0.99, base, spike, forS).drainS).toBeGreaterThan(catchUp);
      expect(mu).toBeGreaterThan(base);
      expect(mu).toBeLessThan(spike);
    }
  });

  it('asks for the spike rate when no backlog may remain, and the base rate without a spike', () => {
    expect(capacityToDrain(40, 160, 60, 0)).toBe(160);
    expect(capacityToDrain(40, 40, 60, 60)).toBe(40);
    expect(capacityToDrain(40, 160, 0, 60)).toBe(40);
  });
});

describe('workersToCatchUp', () => {
  it('is the least count whose spare capacity clears the backlog within the target', () => {
    // 20 req/s arriving, 600 waiting, 60 s: (20 + 10) / 10 per worker = 3 workers.
    expect(workersToCatchUp(600, 20, 10, 60)).toBe(3);
    for (const [backlog, rate, perWorker, target] of [
      [600, 20, 10, 60],
      [12_345, 7, 3.3, 45],
      [1, 0, 100, 1],
    ] as const) {
      const n = workersToCatchUp(backlog, rate, perWorker, target);
      // The fluid drain time with n workers meets the target; with one fewer it does not.
      expect(backlog / (n * perWorker - rate)).toBeLessThanOrEqual(target + 1e-9);
      const fewer = (n - 1) * perWorker - rate;
      if (n > 1) expect(fewer <= 0 || backlog / fewer > target).toBe(true);
    }
  });

  it('keeps up with the arrivals when nothing waits, and asks for none when idle', () => {
    expect(workersToCatchUp(0, 20, 10, 60)).toBe(3);
    expect(workersToCatchUp(0, 19, 10, 60)).toBe(2);
    expect(workersToCatchUp(0, 0, 10, 60)).toBe(0);
    expect(workersToCatchUp(1, 0, 10, 60)).toBe(1);
  });

  it('refuses rates and targets it cannot divide by', () => {
    expect(() => workersToCatchUp(10, 1, 0, 60)).toThrow(RangeError);
    expect(() => workersToCatchUp(10, 1, 5, 0)).toThrow(RangeError);
    expect(() => workersToCatchUp(-1, 1, 5, 60)).toThrow(RangeError);
  });
});
