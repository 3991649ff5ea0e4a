import { performance } from 'node:perf_hooks';

/**
 * Slot-milliseconds spent running a model. Gateways and `spillway bench` turn its growth into
 * utilisation (Δbusy ÷ (slots × Δt)), which says whether the workers are provisioned right.
 */
export class BusyMeter {
  private finishedMs = 0;
  private readonly running = new Set<{ readonly t0: number }>();

  /** Marks one slot busy; call the returned function when it is free again. */
  begin(): () => void {
    const slot = { t0: performance.now() };
    this.running.add(slot);
    return () => {
      if (!this.running.delete(slot)) return;
      this.finishedMs += performance.now() - slot.t0;
    };
  }

  /** Busy slot-milliseconds so far, counting the slots still running up to now. */
  get totalMs(): number {
    const now = performance.now();
    let ms = this.finishedMs;
    for (const slot of this.running) ms += now - slot.t0;
    return Math.round(ms);
  }
}
