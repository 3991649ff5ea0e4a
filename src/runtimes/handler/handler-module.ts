/**
 * What a handler model's module exports (models/<name>/handler.js). Export `predictBatch` when
 * the model gains from seeing the whole batch at once, otherwise `predict` for one input.
 * Throw an error with `retryable: true` to ask for another attempt.
 */
export interface HandlerContext {
  readonly model: string;
  readonly parameters: Readonly<Record<string, unknown>>;
  /** Aborted when the result is no longer wanted; long handlers should stop early. */
  readonly signal: AbortSignal;
}

export interface HandlerModule {
  load?(context: Omit<HandlerContext, 'signal'>): unknown;
  predict?(input: unknown, context: HandlerContext): unknown;
  predictBatch?(inputs: readonly unknown[], context: HandlerContext): unknown;
  close?(): unknown;
}
