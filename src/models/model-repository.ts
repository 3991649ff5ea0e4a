import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { pipelineConfigSchema, pipelineFileNames, resolveSteps, type PipelineConfig, type PipelineSpec } from '../pipelines/pipeline-spec.js';
import { describeError, SpillwayError, type ErrorDetail } from '../protocol/errors.js';
import { modelConfigSchema, type ModelConfig, type ModelSpec } from './model-config.js';

export const modelNamePattern = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const configFileNames = ['model.yaml', 'model.yml', 'model.json'];

export interface ModelLoadFailure {
  readonly name: string;
  readonly kind: 'model' | 'pipeline';
  readonly error: SpillwayError;
}

export interface ModelRepository {
  readonly models: ReadonlyMap<string, ModelSpec>;
  /** Pipelines, addressed like models; none when the repository was read for some models only. */
  readonly pipelines: ReadonlyMap<string, PipelineSpec>;
  /** Models and pipelines whose folder exists but whose config is unusable; the others serve regardless. */
  readonly failures: readonly ModelLoadFailure[];
}

// verbose: an error carries the value it refused, so the message can say what it got.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true });
const validateSchema = ajv.compile<ModelConfig>(modelConfigSchema);
const validatePipeline = ajv.compile<PipelineConfig>(pipelineConfigSchema);

/**
 * Reads every `<dir>/<name>/model.yaml` and `pipeline.yaml`. A bad model or pipeline is
 * reported, never fatal to the rest. With `only` (a worker's models), pipelines are not read:
 * a worker serves the models they name.
 */
export function loadModelRepository(dir: string, only?: readonly string[]): ModelRepository {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new SpillwayError('SPILLWAY_INVALID_CONFIG', `model repository ${root} is not a folder`);
  }
  const models = new Map<string, ModelSpec>();
  const failures: ModelLoadFailure[] = [];
  const pipelineFiles = new Map<string, string>();
  for (const name of readdirSync(root).sort()) {
    const modelDir = join(root, name);
    if (!statSync(modelDir).isDirectory()) continue;
    const file = configFileNames.map((f) => join(modelDir, f)).find((p) => existsSync(p));
    const pipelineFile = pipelineFileNames.map((f) => join(modelDir, f)).find((p) => existsSync(p));
    if (file === undefined && pipelineFile !== undefined && only === undefined) pipelineFiles.set(name, pipelineFile);
    if (file === undefined) continue; // not a model folder (a pipeline, or e.g. the export scripts)
    if (only !== undefined && !only.includes(name)) continue;
    try {
      models.set(name, { name, dir: modelDir, config: readModelConfig(name, modelDir, file) });
    } catch (error) {
      const wrapped =
        error instanceof SpillwayError
          ? error
          : new SpillwayError('SPILLWAY_INVALID_MODEL_CONFIG', `model ${name}: ${describeError(error)}`, { cause: error });
      failures.push({ name, kind: 'model', error: wrapped });
    }
  }
  for (const name of only ?? []) {
    if (!models.has(name) && !failures.some((f) => f.name === name)) {
      failures.push({
        name,
        kind: 'model',
        error: new SpillwayError('SPILLWAY_MODEL_NOT_FOUND', `model ${name} is not in the repository ${root}`),
      });
    }
  }
  return { models, pipelines: loadPipelines(pipelineFiles, models, failures), failures };
}

/** Each pipeline's steps resolved against the models read; one that cannot run becomes a failure. */
function loadPipelines(files: ReadonlyMap<string, string>, models: ReadonlyMap<string, ModelSpec>, failures: ModelLoadFailure[]): Map<string, PipelineSpec> {
  const configs = new Map<string, PipelineConfig>();
  for (const [name, file] of files) {
    try {
      configs.set(name, readPipelineConfig(name, file));
    } catch (error) {
      failures.push({ name, kind: 'pipeline', error: error as SpillwayError });
    }
  }
  // Models that failed, and pipelines whose file could not be read.
  const failed = new Set(failures.map((f) => f.name));
  const lookup = {
    model: (name: string) => models.get(name)?.config.dispatch ?? (failed.has(name) ? ('failed' as const) : undefined),
    pipeline: (name: string) => configs.get(name),
  };
  const pipelines = new Map<string, PipelineSpec>();
  for (const [name, config] of configs) {
    const resolved = resolveSteps(name, lookup);
    if (!resolved.ok) {
      const list = resolved.problems.map((p) => `${p.pointer}: ${p.message}`).join('; ');
      const error = new SpillwayError('SPILLWAY_INVALID_MODEL_CONFIG', `pipeline ${name} (${files.get(name)}): ${list}`, { details: resolved.problems });
      failures.push({ name, kind: 'pipeline', error });
      continue;
    }
    const dir = resolve(files.get(name)!, '..');
    const declared = config.steps.map((s) => s.model);
    pipelines.set(name, { name, dir, declared, steps: resolved.steps, ...(config.description === undefined ? {} : { description: config.description }) });
  }
  return pipelines;
}

