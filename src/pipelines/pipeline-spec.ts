import { Type, type Static } from '@sinclair/typebox';
import type { ErrorDetail } from '../protocol/errors.js';

/** The file that makes a folder of the model repository a pipeline instead of a model. */
export const pipelineFileNames = ['pipeline.yaml', 'pipeline.yml'];

/** `models/<name>/pipeline.yaml`: the steps in order, each naming a model (or another pipeline). */
export const pipelineConfigSchema = Type.Object(
  {
    description: Type.Optional(Type.String()),
    steps: Type.Array(Type.Object({ model: Type.String({ minLength: 1 }) }, { additionalProperties: false }), { minItems: 1 }),
  },
  { additionalProperties: false },
);
export type PipelineConfig = Static<typeof pipelineConfigSchema>;

/** A pipeline as it serves: addressed by its name, run as its models one after another. */
export interface PipelineSpec {
  readonly name: string;
  readonly dir: string;
  readonly description?: string;
  /** The steps as declared (a step may name another pipeline). */
  readonly declared: readonly string[];
  /** The model of each step, in order, with nested pipelines spelled out. */
  readonly steps: readonly string[];
}

/** What a pipeline's steps may name: a model that serves, one that failed to load, or nothing. */
export interface StepLookup {
  model(name: string): 'async' | 'sync' | 'failed' | undefined;
  pipeline(name: string): PipelineConfig | undefined;
}

/**
 * The models a pipeline runs, in order, or every problem that stops it: a step naming nothing,
 * a model that failed to load or answers only synchronously, or pipelines that include each
 * other. Nested pipelines are spelled out here, so a worker only ever sees model steps.
 */
export function resolveSteps(name: string, lookup: StepLookup): { ok: true; steps: string[] } | { ok: false; problems: ErrorDetail[] } {
  const problems: ErrorDetail[] = [];
  const expand = (config: PipelineConfig, path: readonly string[]): string[] =>
    config.steps.flatMap((step, i) => {
      const pointer = path.length === 0 ? `steps.${i}.model` : `steps (through ${path.join(' → ')}).${i}.model`;
      const kind = lookup.model(step.model);
      if (kind === 'async') return [step.model];
      if (kind === 'sync') problems.push({ pointer, message: `model ${step.model} is dispatch: sync; a pipeline step must be queued` });
      else if (kind === 'failed') problems.push({ pointer, message: `${step.model} failed to load` });
      else if (step.model === name || path.includes(step.model)) {
        problems.push({ pointer, message: `${step.model} forms a cycle: ${[name, ...path, step.model].join(' → ')}` });
      } else {
        const nested = lookup.pipeline(step.model);
        if (nested === undefined) problems.push({ pointer, message: `names ${step.model}, which is neither a model nor a pipeline of the repository` });
        else return expand(nested, [...path, step.model]);
      }
      return [];
    });
  const root = lookup.pipeline(name);
  if (root === undefined) return { ok: false, problems: [{ pointer: '(root)', message: `no pipeline named ${name}` }] };
  const steps = expand(root, []);
  return problems.length === 0 ? { ok: true, steps } : { ok: false, problems };
}
