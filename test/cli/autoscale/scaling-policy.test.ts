import { describe, expect, it } from 'vitest';
import { decide, initialPolicyState as fresh, type PolicyState } from '../../../src/cli/autoscale/scaling-policy.js';

const settings = { min: 0, max: 4, cooldownMs: 30_000, idleMs: 60_000 };
const busy = { active: true };

describe('the autoscaling policy', () => {
  it('scales up at once to the planner count, capped at the maximum', () => {
    expect(decide(settings, 1, { desired: 3, ...busy }, { ...fresh, changedAt: 0 }, 1000)).toMatchObject({ workers: 3, state: { changedAt: 1000 } });
    expect(decide(settings, 1, { desired: 9, ...busy }, fresh, 1000).workers).toBe(4);
  });

  it('starts nothing while nothing is queued, whatever rate is left in the window, and one worker on the first request', () => {
    expect(decide(settings, 0, { desired: 2, active: false }, fresh, 0).workers).toBe(0);
    expect(decide(settings, 0, { desired: 1, ...busy }, fresh, 0).workers).toBe(1);
    expect(decide({ ...settings, min: 2 }, 0, { desired: 0, active: false }, fresh, 0)).toMatchObject({ workers: 2, reason: 'below the minimum' });
  });

  it('scales down after the cool-down, to the highest count asked for during it', () => {
    let state: PolicyState = { ...fresh, changedAt: 10_000 };
    let step = decide(settings, 4, { desired: 3, ...busy }, state, 15_000);
    expect(step).toMatchObject({ workers: 4, reason: 'cooling down' });
    state = step.state;
    step = decide(settings, 4, { desired: 2, ...busy }, state, 30_000);
    expect(step).toMatchObject({ workers: 4, reason: 'cooling down' });
    // Past the cool-down: 3 was asked for within it, so 3 and not 2.
    step = decide(settings, 4, { desired: 2, ...busy }, step.state, 41_000);
    expect(step).toMatchObject({ workers: 3, state: { changedAt: 41_000 } });
    // Once 3 has left the window, 2.
    step = decide(settings, 3, { desired: 2, ...busy }, step.state, 72_000);
    expect(step.workers).toBe(2);
  });

  it('keeps the last worker through a short idle spell, and stops it after the idle period', () => {
    let step = decide(settings, 1, { desired: 0, active: false }, fresh, 100_000);
    expect(step).toMatchObject({ workers: 1, state: { idleSince: 100_000 } });
    step = decide(settings, 1, { desired: 0, active: false }, step.state, 159_999);
    expect(step.workers).toBe(1);
    step = decide(settings, 1, { desired: 1, active: false }, step.state, 160_000);
    expect(step).toMatchObject({ workers: 0, reason: 'idle' });
    // Something queued in between starts the idle period again.
    expect(decide(settings, 1, { desired: 1, ...busy }, { ...fresh, idleSince: 100_000 }, 150_000).state.idleSince).toBeNull();
  });

  it('never goes below the minimum when idle', () => {
    expect(decide({ ...settings, min: 1 }, 1, { desired: 0, active: false }, { ...fresh, idleSince: 0 }, 1_000_000).workers).toBe(1);
  });
});
