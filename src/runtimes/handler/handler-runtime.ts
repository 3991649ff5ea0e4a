import { extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ModelSpec } from '../../models/model-config.js';
import { SpillwayError } from '../../protocol/errors.js';
import type { ModelRuntime, Outcome, PredictContext } from '../runtime.js';
import type { HandlerContext, HandlerModule } from './handler-module.js';

/** Node strips TypeScript types natively from 22.18 (and 22.6+ behind a flag); 20 cannot. */
function canImportTypeScript(): boolean {
  return Boolean((process.features as { typescript?: unknown }).typescript);
}

/** Runs a JavaScript (or, where Node supports it, TypeScript) module as a model. */
export class HandlerRuntime implements ModelRuntime {
  private constructor(
    private readonly spec: ModelSpec,
    private readonly module: HandlerModule,
  ) {}

  static async load(spec: ModelSpec): Promise<HandlerRuntime> {
    const file = join(spec.dir, spec.config.file);
    if (['.ts', '.mts'].includes(extname(file)) && !canImportTypeScript()) {
      throw new SpillwayError(
        'SPILLWAY_MODEL_LOAD_FAILED',
        `model ${spec.name}: ${spec.config.file} is TypeScript, which Node ${process.version} cannot import; compile it to .js or use Node 22.18 or newer`,
      );
    }
    const module = (await import(pathToFileURL(file).href)) as HandlerModule;
    if (typeof module.predictBatch !== 'function' && typeof module.predict !== 'function') {
      throw new SpillwayError(
        'SPILLWAY_MODEL_LOAD_FAILED',
        `model ${spec.name}: ${spec.config.file} exports neither predict nor predictBatch`,
      );
    }
    await module.load?.({ model: spec.name, parameters: spec.config.parameters });
    return new HandlerRuntime(spec, module);
  }

  async predict(inputs: readonly unknown[], context: PredictContext): Promise<readonly Outcome[]> {
    const ctx: HandlerContext = { model: this.spec.name, parameters: this.spec.config.parameters, signal: context.signal };
    const module = this.module;
    const timer = context.timer;
    try {
      let outcomes: Outcome[];
      if (typeof module.preprocess !== 'function') {
        outcomes = await this.run(inputs, ctx);
        timer?.lap('inference');
      } else {
        outcomes = await settleEach(inputs, (input) => module.preprocess?.(input, ctx));
        timer?.lap('preprocess');
        // An input that failed preprocessing fails alone, as a failing predict() would.
        const ready = outcomes.flatMap((o, i) => (o.ok ? [i] : []));
        if (ready.length > 0) {
          const ran = await this.run(ready.map((i) => (outcomes[i] as { output: unknown }).output), ctx);
          for (const [k, i] of ready.entries()) outcomes[i] = ran[k]!;
          timer?.lap('inference');
        }
      }
      if (typeof module.postprocess === 'function') {
        const post = (output: unknown) => module.postprocess?.(output, ctx);
        outcomes = await Promise.all(outcomes.map(async (o) => (o.ok ? settle(post, o.output) : o)));
        timer?.lap('postprocess');
      }
      return outcomes;
    } catch (error) {
      throw asModelError(error);
    }
  }

  /** The prediction step: the whole batch at once, or each input on its own. */
  private async run(inputs: readonly unknown[], ctx: HandlerContext): Promise<Outcome[]> {
    const module = this.module;
    if (typeof module.predictBatch === 'function') {
      const outputs = await module.predictBatch(inputs, ctx);
      if (!Array.isArray(outputs) || outputs.length !== inputs.length) {
        throw new Error(`predictBatch must return an array of ${inputs.length} outputs`);
      }
      return outputs.map((output: unknown) => ({ ok: true, output }));
    }
    // One input failing must not fail its neighbours in the batch.
    return settleEach(inputs, (input) => module.predict?.(input, ctx));
  }

  async close(): Promise<void> {
    await this.module.close?.();
  }
}

async function settle<T>(step: (value: T) => unknown, value: T): Promise<Outcome> {
  try {
    return { ok: true, output: await step(value) };
  } catch (error) {
    return { ok: false, error: asModelError(error) };
  }
}

function settleEach(values: readonly unknown[], step: (value: unknown) => unknown): Promise<Outcome[]> {
  return Promise.all(values.map((value) => settle(step, value)));
}

function asModelError(error: unknown): SpillwayError {
  if (error instanceof SpillwayError) return error;
  const retryable = typeof error === 'object' && error !== null && (error as { retryable?: unknown }).retryable === true;
  const message = error instanceof Error ? error.message : String(error);
  return new SpillwayError('SPILLWAY_MODEL_FAILED', message, { cause: error, retryable });
}
