import { BusyTime } from '../scaling/busy-time.js';
import type { WorkerSighting } from '../worker-registry.js';

/** How far back utilisation is measured: long enough to span several heartbeats. */
const windowMs = 10_000;

/**
 * Slot utilisation of each model from the workers' heartbeats: the growth of their busy slot-ms
 * over a short window, against the slot-ms their slots offered in it. Heartbeats report busy
 * time in steps, so a window of several heartbeats keeps the figure steady. Sampled whenever the
 * dashboard is read.
 */
export class SlotUtilisation {
  private readonly models = new Map<string, { readonly samples: { at: number; busyMs: number }[]; readonly busy: BusyTime }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Busy over available slot-time for `model` in the window; null until two samples span some time. */
  sample(model: string, workers: readonly WorkerSighting[], slots: number): number | null {
    let m = this.models.get(model);
    if (m === undefined) {
      m = { samples: [], busy: new BusyTime() };
      this.models.set(model, m);
    }
    const busyMs = m.busy.update(workers);
    const at = this.now();
    m.samples.push({ at, busyMs });
    while (m.samples.length > 2 && m.samples[1]!.at <= at - windowMs) m.samples.shift();
    const first = m.samples[0]!;
    const spanMs = at - first.at;
    if (spanMs <= 0 || slots <= 0) return null;
    return Math.min(1, (busyMs - first.busyMs) / (spanMs * slots));
  }
}
