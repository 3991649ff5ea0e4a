/**
 * What a handler model's module exports (models/<name>/handler.js). Export `predictBatch` when
 * the model gains from seeing the whole batch at once, otherwise `predict` for one input.
 * Throw an error with `retryable: true` to ask for another attempt.
 *
 * The optional `preprocess` and `postprocess` run once per request, around the prediction, as
 * KServe's model server splits serving: the record times each step apart (`preprocess_ms`,
 * `inference_ms`, `postprocess_ms`), so put feature lookup or tokenising in `preprocess` and
 * the model's own work in `predict` to see which one is slow.
 */
export interface HandlerContext {
  readonly model: string;
  readonly parameters: Readonly<Record<string, unknown>>;
  /** Aborted when the result is no longer wanted; long handlers should stop early. */
  readonly signal: AbortSignal;
}

export interface HandlerModule {
  load?(context: Omit<HandlerContext, 'signal'>): unknown;
  /** Turns a request's input into what `predict`/`predictBatch` receives; throwing fails only that request. */
  preprocess?(input: unknown, context: HandlerContext): unknown;
  predict?(input: unknown, context: HandlerContext): unknown;
  predictBatch?(inputs: readonly unknown[], context: HandlerContext): unknown;
  /** Turns a prediction into the record's `output`; throwing fails only that request. */
  postprocess?(output: unknown, context: HandlerContext): unknown;
  close?(): unknown;
}
