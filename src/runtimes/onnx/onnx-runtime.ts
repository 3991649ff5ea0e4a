import { join } from 'node:path';
import ort from 'onnxruntime-node';
import type { ModelConfig, ModelSpec, TensorDtype } from '../../models/model-config.js';
import { parseTensorInput, type TensorData, type TensorInput } from '../../models/tensor-input.js';
import { SpillwayError } from '../../protocol/errors.js';
import type { ModelRuntime, Outcome, PredictContext, StepTimer } from '../runtime.js';
import { formatOutput, type OutputTensor } from './tensor-output.js';

type OrtTensorData = Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array | Uint32Array;

function toTypedArray(dtype: TensorDtype, data: readonly (number | boolean)[]): OrtTensorData {
  switch (dtype) {
    case 'float32': return Float32Array.from(data as number[]);
    case 'float64': return Float64Array.from(data as number[]);
    case 'int8': return Int8Array.from(data as number[]);
    case 'int16': return Int16Array.from(data as number[]);
    case 'int32': return Int32Array.from(data as number[]);
    case 'int64': return BigInt64Array.from(data as number[], (v) => BigInt(v));
    case 'uint8': return Uint8Array.from(data as number[]);
    case 'uint16': return Uint16Array.from(data as number[]);
    case 'uint32': return Uint32Array.from(data as number[]);
    case 'bool': return Uint8Array.from(data as boolean[], (v) => (v ? 1 : 0));
  }
}

function fromTensor(tensor: ort.Tensor): (number | boolean)[] {
  const data = tensor.data;
  if (tensor.type === 'bool') return Array.from(data as Uint8Array, (v) => v !== 0);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Array.from(data, Number);
  if (Array.isArray(data)) throw new Error(`string tensors are not supported (${tensor.type})`);
  return Array.from(data as ArrayLike<number>);
}

interface Parsed {
  readonly index: number;
  readonly input: TensorInput;
}

/** Serves one .onnx file on the CPU; requests in a batch are stacked along the first dimension. */
export class OnnxRuntime implements ModelRuntime {
  private constructor(
    private readonly config: ModelConfig,
    private readonly session: ort.InferenceSession,
  ) {}

  static async load(spec: ModelSpec): Promise<OnnxRuntime> {
    const threads = spec.config.intra_op_threads;
    const session = await ort.InferenceSession.create(join(spec.dir, spec.config.file), {
      executionProviders: ['cpu'],
      // Unset: onnxruntime's default, a thread per core, which on a small machine competes with
      // the gateway and the other slots for the same cores.
      ...(threads === undefined ? {} : { intraOpNumThreads: threads }),
    });
    checkDeclaredTensors(spec, session);
    return new OnnxRuntime(spec.config, session);
  }

  async predict(inputs: readonly unknown[], context: PredictContext): Promise<readonly Outcome[]> {
    const outcomes: Outcome[] = new Array<Outcome>(inputs.length);
    const groups = new Map<string, Parsed[]>();
    for (const [index, raw] of inputs.entries()) {
      const parsed = parseTensorInput(this.config, raw);
      if (!parsed.ok) {
        outcomes[index] = { ok: false, error: new SpillwayError('SPILLWAY_INVALID_INPUT', undefined, { details: parsed.details }) };
        continue;
      }
      // Only requests whose non-batch dimensions agree can share one run.
      const signature = Object.entries(parsed.value.tensors)
        .map(([name, t]) => `${name}:${t.shape.slice(1).join('x')}`)
        .join('|');
      const group = groups.get(signature) ?? [];
      group.push({ index, input: parsed.value });
      groups.set(signature, group);
    }
    const timer = context.timer;
    timer?.lap('preprocess');
    for (const group of groups.values()) {
      if (context.signal.aborted) throw new SpillwayError('SPILLWAY_MODEL_FAILED', 'aborted', { retryable: true });
      const results = await this.runStacked(group, timer);
      for (const [k, item] of group.entries()) outcomes[item.index] = { ok: true, output: results[k] };
    }
    return outcomes;
  }

  async close(): Promise<void> {
    await this.session.release();
  }

  /** Stacking the inputs is preprocessing, the session's run is inference, splitting and shaping the outputs postprocessing. */
  private async runStacked(group: readonly Parsed[], timer: StepTimer | undefined): Promise<unknown[]> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const spec of this.config.inputs ?? []) {
      const parts = group.map((p) => p.input.tensors[spec.name] as TensorData);
      const rows = parts.reduce((n, t) => n + (t.shape[0] ?? 0), 0);
      const shape = [rows, ...(parts[0]?.shape.slice(1) ?? [])];
      feeds[spec.name] = new ort.Tensor(spec.dtype, toTypedArray(spec.dtype, parts.flatMap((t) => t.data)), shape);
    }
    timer?.lap('preprocess');
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      results = await this.session.run(feeds);
    } catch (error) {
      throw new SpillwayError('SPILLWAY_MODEL_FAILED', `onnxruntime: ${(error as Error).message}`, { cause: error });
    }
    timer?.lap('inference');
    const declared = this.config.outputs ?? [];
    const columns = declared.map((spec) => {
      const tensor = results[spec.name] as ort.Tensor;
      return { spec, dims: tensor.dims, data: fromTensor(tensor) };
    });
    let offset = 0;
    const formatted = group.map(({ input }) => {
      const outputs: OutputTensor[] = columns.map(({ spec, dims, data }) => {
        const width = dims.slice(1).reduce((a, b) => a * b, 1);
        return {
          name: spec.name,
          dtype: spec.dtype,
          shape: [input.rows, ...dims.slice(1)],
          data: data.slice(offset * width, (offset + input.rows) * width),
        };
      });
      offset += input.rows;
      return formatOutput(this.config, input, outputs);
    });
    timer?.lap('postprocess');
    return formatted;
  }
}

/** A config that disagrees with the file it describes is a load error, not a runtime surprise. */
function checkDeclaredTensors(spec: ModelSpec, session: ort.InferenceSession): void {
  const problems: string[] = [];
  const compare = (kind: 'inputs' | 'outputs', actual: readonly string[]) => {
    for (const t of spec.config[kind] ?? []) {
      if (!actual.includes(t.name)) problems.push(`${kind} ${t.name} is not in the model (it has ${actual.join(', ')})`);
    }
  };
  compare('inputs', session.inputNames);
  compare('outputs', session.outputNames);
  for (const name of session.inputNames) {
    if (!(spec.config.inputs ?? []).some((t) => t.name === name)) problems.push(`the model's input ${name} is not declared`);
  }
  if (problems.length > 0) {
    throw new SpillwayError('SPILLWAY_MODEL_LOAD_FAILED', `model ${spec.name}: ${problems.join('; ')}`);
  }
}
