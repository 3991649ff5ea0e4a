import type { ErrorDetail } from '../protocol/errors.js';
import type { ModelConfig, TensorDtype, TensorSpec } from './model-config.js';

export type TensorValue = number | boolean;

export interface TensorData {
  readonly dtype: TensorDtype;
  readonly shape: readonly number[];
  readonly data: readonly TensorValue[];
}

/**
 * A request's input in tensor form. `instance` and `instances` are the friendly JSON forms (the
 * answer mirrors them: one object, or a list); `tensors` is the Open Inference Protocol form.
 */
export interface TensorInput {
  readonly form: 'instance' | 'instances' | 'tensors';
  /** Rows along the batch dimension; requests are batched by stacking rows. */
  readonly rows: number;
  readonly tensors: Readonly<Record<string, TensorData>>;
}

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly details: ErrorDetail[] };

const oipDatatypes: Readonly<Record<string, TensorDtype>> = {
  BOOL: 'bool', UINT8: 'uint8', UINT16: 'uint16', UINT32: 'uint32', INT8: 'int8', INT16: 'int16',
  INT32: 'int32', INT64: 'int64', FP32: 'float32', FP64: 'float64',
};
export const oipDatatypeOf: Readonly<Record<TensorDtype, string>> = Object.fromEntries(
  Object.entries(oipDatatypes).map(([k, v]) => [v, k]),
) as Record<TensorDtype, string>;

const intRanges: Partial<Record<TensorDtype, readonly [number, number]>> = {
  int8: [-128, 127], int16: [-32768, 32767], int32: [-2147483648, 2147483647],
  uint8: [0, 255], uint16: [0, 65535], uint32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};
const float32Max = 3.4028234663852886e38;

/** Checks one element against a dtype; returns why it does not fit, or undefined. */
export function elementProblem(value: unknown, dtype: TensorDtype): string | undefined {
  if (dtype === 'bool') return typeof value === 'boolean' ? undefined : `expected true or false, got ${show(value)}`;
  if (typeof value !== 'number') return `expected a number, got ${show(value)}`;
  if (!Number.isFinite(value)) return 'expected a finite number';
  if (dtype === 'float32') return Math.abs(value) > float32Max ? 'out of float32 range' : undefined;
  if (dtype === 'float64') return undefined;
  const range = intRanges[dtype];
  if (!Number.isInteger(value)) return `expected an integer (${dtype}), got ${value}`;
  if (range !== undefined && (value < range[0] || value > range[1])) return `out of ${dtype} range`;
  return undefined;
}

function show(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `the string ${JSON.stringify(value).slice(0, 40)}` : typeof value;
}

const product = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** Flattens nested arrays exactly `depth` levels deep; undefined if the nesting is ragged or wrong. */
function flatten(value: unknown, dims: readonly number[]): unknown[] | undefined {
  if (dims.length === 0) return [value];
  if (!Array.isArray(value)) return undefined;
  const [first, ...rest] = dims;
  if (first !== -1 && value.length !== first) return undefined;
  const out: unknown[] = [];
  for (const item of value) {
    const inner: unknown[] | undefined = rest.length === 0 ? (Array.isArray(item) ? undefined : [item]) : flatten(item, rest);
    if (inner === undefined) return undefined;
    out.push(...inner);
  }
  return out;
}

function checkElements(values: readonly unknown[], spec: TensorSpec, pointer: string, problems: ErrorDetail[]): void {
  for (const [i, v] of values.entries()) {
    const problem = elementProblem(v, spec.dtype);
    if (problem !== undefined) {
      problems.push({ pointer: `${pointer}/${i}`, message: problem });
      if (problems.length >= 10) return; // enough to show what is wrong
    }
  }
}

function describeRow(spec: TensorSpec, features?: readonly string[]): string {
  const rowDims = spec.shape.slice(1);
  const count = product(rowDims);
  const names = features === undefined ? '' : ` (${features.join(', ')})`;
  return rowDims.length === 1 ? `${count} ${spec.dtype} values${names}` : `${spec.dtype} values of shape [${rowDims.join(', ')}]`;
}

/** Parses the `input` of a request to an ONNX model, or says everything that is wrong with it. */
export function parseTensorInput(config: ModelConfig, input: unknown, pointer = '/input'): ParseResult<TensorInput> {
  const inputs = config.inputs ?? [];
  if (typeof input === 'object' && input !== null && !Array.isArray(input) && 'inputs' in input) {
    return parseOipTensors(inputs, input.inputs, `${pointer}/inputs`, config);
  }
  const [only] = inputs;
  if (inputs.length === 1 && only !== undefined) {
    if (Array.isArray(input)) return parseRows(only, input, pointer, config);
    if (config.features !== undefined && typeof input === 'object' && input !== null) {
      return parseFeatureObject(only, config.features, input as Record<string, unknown>, pointer, config);
    }
    return fail(pointer, `expected ${describeRow(only, config.features)}, or {"inputs": [...]} tensors`);
  }
  return fail(pointer, `this model takes ${inputs.length} named tensors: send {"inputs": [...]}`);
}

function fail(pointer: string, message: string): ParseResult<never> {
  return { ok: false, details: [{ pointer, message }] };
}

