import { performance } from 'node:perf_hooks';
import type { StepTimings } from '../protocol/prediction.js';
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

/**
 * The steps of one batch as its records report them. A runtime that times none of its own steps
 * (one written before they were timed) has its whole predict() counted as inference, as then.
 * `decodeMs` is the caller's time reading the requests, when it has one of its own.
 */
export function stepTimings(decodeMs: number | undefined, steps: StepMs, predictMs: number): StepTimings {
  const timed = steps.preprocess !== undefined || steps.inference !== undefined || steps.postprocess !== undefined;
  return {
    decode_ms: decodeMs,
    preprocess_ms: steps.preprocess,
    inference_ms: timed ? steps.inference : predictMs,
    postprocess_ms: steps.postprocess,
  };
}
