import type { SpillwayError } from '../protocol/errors.js';

export type Outcome =
  | { readonly ok: true; readonly output: unknown }
  | { readonly ok: false; readonly error: SpillwayError };

export interface PredictContext {
  /** Aborted when the work is no longer wanted (shutdown, later cancel). */
  readonly signal: AbortSignal;
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
