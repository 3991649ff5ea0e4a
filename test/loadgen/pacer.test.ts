import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pace } from '../../src/loadgen/pacer.js';

// Fake timers drive the clock, so "when" a send happens is exact and no test depends on timing luck.
describe('pace', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] }));
  afterEach(() => vi.useRealTimers());
  const clockFrom = (t0: number) => () => Date.now() - t0;

  it('sends each time once it has come, never before', async () => {
    const clock_ms = clockFrom(Date.now());
    const sent: [number, number][] = [];
    const done = pace([0, 0.1, 0.25][Symbol.iterator](), (t) => sent.push([t, clock_ms()]), { clock_ms });
    await vi.advanceTimersByTimeAsync(99);
    expect(sent).toEqual([[0, 0]]);
    await vi.advanceTimersByTimeAsync(200);
    await done;
    expect(sent).toEqual([
      [0, 0],
      [0.1, 100],
      [0.25, 250],
    ]);
  });

  it('sends everything already due in one turn, without waiting for earlier sends', async () => {
    const t0 = Date.now();
    vi.setSystemTime(t0 + 1000);
    const sent: number[] = [];
    await pace([0.1, 0.2, 0.3][Symbol.iterator](), (t) => sent.push(t), { clock_ms: clockFrom(t0) });
    expect(sent).toEqual([0.1, 0.2, 0.3]);
  });

  it('keeps the window open until end_s after the last arrival', async () => {
    const clock_ms = clockFrom(Date.now());
    let resolved = false;
    const done = pace([0.01][Symbol.iterator](), () => undefined, { clock_ms, end_s: 2 }).then(() => (resolved = true));
    await vi.advanceTimersByTimeAsync(1999);
    expect(resolved).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await done;
    expect(resolved).toBe(true);
  });

  it('stops at once on abort, dropping the times not yet sent', async () => {
    const clock_ms = clockFrom(Date.now());
    const stop = new AbortController();
    const sent: number[] = [];
    const done = pace([0, 60][Symbol.iterator](), (t) => sent.push(t), { clock_ms, end_s: 120, stop: stop.signal });
    stop.abort();
    await done;
    expect(sent).toEqual([0]);
  });
});
