import type { WorkerSighting } from '../worker-registry.js';

/**
 * Slot-ms a model's workers have spent running it, summed from their heartbeats since this began
 * counting. Each worker reports its own running total; only growth counts, since a worker's first
 * report holds busy time from before counting began. Workers no longer seen are forgotten.
 */
export class BusyTime {
  private readonly byWorker = new Map<string, number>();
  private total = 0;

  /** Adds what `workers` report beyond their last report, and returns the sum so far. */
  update(workers: readonly WorkerSighting[]): number {
    const seen = new Set<string>();
    for (const w of workers) {
      seen.add(w.worker);
      if (w.busy_ms === undefined) continue;
      const before = this.byWorker.get(w.worker);
      if (before !== undefined && w.busy_ms > before) this.total += w.busy_ms - before;
      this.byWorker.set(w.worker, w.busy_ms);
    }
    for (const worker of this.byWorker.keys()) if (!seen.has(worker)) this.byWorker.delete(worker);
    return this.total;
  }
}
