import type { SpillwayError } from '../protocol/errors.js';

export type Outcome =
  | { readonly ok: true; readonly output: unknown }
  | { readonly ok: false; readonly error: SpillwayError };

/** The steps of serving that happen inside a runtime; the worker times decoding itself. */
export type RuntimeStep = 'preprocess' | 'inference' | 'postprocess';

/**
 * Where a runtime reports how long each step of one batch took. Steps run back to back, so one
 * clock reading per step boundary is enough: each lap charges the time since the previous one.
 */
export interface StepTimer {
  /** Charges the time since the previous lap (or since the batch began) to `step`; a step may lap more than once. */
  lap(step: RuntimeStep): void;
}

export interface PredictContext {
  /** Aborted when the work is no longer wanted: the worker is shutting down, or every request in the batch was canceled. */
  readonly signal: AbortSignal;
  /**
   * Laps each step the runtime has, in order; a step it lacks is never lapped and so reported
   * as absent rather than as 0 ms. Absent when the caller does not record step times.
   */
  readonly timer?: StepTimer;
}

/**
 * A loaded model. predict() takes a batch of request inputs, already validated against the
 * model's declared inputs, and returns one outcome per input in the same order. It throws only
 * when the whole batch failed.
 */
export interface ModelRuntime {
  predict(inputs: readonly unknown[], context: PredictContext): Promise<readonly Outcome[]>;
  close(): Promise<void>;
}