function parseRows(spec: TensorSpec, input: unknown[], pointer: string, config: ModelConfig): ParseResult<TensorInput> {
  const rowDims = spec.shape.slice(1);
  const rowSize = product(rowDims.map((d) => Math.max(d, 1)));
  const many = input.length > 0 && Array.isArray(input[0]) && rowDims.length === 1;
  const rows = many ? input : [input];
  const data: unknown[] = [];
  const problems: ErrorDetail[] = [];
  for (const [r, row] of rows.entries()) {
    const where = many ? `${pointer}/${r}` : pointer;
    const flat = flatten(row, rowDims);
    if (flat === undefined || (rowDims.every((d) => d !== -1) && flat.length !== rowSize)) {
      const got = Array.isArray(row) ? `${row.length} values` : show(row);
      problems.push({ pointer: where, message: `expected ${describeRow(spec, config.features)}, got ${got}` });
      continue;
    }
    checkElements(flat, spec, where, problems);
    data.push(...flat);
  }
  if (rows.length === 0) problems.push({ pointer, message: `expected ${describeRow(spec, config.features)}, got none` });
  if (rows.length > config.limits.max_instances) {
    problems.push({ pointer, message: `at most ${config.limits.max_instances} instances per request` });
  }
  if (problems.length > 0) return { ok: false, details: problems };
  return {
    ok: true,
    value: {
      form: many ? 'instances' : 'instance',
      rows: rows.length,
      tensors: { [spec.name]: { dtype: spec.dtype, shape: [rows.length, ...rowDims], data: data as TensorValue[] } },
    },
  };
}

function parseFeatureObject(
  spec: TensorSpec,
  features: readonly string[],
  input: Record<string, unknown>,
  pointer: string,
  config: ModelConfig,
): ParseResult<TensorInput> {
  const problems: ErrorDetail[] = [];
  for (const key of Object.keys(input)) {
    if (!features.includes(key)) problems.push({ pointer: `${pointer}/${key}`, message: `unknown feature; expected ${features.join(', ')}` });
  }
  for (const name of features) {
    if (!(name in input)) problems.push({ pointer: `${pointer}/${name}`, message: 'missing feature' });
  }
  if (problems.length > 0) return { ok: false, details: problems };
  return parseRows(spec, features.map((f) => input[f]), pointer, config);
}

function parseOipTensors(
  specs: readonly TensorSpec[],
  raw: unknown,
  pointer: string,
  config: ModelConfig,
): ParseResult<TensorInput> {
  if (!Array.isArray(raw)) return fail(pointer, 'expected an array of {name, datatype, shape, data}');
  const problems: ErrorDetail[] = [];
  const tensors: Record<string, TensorData> = {};
  let rows: number | undefined;
  for (const [i, item] of raw.entries()) {
    const where = `${pointer}/${i}`;
    const t = item as { name?: unknown; datatype?: unknown; shape?: unknown; data?: unknown };
    const spec = specs.find((s) => s.name === t?.name);
    if (spec === undefined) {
      problems.push({ pointer: `${where}/name`, message: `unknown input; expected one of ${specs.map((s) => s.name).join(', ')}` });
      continue;
    }
    if (spec.name in tensors) {
      problems.push({ pointer: `${where}/name`, message: 'given twice' });
      continue;
    }
    if (oipDatatypes[String(t.datatype)] !== spec.dtype) {
      problems.push({ pointer: `${where}/datatype`, message: `expected ${oipDatatypeOf[spec.dtype]}` });
      continue;
    }
    const shape = t.shape;
    if (
      !Array.isArray(shape) ||
      shape.length !== spec.shape.length ||
      !shape.every((d, k) => Number.isInteger(d) && d >= 0 && (spec.shape[k] === -1 || spec.shape[k] === d))
    ) {
      problems.push({ pointer: `${where}/shape`, message: `expected shape [${spec.shape.join(', ')}] (-1: any size)` });
      continue;
    }
    const data = Array.isArray(t.data) ? t.data.flat(Infinity) : undefined;
    const size = product(shape as number[]);
    if (data === undefined || data.length !== size) {
      problems.push({ pointer: `${where}/data`, message: `expected ${size} values for shape [${shape.join(', ')}]` });
      continue;
    }
    checkElements(data, spec, `${where}/data`, problems);
    const batch = shape[0] as number;
    if (rows !== undefined && rows !== batch) problems.push({ pointer: `${where}/shape/0`, message: 'batch sizes differ between inputs' });
    rows = batch;
    tensors[spec.name] = { dtype: spec.dtype, shape: shape as number[], data: data as TensorValue[] };
  }
  for (const spec of specs) {
    const named = raw.some((item) => (item as { name?: unknown } | null)?.name === spec.name);
    if (!named) {
      problems.push({ pointer, message: `missing input ${spec.name}` });
    }
  }
  if (rows !== undefined && rows > config.limits.max_instances) {
    problems.push({ pointer, message: `at most ${config.limits.max_instances} rows per request` });
  }
  if (problems.length > 0 || rows === undefined) return { ok: false, details: problems.length > 0 ? problems : [{ pointer, message: 'no tensors' }] };
  return { ok: true, value: { form: 'tensors', rows, tensors } };
}
