import { performance } from 'node:perf_hooks';
import type { RuntimeStep, StepTimer } from './runtime.js';

/** Milliseconds per step of one batch; a step that never ran stays undefined. */
export type StepMs = { -readonly [S in RuntimeStep]?: number };

/** The StepTimer a caller hands to predict(): make one per batch just before the call. */
export class StepStopwatch implements StepTimer {
  readonly ms: StepMs = {};
  private mark = performance.now();

  lap(step: RuntimeStep): void {
    const now = performance.now();
    this.ms[step] = (this.ms[step] ?? 0) + (now - this.mark);
    this.mark = now;
  }
}
