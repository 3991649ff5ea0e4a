import { describe, expect, it } from 'vitest';
import { LATENCY_MODELS, makePlan, type PlanInputs } from '../../src/plan/plan.js';
import { erlangB } from '../../src/plan/queueing.js';

/** The lead's worked case: sleep model, 50 ms a request, 40 req/s with a 60 s spike at 160 req/s. */
const worked: PlanInputs = {
  rate: 40,
  spike: { rate: 160, forS: 60 },
  serviceMs: 50,
  perItemMs: 0,
  batch: 1,
  p99Ms: 250,
  catchUpS: 60,
  syncLoss: 0.001,
  concurrency: 1,
};

describe('makePlan', () => {
  it('plans the worked case: 5 async workers by the fluid model, 18 sync at 0.1% loss', () => {
    const plan = makePlan(worked);
    expect(plan.feasible).toBe(true);
    expect(plan.reason).toBeUndefined();
    expect(plan.service).toEqual({ single_ms: 50, full_batch_ms: 50, worker_capacity_rps: 20 });

    expect(plan.async.workers).toBe(5);
    expect(plan.async.limited_by).toEqual(['catch_up']);
    expect(plan.async.capacity_rps).toBe(100);
    expect(plan.async.utilization).toBeCloseTo(0.4, 12);
    expect(plan.async.backlog_peak).toBe(3600);
    expect(plan.async.drain_s).toBe(60);
    expect(plan.async.max_wait_s).toBe(36);
    // Exact M/D/5 at 2 Erlangs: p99 wait 0.384 × 50 ms.
    expect(plan.async.latency_model).toBe(LATENCY_MODELS.exact);
    expect(plan.async.p99_wait_ms).toBeCloseTo(19.2, 1);
    expect(plan.async.p99_latency_ms).toBeCloseTo(69.2, 1);
    expect(plan.async.blocking_at_peak_without_queue).toBeCloseTo(erlangB(8, 5), 12);

    // 160 req/s × 50 ms = 8 Erlangs: B(8, 17) = 0.0021 > 0.001 ≥ B(8, 18) = 0.00094.
    expect(plan.sync.offered_load_erlangs).toBe(8);
    expect(plan.sync.workers).toBe(18);
    expect(plan.sync.blocking_at_peak).toBeCloseTo(0.000945, 6);
    expect(plan.sync.blocking_at_average).toBeCloseTo(erlangB(2, 18), 15);
    expect(plan.cost_ratio).toBeCloseTo(18 / 5, 12);
    expect(makePlan({ ...worked, syncLoss: 0.01 }).sync.workers).toBe(15);
  });

  it('states its assumptions and whether they hold', () => {
    const text = makePlan(worked).assumptions.join('\n');
    expect(text).toContain('Poisson arrivals');
    expect(text).toContain('deterministic service');
    expect(text).toContain('Erlang B');
    expect(text).toContain('insensitive to the service-time distribution');
    expect(text).toMatch(/backlog >> workers: holds/);
    // A backlog of a few requests is no fluid: the model says so.
    const small = makePlan({ ...worked, spike: { rate: 45, forS: 2 } });
    expect(small.assumptions.join('\n')).toMatch(/does not hold/);
    // A spike of 0.5 s against 50 ms service never reaches Erlang B's steady state.
    expect(makePlan({ ...worked, spike: { rate: 160, forS: 0.5 } }).assumptions.join('\n')).toMatch(/steady state: does not hold/);
  });

  it('gives the least worker count: one fewer misses a target', () => {
    const cases: PlanInputs[] = [
      worked,
      { ...worked, p99Ms: 60 },
      { ...worked, spike: undefined, p99Ms: 55 },
      { ...worked, rate: 900, spike: { rate: 2000, forS: 10 }, catchUpS: 120, p99Ms: 80 },
      { ...worked, serviceMs: 20, perItemMs: 2, batch: 32, rate: 2000, spike: { rate: 5000, forS: 30 }, p99Ms: 300 },
    ];
    for (const inputs of cases) {
      const plan = makePlan(inputs);
      expect(plan.feasible).toBe(true);
      const n = plan.async.workers!;
      expect(makePlan({ ...inputs, workers: n }).feasible).toBe(true);
      if (n > 1) expect(makePlan({ ...inputs, workers: n - 1 }).feasible).toBe(false);
    }
  });

  it('lets the p99 target set the count without a spike', () => {
    const plan = makePlan({ ...worked, spike: undefined, p99Ms: 50 });
    expect(plan.feasible).toBe(true);
    expect(plan.async.limited_by).toEqual(['p99']);
    expect(plan.async.backlog_peak).toBe(0);
    expect(plan.async.p99_latency_ms).toBe(50); // no more than 1% wait at all
    expect(plan.sync.peak_rate).toBe(40);
    expect(plan.assumptions.join('\n')).toContain('no spike given');
  });

  it('says no worker count meets a p99 target below the service time', () => {
    const plan = makePlan({ ...worked, p99Ms: 40 });
    expect(plan.feasible).toBe(false);
    expect(plan.reason).toContain('below the service time of one request (S(1) = 50 ms)');
    expect(plan.async.workers).toBeNull();
    expect(plan.cost_ratio).toBeNull();
    expect(plan.sync.workers).toBe(18); // the sync figure is still useful
    // The same with a given worker count.
    const given = makePlan({ ...worked, p99Ms: 40, workers: 4 });
    expect(given.feasible).toBe(false);
    expect(given.reason).toContain('no number of workers meets it');
  });

  it('names the utilization floor, not the p99, when the p99 is met there already', () => {
    const plan = makePlan({ ...worked, spike: undefined, p99Ms: 10_000 });
    expect(plan.async.workers).toBe(3); // 40 req/s on 20 req/s workers: 2 would be saturated
    expect(plan.async.limited_by).toEqual(['utilization']);
  });

  it('with a given worker count, says why it falls short and what would do', () => {
    const saturated = makePlan({ ...worked, workers: 2 });
    expect(saturated.feasible).toBe(false);
    expect(saturated.reason).toContain('utilization >= 1: the queue grows without bound');
    expect(saturated.async.utilization).toBe(1);
    expect(saturated.async.p99_latency_ms).toBeNull();
    expect(saturated.async.drain_s).toBeNull();

    const slow = makePlan({ ...worked, workers: 3 });
    expect(slow.feasible).toBe(false);
    expect(slow.async.drain_s).toBe(300);
    expect(slow.async.workers_needed).toBe(5);
    expect(slow.reason).toBe(
      "with 3 workers: the spike's backlog takes 300 s to drain, more than the 60 s catch-up target (5 would meet every target)",
    );

    const enough = makePlan({ ...worked, workers: 8, concurrency: 3 });
    expect(enough.feasible).toBe(true);
    expect(enough.async.processes).toBe(3);
    expect(enough.cost_ratio).toBeCloseTo(18 / 8, 12);
  });

  it('counts full batches for the backlog and picks the batch size for latency', () => {
    // S(32) = 20 + 32 × 2 = 84 ms: 381 req/s per worker with full batches.
    const plan = makePlan({ ...worked, serviceMs: 20, perItemMs: 2, batch: 32, rate: 600, spike: { rate: 1500, forS: 30 }, p99Ms: 400 });
    expect(plan.service.full_batch_ms).toBe(84);
    expect(plan.service.worker_capacity_rps).toBeCloseTo((32 * 1000) / 84, 12);
    expect(plan.feasible).toBe(true);
    const workers = plan.async.workers!;
    expect(plan.async.capacity_rps).toBeCloseTo((workers * 32 * 1000) / 84, 9);
    // One request at a time (22 ms each) would need 14 workers for 600 req/s.
    expect(workers).toBeLessThan(14);
    expect(plan.async.effective_batch).toBeGreaterThan(1);
    // Sync is sized for S(1) = 22 ms at 1500 req/s: 33 Erlangs.
    expect(plan.sync.offered_load_erlangs).toBeCloseTo(33, 12);
    expect(plan.assumptions.join('\n')).toContain('full batches of 32');
  });
});
