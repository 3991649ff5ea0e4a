import type { TensorSpec } from '../../models/model-config.js';
import { SpillwayError, type ErrorDetail } from '../../protocol/errors.js';
import { priorityClasses, priorityClassOfOip, type PriorityClass } from '../../protocol/priority.js';
import { parseJsonBody } from '../json-body.js';
import type { PredictionRequestBody } from '../schemas.js';
import { acceptsDatatype, datatypeOfDtype, datatypeProblem, isOipDatatype, oipDatatypes, roundToFp16, type OipDatatype } from './datatypes.js';
import type { OipSignature } from './signature.js';

/** A v2 inference request, read and checked: what to submit and how to answer. */
export interface InferCall {
  readonly signature: OipSignature;
  /** The request's own `id`, echoed in the answer. */
  readonly requestId: string | undefined;
  /** Output names the client asked for; undefined: all. */
  readonly requested: readonly string[] | undefined;
  /** `parameters.spillway_async`: answer 202 at once instead of holding the connection. */
  readonly async: boolean;
  /** The request as Spillway's submit path takes it. */
  readonly body: PredictionRequestBody;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Collects every problem with a request, so one answer names them all. */
class Problems {
  readonly list: ErrorDetail[] = [];
  add(pointer: string, message: string): void {
    if (this.list.length < 20) this.list.push({ pointer, message });
  }
  unknownKeys(value: Json, allowed: readonly string[], pointer: string): void {
    for (const key of Object.keys(value)) if (!allowed.includes(key)) this.add(`${pointer}/${key}`, `unknown field; expected ${allowed.join(', ')}`);
  }
}

/** Reads a v2 inference request for `signature`; throws SPILLWAY_INVALID_INPUT naming every problem. */
export function readInferRequest(signature: OipSignature, raw: unknown): InferCall {
  const problems = new Problems();
  if (!isObject(raw)) throw invalid([{ pointer: '', message: 'expected an inference request object {"inputs": [...]}' }]);
  problems.unknownKeys(raw, ['id', 'parameters', 'inputs', 'outputs'], '');
  const requestId = raw['id'];
  if (requestId !== undefined && typeof requestId !== 'string') problems.add('/id', 'expected a string');
  const parameters = readParameters(raw['parameters'], problems);
  const requested = readRequestedOutputs(signature, raw['outputs'], problems);
  const input = signature.kind === 'tensors' ? readTensors(signature.inputs, raw['inputs'], problems) : readJsonInput(raw['inputs'], problems);
  if (problems.list.length > 0) throw invalid(problems.list);
  return {
    signature,
    requestId: requestId as string | undefined,
    requested,
    async: parameters.async,
    body: {
      input,
      ...(requestId === undefined ? {} : { metadata: { oip_request_id: requestId } }),
      ...(parameters.callbackUrl === undefined ? {} : { callback: { url: parameters.callbackUrl } }),
      ...(parameters.priority === undefined ? {} : { priority: parameters.priority }),
    },
  };
}

/** The details are spelled out in the answer's `error` (oip-error.ts), where v2 clients look. */
function invalid(details: readonly ErrorDetail[]): SpillwayError {
  return new SpillwayError('SPILLWAY_INVALID_INPUT', 'the inference request does not fit the model', { details });
}

interface Parameters {
  readonly async: boolean;
  readonly callbackUrl: string | undefined;
  readonly priority: PriorityClass | undefined;
}

/** Request parameters Spillway reads; the protocol lets servers ignore the others. */
function readParameters(raw: unknown, problems: Problems): Parameters {
  if (raw === undefined) return { async: false, callbackUrl: undefined, priority: undefined };
  if (!isObject(raw)) {
    problems.add('/parameters', 'expected an object');
    return { async: false, callbackUrl: undefined, priority: undefined };
  }
  const async = raw['spillway_async'] ?? false;
  if (typeof async !== 'boolean') problems.add('/parameters/spillway_async', 'expected true or false');
  const url = raw['callback_url'];
  if (url !== undefined && (typeof url !== 'string' || url.length > 2048)) problems.add('/parameters/callback_url', 'expected an http(s) URL of at most 2048 characters');
  return { async: async === true, callbackUrl: typeof url === 'string' ? url : undefined, priority: readPriority(raw['priority'], problems) };
}

/**
 * `parameters.priority` as Triton reads it (0 the default, 1 the highest, larger lower; see
 * priorityClassOfOip), or one of Spillway's class names.
 */
function readPriority(raw: unknown, problems: Problems): PriorityClass | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0) return priorityClassOfOip(raw);
  if (typeof raw === 'string' && (priorityClasses as readonly string[]).includes(raw)) return raw as PriorityClass;
  problems.add('/parameters/priority', `expected an integer ≥ 0 (1 the highest, 0 the default) or one of ${priorityClasses.join(', ')}`);
  return undefined;
}

