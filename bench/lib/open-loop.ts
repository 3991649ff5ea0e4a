import { performance } from 'node:perf_hooks';

/** One request of an open-loop run, times in ms on this process's performance clock. */
export interface Shot<T> {
  readonly index: number;
  readonly scheduled: number;
  readonly sent: number;
  readonly done: number;
  /** done - scheduled: what a client arriving at `scheduled` waited, send lag included. */
  readonly latency: number;
  readonly ok: boolean;
  readonly detail: T;
}

/**
 * Sends request i at `start + schedule[i]` whatever earlier requests are doing (open loop: no
 * coordinated omission), and measures each from its scheduled time, so a late send counts
 * against the system too. Resolves once every request has finished or `drainMs` after the last
 * send, whichever comes first; unfinished ones come back with ok = false.
 */
export async function runOpenLoop<T>(
  schedule: readonly number[],
  fire: (index: number) => Promise<{ ok: boolean; detail: T }>,
  options: { leadMs?: number; drainMs?: number; failedDetail: (error: unknown) => T },
): Promise<Shot<T>[]> {
  const start = performance.now() + (options.leadMs ?? 100);
  const shots: (Shot<T> | undefined)[] = new Array<Shot<T> | undefined>(schedule.length);
  const pending: Promise<void>[] = [];
  let next = 0;

  const send = (index: number) => {
    const scheduled = start + schedule[index]!;
    const sent = performance.now();
    pending.push(
      fire(index).then(
        ({ ok, detail }) => {
          const done = performance.now();
          shots[index] = { index, scheduled, sent, done, latency: done - scheduled, ok, detail };
        },
        (error: unknown) => {
          const done = performance.now();
          shots[index] = { index, scheduled, sent, done, latency: done - scheduled, ok: false, detail: options.failedDetail(error) };
        },
      ),
    );
  };

  await new Promise<void>((resolve) => {
    const pump = () => {
      const now = performance.now();
      // Everything due by now goes out in this turn, so a late timer does not thin the load.
      while (next < schedule.length && start + schedule[next]! <= now) send(next++);
      if (next >= schedule.length) {
        resolve();
        return;
      }
      setTimeout(pump, Math.max(0, start + schedule[next]! - performance.now()));
    };
    setTimeout(pump, Math.max(0, start - performance.now()));
  });

  let timer: NodeJS.Timeout | undefined;
  const drained = Promise.all(pending).then(() => undefined);
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, options.drainMs ?? 120_000);
  });
  await Promise.race([drained, timeout]);
  clearTimeout(timer);
  return schedule.map((at, index) => {
    const shot = shots[index];
    if (shot !== undefined) return shot;
    const scheduled = start + at;
    return { index, scheduled, sent: scheduled, done: Number.NaN, latency: Number.NaN, ok: false, detail: options.failedDetail(new Error('unfinished')) };
  });
}

/** A FIFO counting semaphore: the `concurrency` workers of a synchronous server. */
export class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.free += 1;
  }
}
