import { describe, expect, it } from 'vitest';
import { burstProfile, diurnalProfile, replayProfile, steadyProfile } from '../../src/loadgen/profiles.js';
import { parseReplay } from '../../src/loadgen/replay-file.js';
import { buildSchedule, expectedArrivals } from '../../src/loadgen/schedule.js';

// Poisson counts have variance equal to their mean; six standard deviations never fail by chance.
const within = (count: number, expected: number) => expect(Math.abs(count - expected)).toBeLessThan(6 * Math.sqrt(expected) + 1);
const countIn = (times: readonly number[], from: number, to: number) => times.filter((t) => t >= from && t < to).length;

describe('arrival schedules', () => {
  it('are the same for the same seed and differ for another', () => {
    const profile = burstProfile({ rate: 30, spike_rate: 300, spike_at_s: 2, spike_for_s: 1, duration_s: 5 });
    const a = buildSchedule(profile, { process: 'poisson', seed: 7 });
    const b = buildSchedule(profile, { process: 'poisson', seed: 7 });
    const c = buildSchedule(profile, { process: 'poisson', seed: 8 });
    expect(a.length).toBeGreaterThan(100);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('are ascending and inside the run', () => {
    const times = buildSchedule(diurnalProfile({ rate: 50, amplitude: 1, period_s: 20, duration_s: 60 }), { process: 'poisson', seed: 3 });
    for (let k = 1; k < times.length; k++) expect(times[k]!).toBeGreaterThanOrEqual(times[k - 1]!);
    expect(times[0]!).toBeGreaterThanOrEqual(0);
    expect(times[times.length - 1]!).toBeLessThan(60);
  });

  it('steady Poisson: the right rate on average, with exponential gaps', () => {
    const times = buildSchedule(steadyProfile({ rate: 200, duration_s: 100 }), { process: 'poisson', seed: 1 });
    within(times.length, 20_000);
    const gaps = times.slice(1).map((t, k) => t - times[k]!);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length);
    expect(mean).toBeGreaterThan(0.0045);
    expect(mean).toBeLessThan(0.0055);
    // An exponential's standard deviation equals its mean (coefficient of variation 1).
    expect(sd / mean).toBeGreaterThan(0.9);
    expect(sd / mean).toBeLessThan(1.1);
  });

  it('steady uniform: evenly spaced, exactly rate × duration', () => {
    const times = buildSchedule(steadyProfile({ rate: 50, duration_s: 4 }), { process: 'uniform', seed: 1 });
    expect(times).toHaveLength(200);
    for (let k = 1; k < times.length; k++) expect(times[k]! - times[k - 1]!).toBeCloseTo(0.02, 9);
  });

  it('burst: the base rate outside the spike and the spike rate inside it', () => {
    const profile = burstProfile({ rate: 100, spike_rate: 1000, spike_at_s: 20, spike_for_s: 10, duration_s: 60 });
    const times = buildSchedule(profile, { process: 'poisson', seed: 11 });
    within(countIn(times, 0, 20), 2000);
    within(countIn(times, 20, 30), 10_000);
    within(countIn(times, 30, 60), 3000);
    expect(expectedArrivals(profile)).toBeCloseTo(15_000, 6);
    expect(profile.phases.map((p) => p.name)).toEqual(['before', 'during', 'after']);
    expect([19.99, 20, 29.99, 30].map((t) => profile.phaseIndex(t))).toEqual([0, 1, 1, 2]);
  });

  it('burst uniform: exact counts per phase', () => {
    const profile = burstProfile({ rate: 10, spike_rate: 100, spike_at_s: 2, spike_for_s: 1, duration_s: 5 });
    const times = buildSchedule(profile, { process: 'uniform', seed: 1 });
    expect([countIn(times, 0, 2), countIn(times, 2, 3), countIn(times, 3, 5)]).toEqual([20, 100, 20]);
  });

  it('diurnal: the mean rate over whole periods, more arrivals in the high half than the low', () => {
    const profile = diurnalProfile({ rate: 100, amplitude: 0.8, period_s: 40, duration_s: 120 });
    const times = buildSchedule(profile, { process: 'poisson', seed: 5 });
    within(times.length, 12_000);
    // Per period: the low half (around the trough) expects 20·(1 − 0.8·2/π)·100 ≈ 981 arrivals.
    const low = times.filter((t) => profile.phaseIndex(t) === 0).length;
    const high = times.length - low;
    within(low, 3 * 100 * 20 * (1 - (0.8 * 2) / Math.PI));
    within(high, 3 * 100 * 20 * (1 + (0.8 * 2) / Math.PI));
    // The cumulative rate's inverse really inverts it.
    for (const x of [0, 1, 500, 4321.5]) expect(profile.cumulative(profile.inverse(x))).toBeCloseTo(x, 5);
  });

  it('replay: sends the file\'s times, sorted, and none past the duration', () => {
    const arrivals = parseReplay('# arrivals\n0.5\n0\n\n1.25\n3\n');
    expect([...arrivals]).toEqual([0, 0.5, 1.25, 3]);
    expect(buildSchedule(replayProfile({ arrivals, duration_s: 2 }), { process: 'poisson', seed: 1 })).toEqual([0, 0.5, 1.25]);
    expect(() => parseReplay('0.1\nsoon\n')).toThrow(/line 2/);
    expect(() => parseReplay('-1\n')).toThrow(/line 1/);
    expect(() => parseReplay('# nothing\n')).toThrow(/no arrival/);
  });
});
