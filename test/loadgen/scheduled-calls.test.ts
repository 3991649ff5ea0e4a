import { describe, expect, it } from 'vitest';
import { callOnSchedule, summarizeShots } from '../../src/loadgen/scheduled-calls.js';

describe('callOnSchedule', () => {
  it('measures each call from its scheduled time and keeps failures apart', async () => {
    const shots = await callOnSchedule(
      [0, 0.005, 0.01],
      async (i) => {
        if (i === 1) throw new Error('boom');
        return { ok: i === 0, detail: `call ${i}` };
      },
      { lead_ms: 0, failedDetail: (e) => `failed: ${String(e)}` },
    );
    expect(shots.map((s) => [s.index, s.ok, s.detail])).toEqual([
      [0, true, 'call 0'],
      [1, false, 'failed: Error: boom'],
      [2, false, 'call 2'],
    ]);
    for (const s of shots) {
      expect(s.sent).toBeGreaterThanOrEqual(s.scheduled);
      expect(s.latency).toBeCloseTo(s.done - s.scheduled, 9);
    }
    expect(shots[1]!.scheduled - shots[0]!.scheduled).toBeCloseTo(5, 9);
  });

  it('reports a call unfinished at the drain deadline as failed, with no latency', async () => {
    const shots = await callOnSchedule([0], () => new Promise<never>(() => undefined), { lead_ms: 0, drain_ms: 1, failedDetail: (e) => String(e) });
    expect(shots).toHaveLength(1);
    expect(shots[0]!.ok).toBe(false);
    expect(shots[0]!.latency).toBeNaN();
    expect(shots[0]!.detail).toBe('Error: unfinished');
  });
});

describe('summarizeShots', () => {
  it('summarizes the latency of successful calls only and counts the failures', () => {
    const shot = (latency: number, ok: boolean, lag = 0) => ({ index: 0, scheduled: 0, sent: lag, done: latency, latency, ok, detail: null });
    const s = summarizeShots([shot(10, true), shot(20, true, 2), shot(1000, false), shot(Number.NaN, false)]);
    expect(s).toMatchObject({ count: 2, mean: 15, p50: 10, max: 20, failures: 2, send_lag_p99: 2 });
    expect(summarizeShots([])).toMatchObject({ count: 0, mean: null, failures: 0, send_lag_p99: null });
  });
});
