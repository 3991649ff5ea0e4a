/**
 * The open loop's clock, shared by `spillway bench` and the bench/ scripts. Each scheduled time
 * is sent once it has come, whatever earlier requests are doing: no response can hold back the
 * next arrival, so a slow system cannot thin its own load (no coordinated omission).
 */
export interface PaceOptions {
  /** Milliseconds since the schedule's time 0. */
  readonly clock_ms: () => number;
  /** Keep the window open until then even after the last arrival (seconds), so a quiet tail is part of the run. */
  readonly end_s?: number;
  /** Stop sending now; times not yet sent are dropped. */
  readonly stop?: AbortSignal;
}

/**
 * Calls `send(t)` for each time `t` of `times` (seconds, ascending) once `clock_ms()` has reached
 * it. Resolves when the times are used up and the clock has reached `end_s`, or when `stop` aborts.
 */
export function pace(times: Iterator<number>, send: (t_s: number) => void, o: PaceOptions): Promise<void> {
  const endMs = (o.end_s ?? 0) * 1000;
  return new Promise<void>((resolve) => {
    let next = times.next();
    let timer: NodeJS.Timeout | undefined;
    const tick = () => {
      // Everything due by now goes out in this turn, so a late timer does not thin the load.
      while (next.done !== true && next.value * 1000 <= o.clock_ms() && o.stop?.aborted !== true) {
        send(next.value);
        next = times.next();
      }
      if (o.stop?.aborted === true || (next.done === true && o.clock_ms() >= endMs)) {
        o.stop?.removeEventListener('abort', onStop);
        resolve();
        return;
      }
      timer = setTimeout(tick, Math.max(0, (next.done === true ? endMs : next.value * 1000) - o.clock_ms()));
    };
    // Stopping (Ctrl-C) must not wait for the next arrival, which may be far off.
    const onStop = () => {
      clearTimeout(timer);
      tick();
    };
    o.stop?.addEventListener('abort', onStop, { once: true });
    tick();
  });
}