function readPipelineConfig(name: string, file: string): PipelineConfig {
  const raw: unknown = parseYaml(readFileSync(file, 'utf8'));
  const problems: ErrorDetail[] = [];
  if (!modelNamePattern.test(name)) problems.push({ pointer: 'name', message: `folder name must match ${modelNamePattern.source}` });
  if (!validatePipeline(raw)) problems.push(...uniqueProblems(validatePipeline.errors ?? []));
  if (problems.length > 0) {
    const list = problems.map((p) => `${p.pointer}: ${p.message}`).join('; ');
    throw new SpillwayError('SPILLWAY_INVALID_MODEL_CONFIG', `pipeline ${name} (${file}): ${list}`, { details: problems });
  }
  return raw as PipelineConfig;
}

function readModelConfig(name: string, dir: string, file: string): ModelConfig {
  const raw: unknown = parseYaml(readFileSync(file, 'utf8'));
  const problems: ErrorDetail[] = [];
  if (!modelNamePattern.test(name)) {
    problems.push({ pointer: 'name', message: `folder name must match ${modelNamePattern.source}` });
  }
  if (!validateSchema(raw)) {
    problems.push(...uniqueProblems(validateSchema.errors ?? []));
  } else {
    problems.push(...crossCheck(raw, dir));
  }
  if (problems.length > 0) {
    const list = problems.map((p) => `${p.pointer}: ${p.message}`).join('; ');
    throw new SpillwayError('SPILLWAY_INVALID_MODEL_CONFIG', `model ${name} (${file}): ${list}`, { details: problems });
  }
  return raw as ModelConfig;
}

function uniqueProblems(errors: readonly ErrorObject[]): ErrorDetail[] {
  const seen = new Set<string>();
  const problems: ErrorDetail[] = [];
  for (const e of errors) {
    const problem = describeSchemaError(e);
    const key = `${problem.pointer}: ${problem.message}`;
    if (!seen.has(key)) problems.push(problem);
    seen.add(key);
  }
  return problems;
}

function describeSchemaError(e: ErrorObject): ErrorDetail {
  const pointer = e.instancePath.replace(/^\//, '').replaceAll('/', '.') || '(root)';
  const allowed: unknown = e.params['allowedValues'];
  if (e.keyword === 'enum' && Array.isArray(allowed)) {
    return { pointer, message: `must be one of ${allowed.map(String).join(', ')}, got ${JSON.stringify(e.data)}` };
  }
  const extra = e.keyword === 'additionalProperties' ? ` "${String(e.params['additionalProperty'])}"` : '';
  return { pointer, message: `${e.message ?? 'invalid'}${extra}` };
}

/** Rules a JSON Schema cannot state: references between fields and files on disk. */
function crossCheck(config: ModelConfig, dir: string): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  if (!existsSync(join(dir, config.file))) problems.push({ pointer: 'file', message: `${config.file} does not exist` });
  if (config.runtime === 'onnx') {
    if (config.inputs === undefined) problems.push({ pointer: 'inputs', message: 'an onnx model must declare its inputs' });
    if (config.outputs === undefined) problems.push({ pointer: 'outputs', message: 'an onnx model must declare its outputs' });
  }
  const outputs = new Set((config.outputs ?? []).map((o) => o.name));
  if (config.classification !== undefined) {
    for (const key of ['label_output', 'probabilities_output'] as const) {
      if (!outputs.has(config.classification[key])) {
        problems.push({ pointer: `classification.${key}`, message: `names no declared output` });
      }
    }
  }
  if (config.features !== undefined) {
    const width = config.inputs?.length === 1 ? config.inputs[0]?.shape[1] : undefined;
    if (width !== config.features.length) {
      problems.push({ pointer: 'features', message: 'needs a single input of shape [-1, number of features]' });
    }
  }
  if (config.priority_limits !== undefined && config.max_queue_depth === undefined) {
    problems.push({ pointer: 'priority_limits', message: 'is a share of max_queue_depth, which is not set' });
  }
  if (config.max_batch_size > 1) {
    for (const [i, input] of (config.inputs ?? []).entries()) {
      if (input.shape[0] !== -1) {
        problems.push({ pointer: `inputs.${i}.shape`, message: 'batching needs a dynamic first dimension (-1)' });
      }
    }
  }
  return problems;
}
