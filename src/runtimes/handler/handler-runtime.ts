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
    try {
      if (typeof this.module.predictBatch === 'function') {
        const outputs = await this.module.predictBatch(inputs, ctx);
        if (!Array.isArray(outputs) || outputs.length !== inputs.length) {
          throw new Error(`predictBatch must return an array of ${inputs.length} outputs`);
        }
        return outputs.map((output: unknown) => ({ ok: true, output }));
      }
      const module = this.module;
      // One input failing must not fail its neighbours in the batch.
      return await Promise.all(
        inputs.map(async (input): Promise<Outcome> => {
          try {
            return { ok: true, output: await module.predict?.(input, ctx) };
          } catch (error) {
            return { ok: false, error: asModelError(error) };
          }
        }),
      );
    } catch (error) {
      throw asModelError(error);
    }
  }

  async close(): Promise<void> {
    await this.module.close?.();
  }
}

function asModelError(error: unknown): SpillwayError {
  if (error instanceof SpillwayError) return error;
  const retryable = typeof error === 'object' && error !== null && (error as { retryable?: unknown }).retryable === true;
  const message = error instanceof Error ? error.message : String(error);
  return new SpillwayError('SPILLWAY_MODEL_FAILED', message, { cause: error, retryable });
}
