/**
 * When `spillway autoscale` changes the worker count, as a pure function of what it measured:
 * the reference for what a KEDA set-up should do (docs/autoscaling.md).
 *
 * - Up at once to the planner's count: a backlog costs latency every second it waits.
 * - Down only after a cool-down since the last change, and only to the highest count the planner
 *   asked for during that cool-down (the HPA's scale-down stabilization window): each of those
 *   is a count that catches up, so the lower count still does, and one noisy reading (a rate
 *   measured on a worker just starting) cannot flip the count back and forth.
 * - To zero only after `idleMs` with nothing queued or in flight; while anything is, at least one.
 */
export interface PolicySettings {
  readonly min: number;
  readonly max: number;
  readonly cooldownMs: number;
  readonly idleMs: number;
}

export interface Reading {
  /** The planner's workers for the target (ScalingFigures.desired_workers). */
  readonly desired: number;
  /** Anything queued or in flight. */
  readonly active: boolean;
}

export interface PolicyState {
  /** When the count last changed (epoch ms); -Infinity before the first change. */
  readonly changedAt: number;
  /** Since when nothing has been queued or in flight; null while something is. */
  readonly idleSince: number | null;
  /** The planner's counts within the last cool-down. */
  readonly recent: readonly { readonly at: number; readonly desired: number }[];
}

export interface Decision {
  readonly workers: number;
  readonly state: PolicyState;
  /** Why, for the log. */
  readonly reason: string;
}

export const initialPolicyState: PolicyState = { changedAt: Number.NEGATIVE_INFINITY, idleSince: null, recent: [] };

export function decide(settings: PolicySettings, current: number, reading: Reading, state: PolicyState, now: number): Decision {
  const idleSince = reading.active ? null : (state.idleSince ?? now);
  const recent = [...state.recent.filter((r) => r.at > now - settings.cooldownMs), { at: now, desired: reading.desired }];
  const keep = (reason: string): Decision => ({ workers: current, state: { ...state, idleSince, recent }, reason });
  const change = (workers: number, reason: string): Decision => ({ workers, state: { changedAt: now, idleSince, recent }, reason });
  // A worker is needed while anything is queued; one already running stays until the model has
  // been idle for idleMs, so a short gap between requests does not cost a cold start.
  const idleLongEnough = idleSince !== null && now - idleSince >= settings.idleMs;
  const floor = Math.max(settings.min, reading.active || (current > 0 && !idleLongEnough) ? 1 : 0);
  // Nothing queued and none running: a rate left over in the window is no reason to start one.
  const desired = reading.active || current > 0 ? reading.desired : 0;
  const clamp = (n: number) => Math.min(settings.max, Math.max(n, floor));
  const up = clamp(desired);
  if (up > current) return change(up, current < settings.min ? 'below the minimum' : 'the backlog needs more workers to catch up in time');
  const down = clamp(idleLongEnough ? 0 : Math.max(...recent.map((r) => r.desired)));
  if (down >= current) return keep('steady');
  if (now - state.changedAt < settings.cooldownMs) return keep('cooling down');
  return change(down, down === 0 ? 'idle' : 'fewer workers still catch up in time');
}
