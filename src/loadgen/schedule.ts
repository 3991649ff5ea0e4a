import { seededRandom, unitExponential } from './prng.js';
import type { Profile } from './profiles.js';

export type ArrivalProcess = 'poisson' | 'uniform';

/**
 * Scheduled send times in seconds from the start, ascending, fixed before the run by the profile
 * and the seed alone: nothing a response does can move them, which is what keeps the generator
 * open-loop. Generated lazily so a long run does not hold its whole schedule in memory.
 *
 * Poisson: arrival k is at Λ⁻¹(E₁ + … + E_k) with Eᵢ unit exponentials (inversion of the
 * cumulative rate). Uniform: at Λ⁻¹(k), evenly spaced in expected count, so a changing rate
 * still changes the spacing.
 */
export function* arrivalTimes(profile: Profile, o: { process: ArrivalProcess; seed: number }): Generator<number, void, undefined> {
  if (profile.kind === 'replay') {
    for (const t of profile.arrivals) {
      if (t > profile.duration_s) return;
      yield t;
    }
    return;
  }
  const random = seededRandom(o.seed);
  let x = 0;
  for (let k = 0; ; k++) {
    if (o.process === 'uniform') x = k;
    else x += unitExponential(random);
    const t = profile.inverse(x);
    if (t >= profile.duration_s) return;
    yield t;
  }
}

/** The whole schedule at once, for tests and small runs. */
export function buildSchedule(profile: Profile, o: { process: ArrivalProcess; seed: number }): number[] {
  return [...arrivalTimes(profile, o)];
}

/** How many arrivals the profile expects on average over the run. */
export function expectedArrivals(profile: Profile): number {
  return profile.kind === 'replay' ? profile.arrivals.filter((t) => t <= profile.duration_s).length : profile.cumulative(profile.duration_s);
}
