import type { ModelSpec, TensorSpec } from '../../models/model-config.js';
import { SpillwayError } from '../../protocol/errors.js';
import type { GatewayContext } from '../context.js';
import { datatypeOfDtype, type OipDatatype } from './datatypes.js';

/** A tensor as model metadata lists it. */
export interface OipTensorMetadata {
  readonly name: string;
  readonly datatype: OipDatatype;
  readonly shape: readonly number[];
}

/**
 * How a model or pipeline looks through the protocol. `tensors`: it declares input tensors
 * (model.yaml `inputs`), and v2 tensors are checked against them and handed on in Spillway's own
 * tensor form. `json`: it takes free-form JSON, carried as the one element of a BYTES tensor.
 */
export type OipSignature = SignatureBase &
  ({ readonly kind: 'tensors'; readonly inputs: readonly TensorSpec[] } | { readonly kind: 'json'; readonly inputs: readonly OipTensorMetadata[] });

interface SignatureBase {
  readonly name: string;
  readonly platform: string;
  readonly outputs: readonly OipTensorMetadata[];
  /** The model requests go to first (a pipeline's first step): its workers decide readiness. */
  readonly model: ModelSpec;
}

/** Spillway models have no versions: each is served as version "1", its only one. */
export const onlyVersion = '1';

/** The BYTES tensors of a model that takes and gives JSON: one JSON text each. */
export const jsonInput: OipTensorMetadata = { name: 'input', datatype: 'BYTES', shape: [1] };
export const jsonOutput: OipTensorMetadata = { name: 'output', datatype: 'BYTES', shape: [1] };

const asMetadata = (t: TensorSpec): OipTensorMetadata => ({ name: t.name, datatype: datatypeOfDtype[t.dtype], shape: t.shape });

/** The signature of `name` (a model, or a pipeline: its first step's inputs, its last step's outputs). */
export function findSignature(ctx: GatewayContext, name: string, version: string | undefined): OipSignature {
  const { models, pipelines, failures } = ctx.repository;
  const model = models.get(name);
  const pipeline = pipelines.get(name);
  const first = model ?? models.get(pipeline?.steps[0] ?? '');
  // A last step that is itself a pipeline has no outputs of its own to show: JSON then.
  const last = model ?? models.get(pipeline?.steps.at(-1) ?? '');
  if (first === undefined) {
    const failure = failures.find((f) => f.name === name);
    if (failure !== undefined) throw new SpillwayError('SPILLWAY_MODEL_LOAD_FAILED', failure.error.message);
    throw new SpillwayError('SPILLWAY_MODEL_NOT_FOUND', `no model named "${name}"`);
  }
  if (version !== undefined && version !== onlyVersion) {
    throw new SpillwayError('SPILLWAY_MODEL_NOT_FOUND', `model "${name}" has no version "${version}": Spillway serves each model as version "${onlyVersion}" only`);
  }
  const platform = model === undefined ? 'spillway_pipeline' : model.config.runtime === 'onnx' ? 'onnxruntime_onnx' : 'spillway_handler';
  const outputs = last?.config.outputs?.map(asMetadata) ?? [jsonOutput];
  const inputs = first.config.inputs;
  const base = { name, platform, outputs, model: first };
  return inputs === undefined ? { ...base, kind: 'json', inputs: [jsonInput] } : { ...base, kind: 'tensors', inputs };
}

/** Model metadata: what GET /v2/models/{m} answers. */
export function modelMetadata(signature: OipSignature): Record<string, unknown> {
  const inputs = signature.kind === 'tensors' ? signature.inputs.map(asMetadata) : signature.inputs;
  return { name: signature.name, versions: [onlyVersion], platform: signature.platform, inputs, outputs: signature.outputs };
}
