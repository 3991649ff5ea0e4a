import { describe, expect, it } from 'vitest';
import { ArrivalRate, BatchCostModel, BatchWindow, Utilisation, WaitCost } from '../../src/worker/batch-window.js';

/** A window on a clock the test moves: every figure below is exact, never measured. */
function windowAt(waitMs: number | 'auto', maxBatchSize = 64) {
  const clock = { now: 1_000_000 };
  const window = new BatchWindow({ maxBatchSize, waitMs, now: () => clock.now });
  return { window, clock };
}

/** Batches of the given sizes, each taking a + b·n ms. */
function teach(window: BatchWindow, a: number, b: number, sizes: readonly number[]) {
  for (const n of sizes) window.ran(n, a + b * n);
}

/** `count` arrivals `gapMs` apart, ending now. */
function arrive(window: BatchWindow, clock: { now: number }, count: number, gapMs: number) {
  clock.now -= count * gapMs;
  for (let i = 0; i < count; i++) {
    clock.now += gapMs;
    window.arrived(1);
  }
}

describe('the batch cost model', () => {
  it('finds the fixed and per-request cost of batches of several sizes', () => {
    const model = new BatchCostModel(64);
    for (const n of [1, 2, 4, 8, 16, 32, 64]) model.observe(n, 2 + 0.25 * n);
    expect(model.line?.a).toBeCloseTo(2, 9);
    expect(model.line?.b).toBeCloseTo(0.25, 9);
    expect(model.estimate(10)).toBeCloseTo(4.5, 9);
  });

  it('follows a change in the batch time: recent batches weigh more', () => {
    const model = new BatchCostModel(8);
    for (let i = 0; i < 20; i++) for (const n of [1, 8]) model.observe(n, 1 + n);
    for (let i = 0; i < 20; i++) for (const n of [1, 8]) model.observe(n, 3 + 2 * n);
    expect(model.line?.a).toBeCloseTo(3, 1);
    expect(model.line?.b).toBeCloseTo(2, 1);
  });

  it('counts the whole time as fixed while it has seen one size only, and knows nothing before a batch', () => {
    const model = new BatchCostModel(64);
    expect(model.line).toBeUndefined();
    model.observe(1, 3);
    expect(model.line).toEqual({ a: 3, b: 0 });
  });

  it('never finds a negative cost in noisy times', () => {
    const falling = new BatchCostModel(8);
    falling.observe(1, 5);
    falling.observe(8, 4);
    expect(falling.line).toEqual({ a: 4.5, b: 0 });
    const steep = new BatchCostModel(8);
    steep.observe(2, 1);
    steep.observe(8, 10);
    expect(steep.line?.a).toBe(0);
    expect(steep.line?.b).toBeGreaterThan(0);
  });
});

describe('the arrival rate', () => {
  it('is the arrivals over the time since the oldest one kept, and falls while none come', () => {
    const rate = new ArrivalRate(5);
    expect(rate.perMs(0)).toBe(0);
    rate.note(1, 0);
    expect(rate.perMs(10)).toBe(0);
    for (let t = 1; t <= 10; t++) rate.note(1, t);
    expect(rate.perMs(10)).toBe(1); // the last 5 arrivals span 4 ms
    expect(rate.perMs(104)).toBeCloseTo(4 / 98, 9);
  });
});

describe('the utilisation', () => {
  it('is the run time over the span of the last batches, shared among the slots, and falls while idle', () => {
    const one = new Utilisation();
    expect(one.at(0)).toBe(0);
    one.note(10, 10); // busy 0-10
    one.note(40, 10); // busy 30-40
    expect(one.at(40)).toBe(0.5);
    expect(one.at(80)).toBe(0.25);
    const two = new Utilisation(2);
    two.note(10, 10);
    two.note(10, 10);
    expect(two.at(10)).toBe(1);
    expect(two.at(20)).toBe(0.5);
  });
});

