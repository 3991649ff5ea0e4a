import { performance } from 'node:perf_hooks';
import { pace } from './pacer.js';
import { distribution, type Distribution } from './stats.js';

/** One call of {@link callOnSchedule}; times in ms on this process's performance clock. */
export interface Shot<T> {
  readonly index: number;
  readonly scheduled: number;
  readonly sent: number;
  /** NaN if the call had not finished by the drain deadline. */
  readonly done: number;
  /** done - scheduled: what a client arriving at `scheduled` waited, send lag included. */
  readonly latency: number;
  readonly ok: boolean;
  readonly detail: T;
}

export interface ScheduledCallOptions<T> {
  /** Time 0 of the schedule is this long after the call, so the first sends are not late already. */
  readonly lead_ms?: number;
  /** Give up on unfinished calls this long after the last send. */
  readonly drain_ms?: number;
  /** The detail of a call that threw or did not finish. */
  readonly failedDetail: (error: unknown) => T;
}

/**
 * The open loop for any call, not only an HTTP prediction (`runOpenLoop` in runner.ts is the one
 * for `spillway bench`): call i starts at schedule time `times_s[i]`, paced by {@link pace}, and
 * is measured from that scheduled time, so a late send counts against the system too. Benches use
 * it to give a baseline (an in-process handler, another server) exactly the arrivals Spillway gets.
 */
export async function callOnSchedule<T>(
  times_s: readonly number[],
  fire: (index: number) => Promise<{ ok: boolean; detail: T }>,
  o: ScheduledCallOptions<T>,
): Promise<Shot<T>[]> {
  const start = performance.now() + (o.lead_ms ?? 100);
  const shots: (Shot<T> | undefined)[] = new Array<Shot<T> | undefined>(times_s.length);
  const pending: Promise<void>[] = [];
  let index = 0;
  const send = (t_s: number) => {
    const i = index++;
    const scheduled = start + t_s * 1000;
    const sent = performance.now();
    const settle = (ok: boolean, detail: T) => {
      const done = performance.now();
      shots[i] = { index: i, scheduled, sent, done, latency: done - scheduled, ok, detail };
    };
    pending.push(
      fire(i).then(
        (r) => settle(r.ok, r.detail),
        (error: unknown) => settle(false, o.failedDetail(error)),
      ),
    );
  };
  await pace(times_s[Symbol.iterator](), send, { clock_ms: () => performance.now() - start });

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, o.drain_ms ?? 120_000)));
  await Promise.race([Promise.all(pending), timeout]);
  clearTimeout(timer);
  return times_s.map((t_s, i) => {
    const shot = shots[i];
    if (shot !== undefined) return shot;
    const scheduled = start + t_s * 1000;
    return { index: i, scheduled, sent: scheduled, done: Number.NaN, latency: Number.NaN, ok: false, detail: o.failedDetail(new Error('unfinished')) };
  });
}

/** Latency of the successful calls, with the failures counted apart and how late sends went out. */
export interface ShotSummary extends Distribution {
  readonly failures: number;
  /** p99 of sent - scheduled over every call: near 0 unless the generator fell behind. */
  readonly send_lag_p99: number | null;
}

export function summarizeShots<T>(shots: readonly Shot<T>[]): ShotSummary {
  const good = shots.filter((s) => s.ok);
  return {
    ...distribution(good.map((s) => s.latency)),
    failures: shots.length - good.length,
    send_lag_p99: distribution(shots.map((s) => s.sent - s.scheduled)).p99,
  };
}
