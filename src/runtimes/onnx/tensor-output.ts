import type { ModelConfig, TensorDtype } from '../../models/model-config.js';
import { oipDatatypeOf, type TensorInput } from '../../models/tensor-input.js';

/** An output tensor of one request: its rows of the batch, as plain JSON numbers. */
export interface OutputTensor {
  readonly name: string;
  readonly dtype: TensorDtype;
  readonly shape: readonly number[];
  readonly data: readonly (number | boolean)[];
}

/**
 * Shapes a request's output tensors for the client. The tensor form answers in Open Inference
 * Protocol tensors; the friendly forms answer one object per instance: for classifiers a label
 * with its probabilities, otherwise each output's values for that row.
 */
export function formatOutput(config: ModelConfig, input: TensorInput, outputs: readonly OutputTensor[]): unknown {
  if (input.form === 'tensors') {
    return {
      outputs: outputs.map((t) => ({ name: t.name, datatype: oipDatatypeOf[t.dtype], shape: t.shape, data: t.data })),
    };
  }
  const rows = Array.from({ length: input.rows }, (_, r) => formatRow(config, outputs, r));
  return input.form === 'instance' ? rows[0] : rows;
}

function rowOf(tensor: OutputTensor, row: number): readonly (number | boolean)[] {
  const width = tensor.shape.slice(1).reduce((a, b) => a * b, 1);
  return tensor.data.slice(row * width, (row + 1) * width);
}

function formatRow(config: ModelConfig, outputs: readonly OutputTensor[], row: number): unknown {
  const byName = new Map(outputs.map((t) => [t.name, t]));
  const c = config.classification;
  if (c !== undefined) {
    const labelTensor = byName.get(c.label_output);
    const probTensor = byName.get(c.probabilities_output);
    if (labelTensor !== undefined && probTensor !== undefined) {
      const classIndex = Number(rowOf(labelTensor, row)[0]);
      const probs = rowOf(probTensor, row).map(Number);
      return {
        label: c.labels[classIndex] ?? String(classIndex),
        class_index: classIndex,
        probabilities: Object.fromEntries(probs.map((p, i) => [c.labels[i] ?? String(i), p])),
      };
    }
  }
  return Object.fromEntries(
    outputs.map((t) => {
      const values = rowOf(t, row);
      return [t.name, t.shape.length === 1 ? values[0] : values];
    }),
  );
}