describe('the adaptive window (auto)', () => {
  it('does not wait before it knows the batch time', () => {
    const { window, clock } = windowAt('auto');
    arrive(window, clock, 20, 0.1);
    expect(window.waitMs({ held: 1, openedAt: clock.now })).toBe(0);
  });

  it('does not wait when requests come more slowly than a batch costs: an idle model adds no latency', () => {
    const { window, clock } = windowAt('auto');
    teach(window, 2, 0.1, [1, 4, 16, 64]);
    arrive(window, clock, 10, 5); // one every 5 ms, fixed cost 2 ms
    expect(window.waitMs({ held: 1, openedAt: clock.now })).toBe(0);
  });

  it('waits while the next request is expected sooner than the batch time it saves per held request (a/k)', () => {
    const { window, clock } = windowAt('auto');
    teach(window, 4, 0.1, [1, 4, 16, 64]);
    arrive(window, clock, 64, 0.5); // one every 0.5 ms
    // a/k = 4/1: wait, for at most the break-even of 4 ms.
    expect(window.waitMs({ held: 1, openedAt: clock.now })).toBeCloseTo(4, 6);
    expect(window.waitMs({ held: 4, openedAt: clock.now })).toBeCloseTo(1, 6);
    // At k = 8 the break-even (0.5 ms) is the expected gap itself: no longer worth it.
    expect(window.waitMs({ held: 8, openedAt: clock.now })).toBe(0);
  });

  it('waits less, and then not at all, as the slot is busy less of the time', () => {
    const { window, clock } = windowAt('auto');
    teach(window, 4, 0.1, [1, 4, 16, 64]); // 24.5 ms of batches, the first of them 4.1 ms long
    arrive(window, clock, 64, 0.5);
    expect(window.waitMs({ held: 1, openedAt: clock.now })).toBeCloseTo(4, 6);
    clock.now += 44.9; // busy half the 49 ms since the first batch began: the saving counts half
    expect(window.waitMs({ held: 1, openedAt: clock.now })).toBeCloseTo(2, 6);
    clock.now += 196; // busy a tenth: 0.4 ms, while the next request is now ~4 ms away
    expect(window.waitMs({ held: 1, openedAt: clock.now })).toBe(0);
  });

  it('counts a wait as long as it really takes per request it brings, when that is longer than 1/λ', () => {
    const { window, clock } = windowAt('auto');
    teach(window, 4, 0.1, [1, 4, 16, 64]);
    arrive(window, clock, 64, 0.5); // 1/λ = 0.5 ms: worth waiting for up to k = 7
    expect(window.waitMs({ held: 4, openedAt: clock.now })).toBeCloseTo(1, 6);
    // Yet each wait took 2 ms to bring its request (the broker woke the slot late): from k = 2
    // on, the 2 ms per request is over the break-even a/k.
    for (let i = 0; i < 5; i++) window.waited(2, 1);
    expect(window.waitMs({ held: 1, openedAt: clock.now })).toBeCloseTo(4, 6);
    expect(window.waitMs({ held: 2, openedAt: clock.now })).toBe(0);
    expect(window.waitMs({ held: 4, openedAt: clock.now })).toBe(0);
  });

  it('stops at a full batch', () => {
    const { window, clock } = windowAt('auto', 8);
    teach(window, 40, 0.1, [1, 2, 8]);
    arrive(window, clock, 64, 0.1);
    expect(window.waitMs({ held: 7, openedAt: clock.now })).toBeGreaterThan(0);
    expect(window.waitMs({ held: 8, openedAt: clock.now })).toBe(0);
  });

  it('keeps the whole window within one full batch time', () => {
    const { window, clock } = windowAt('auto');
    teach(window, 10, 0.1, [1, 4, 16, 64]); // t(64) = 16.4 ms
    arrive(window, clock, 64, 0.1);
    const openedAt = clock.now;
    clock.now += 15;
    expect(window.waitMs({ held: 1, openedAt })).toBeCloseTo(1.4, 6);
    clock.now += 2;
    expect(window.waitMs({ held: 1, openedAt })).toBe(0);
  });

  it('ends the window in time for the earliest deadline held to be met', () => {
    const { window, clock } = windowAt('auto');
    teach(window, 10, 0.5, [1, 4, 16, 64]);
    arrive(window, clock, 64, 0.1);
    // t(2) = 11 ms: to finish by a deadline 15 ms away the batch must start within 4 ms.
    expect(window.waitMs({ held: 1, openedAt: clock.now, deadline: clock.now + 15 })).toBeCloseTo(4, 6);
    expect(window.waitMs({ held: 1, openedAt: clock.now, deadline: clock.now + 11 })).toBe(0);
    expect(window.waitMs({ held: 1, openedAt: clock.now, deadline: clock.now - 1 })).toBe(0);
  });
});

describe('a fixed window', () => {
  it('waits what is left of batch_wait_ms, whatever the arrivals', () => {
    const { window, clock } = windowAt(20);
    const openedAt = clock.now;
    expect(window.waitMs({ held: 1, openedAt })).toBe(20);
    clock.now += 15;
    expect(window.waitMs({ held: 3, openedAt })).toBe(5);
    clock.now += 5;
    expect(window.waitMs({ held: 3, openedAt })).toBe(0);
    expect(window.adaptive).toBe(false);
  });

  it('ends at the earliest deadline less the expected batch time', () => {
    const { window, clock } = windowAt(50);
    teach(window, 2, 1, [1, 8]);
    expect(window.waitMs({ held: 1, openedAt: clock.now, deadline: clock.now + 30 })).toBe(26);
    expect(window.waitMs({ held: 1, openedAt: clock.now, deadline: clock.now + 3 })).toBe(0);
  });

  it('never waits when it is 0', () => {
    const { window, clock } = windowAt(0);
    expect(window.waitMs({ held: 1, openedAt: clock.now })).toBe(0);
  });
});

describe('the cost of waiting', () => {
  it('is the time waits took over the requests they brought, a wait that brought none counting whole, fading with time', () => {
    const cost = new WaitCost(1000);
    expect(cost.perRequest(0)).toBe(0);
    cost.note(6, 3, 0);
    expect(cost.perRequest(0)).toBe(2);
    cost.note(4, 0, 0);
    expect(cost.perRequest(0)).toBeCloseTo(10 / 3, 9);
    // Both halve each second, so the ratio holds until what was gained falls below one request.
    expect(cost.perRequest(1000)).toBeCloseTo(10 / 3, 9);
    expect(cost.perRequest(3000)).toBeCloseTo(10 / 8, 9);
    expect(cost.perRequest(20_000)).toBeLessThan(0.001);
  });
});