function readRequestedOutputs(signature: OipSignature, raw: unknown, problems: Problems): string[] | undefined {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw)) {
    problems.add('/outputs', 'expected an array of {"name": ...}');
    return undefined;
  }
  const known = signature.outputs.map((o) => o.name);
  const names: string[] = [];
  for (const [i, item] of raw.entries()) {
    const name = isObject(item) ? item['name'] : undefined;
    if (typeof name !== 'string' || !known.includes(name)) {
      problems.add(`/outputs/${i}/name`, `unknown output ${JSON.stringify(name)}; model ${signature.name} has ${known.join(', ')}`);
      continue;
    }
    const parameters = isObject(item) ? item['parameters'] : undefined;
    if (isObject(parameters) && parameters['classification'] !== undefined) {
      problems.add(`/outputs/${i}/parameters/classification`, 'the classification extension is not supported');
    }
    names.push(name);
  }
  return names;
}

/** One input tensor's fields, each checked for its own sake (before comparing with the model). */
interface RawTensor {
  readonly name: string;
  readonly datatype: OipDatatype;
  readonly shape: readonly number[];
  /** Row-major, flattened. */
  readonly data: readonly unknown[];
}

function readTensor(raw: unknown, pointer: string, problems: Problems): RawTensor | undefined {
  if (!isObject(raw)) {
    problems.add(pointer, 'expected a tensor {"name", "shape", "datatype", "data"}');
    return undefined;
  }
  const before = problems.list.length;
  problems.unknownKeys(raw, ['name', 'shape', 'datatype', 'data', 'parameters'], pointer);
  const { name, shape, datatype, data, parameters } = raw;
  if (typeof name !== 'string') problems.add(`${pointer}/name`, 'expected a string');
  if (!isOipDatatype(datatype)) problems.add(`${pointer}/datatype`, `expected one of ${oipDatatypes.join(', ')}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    problems.add(`${pointer}/shape`, 'expected an array of non-negative integers');
  }
  if (isObject(parameters) && parameters['binary_data_size'] !== undefined) {
    problems.add(`${pointer}/parameters/binary_data_size`, 'binary tensor data is not supported: send the data as JSON');
  }
  if (problems.list.length > before) return undefined;
  const dims = shape as number[];
  const flat = flattenTo(data, dims);
  if (flat === undefined) {
    const count = dims.reduce((a, b) => a * b, 1);
    problems.add(`${pointer}/data`, `expected ${count} values for shape [${dims.join(', ')}], flat or nested to that shape`);
    return undefined;
  }
  for (const [i, value] of flat.entries()) {
    const problem = datatypeProblem(value, datatype as OipDatatype);
    if (problem !== undefined) problems.add(`${pointer}/data/${i}`, problem);
  }
  return problems.list.length > before ? undefined : { name: name as string, datatype: datatype as OipDatatype, shape: dims, data: flat };
}

/**
 * The data in row-major order: given flat (as many values as the shape holds) or nested exactly
 * as the shape says. Undefined for anything else: a ragged or wrongly sized array.
 */
function flattenTo(data: unknown, shape: readonly number[]): unknown[] | undefined {
  if (!Array.isArray(data)) return undefined;
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length === count && !data.some(Array.isArray)) return data as unknown[];
  const out: unknown[] = [];
  const walk = (value: unknown, depth: number): boolean => {
    if (depth === shape.length) {
      if (Array.isArray(value)) return false;
      out.push(value);
      return true;
    }
    return Array.isArray(value) && value.length === shape[depth] && value.every((item) => walk(item, depth + 1));
  };
  return shape.length > 0 && walk(data, 0) ? out : undefined;
}

function readTensors(specs: readonly TensorSpec[], raw: unknown, problems: Problems): unknown {
  if (!Array.isArray(raw) || raw.length === 0) {
    problems.add('/inputs', `expected an array of input tensors (${specs.map((s) => s.name).join(', ')})`);
    return undefined;
  }
  const tensors: Json[] = [];
  const seen = new Set<string>();
  for (const [i, item] of raw.entries()) {
    const pointer = `/inputs/${i}`;
    const tensor = readTensor(item, pointer, problems);
    if (tensor === undefined) continue;
    const spec = specs.find((s) => s.name === tensor.name);
    if (spec === undefined) {
      problems.add(`${pointer}/name`, `unknown input; expected ${specs.map((s) => s.name).join(', ')}`);
    } else if (seen.has(spec.name)) {
      problems.add(`${pointer}/name`, 'given twice');
    } else if (fitsSpec(tensor, spec, pointer, problems)) {
      seen.add(spec.name);
      tensors.push(asSpillwayTensor(tensor, spec));
    }
  }
  for (const spec of specs) if (!raw.some((t) => isObject(t) && t['name'] === spec.name)) problems.add('/inputs', `missing input ${spec.name}`);
  return { inputs: tensors };
}

function fitsSpec(tensor: RawTensor, spec: TensorSpec, pointer: string, problems: Problems): boolean {
  const expected = datatypeOfDtype[spec.dtype];
  if (!acceptsDatatype(spec.dtype, tensor.datatype)) {
    problems.add(`${pointer}/datatype`, `input ${spec.name} takes ${expected}${spec.dtype === 'float32' ? ' (or FP16)' : ''}, got ${tensor.datatype}`);
    return false;
  }
  const fits = tensor.shape.length === spec.shape.length && tensor.shape.every((d, k) => spec.shape[k] === -1 || spec.shape[k] === d);
  if (!fits) problems.add(`${pointer}/shape`, `input ${spec.name} takes shape [${spec.shape.join(', ')}] (-1: any size), got [${tensor.shape.join(', ')}]`);
  return fits;
}

/** Spillway's own tensor form; FP16 values become the float32 values nearest half precision. */
function asSpillwayTensor(tensor: RawTensor, spec: TensorSpec): Json {
  const data = tensor.datatype === 'FP16' ? tensor.data.map((v) => roundToFp16(v as number)) : tensor.data;
  return { name: spec.name, datatype: datatypeOfDtype[spec.dtype], shape: tensor.shape, data };
}

/** A model without declared inputs takes one BYTES tensor `input` whose one element is a JSON text. */
function readJsonInput(raw: unknown, problems: Problems): unknown {
  if (!Array.isArray(raw) || raw.length !== 1) {
    problems.add('/inputs', 'this model takes free-form JSON: send one BYTES tensor "input" of shape [1] holding a JSON text');
    return undefined;
  }
  const tensor = readTensor(raw[0], '/inputs/0', problems);
  if (tensor === undefined) return undefined;
  if (tensor.name !== 'input') problems.add('/inputs/0/name', 'expected "input"');
  if (tensor.datatype !== 'BYTES') problems.add('/inputs/0/datatype', `input takes BYTES (a JSON text), got ${tensor.datatype}`);
  if (tensor.shape.length !== 1 || tensor.shape[0] !== 1) problems.add('/inputs/0/shape', `input takes shape [1], got [${tensor.shape.join(', ')}]`);
  if (problems.list.length > 0) return undefined;
  try {
    // The same checks as a request body: the text becomes the body of a Spillway request.
    return parseJsonBody(Buffer.from(tensor.data[0] as string, 'utf8'));
  } catch (error) {
    problems.add('/inputs/0/data/0', `not a usable JSON text: ${(error as Error).message}`);
    return undefined;
  }
}
