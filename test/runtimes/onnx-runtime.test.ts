import { describe, expect, it } from 'vitest';
import { loadModelRepository } from '../../src/models/model-repository.js';
import { loadRuntime } from '../../src/runtimes/load-runtime.js';
import { StepStopwatch } from '../../src/runtimes/step-stopwatch.js';
import { modelsDir, samples } from '../helpers/paths.js';

const repo = loadModelRepository(modelsDir);
const signal = new AbortController().signal;

describe('onnx runtime on the demo models', () => {
  it('loads every demo model without failures', () => {
    expect(repo.failures).toEqual([]);
    expect([...repo.models.keys()]).toEqual(expect.arrayContaining(['digits', 'echo', 'iris', 'sleep']));
  });

  for (const name of ['iris', 'digits', 'digits-wide'] as const) {
    it(`${name}: classifies the known samples, batched together, with probabilities`, async () => {
      const runtime = await loadRuntime(repo.models.get(name)!);
      const known = samples(name);
      const outcomes = await runtime.predict(known.map((s) => s.input), { signal });
      for (const [i, sample] of known.entries()) {
        const outcome = outcomes[i]!;
        expect(outcome.ok).toBe(true);
        const output = (outcome as { output: { label: string; class_index: number; probabilities: Record<string, number> } }).output;
        expect(output.label).toBe(sample.label_name);
        expect(output.class_index).toBe(sample.label);
        const total = Object.values(output.probabilities).reduce((a, b) => a + b, 0);
        expect(total).toBeCloseTo(1, 4);
      }
      await runtime.close();
    });
  }

  it('iris: the same answer alone, in a batch, as named features, and as raw tensors', async () => {
    const runtime = await loadRuntime(repo.models.get('iris')!);
    const [setosa] = samples('iris');
    const [alone, asFeatures, asTensor, asList] = await runtime.predict(
      [
        setosa!.input,
        { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 },
        { inputs: [{ name: 'float_input', datatype: 'FP32', shape: [1, 4], data: setosa!.input }] },
        [setosa!.input, [6.7, 3.0, 5.2, 2.3]],
      ],
      { signal },
    );
    const single = (alone as { output: { probabilities: object } }).output;
    expect((asFeatures as { output: unknown }).output).toEqual(single);
    const raw = (asTensor as { output: { outputs: { name: string; datatype: string; shape: number[]; data: number[] }[] } }).output;
    expect(raw.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([
      ['label', 'INT64', [1]],
      ['probabilities', 'FP32', [1, 3]],
    ]);
    expect(raw.outputs[0]!.data).toEqual([0]);
    const list = (asList as { output: { label: string }[] }).output;
    expect(list.map((o) => o.label)).toEqual(['setosa', 'virginica']);
    await runtime.close();
  });
});

describe('onnx runtime step times', () => {
  it('laps preprocess, inference and postprocess for a batch, summed over its shapes', async () => {
    const runtime = await loadRuntime(repo.models.get('iris')!);
    const [setosa] = samples('iris');
    const timer = new StepStopwatch();
    // Two shapes of input (one row, two rows) run as separate stacks; each is timed and summed.
    const outcomes = await runtime.predict([setosa!.input, [setosa!.input, [6.7, 3.0, 5.2, 2.3]]], { signal, timer });
    expect(outcomes.every((o) => o.ok)).toBe(true);
    for (const step of ['preprocess', 'inference', 'postprocess'] as const) expect(timer.ms[step]).toBeGreaterThanOrEqual(0);
    await runtime.close();
  });

  it('a batch none of whose inputs parse has preprocessed only', async () => {
    const runtime = await loadRuntime(repo.models.get('iris')!);
    const timer = new StepStopwatch();
    const [outcome] = await runtime.predict([[1, 2]], { signal, timer });
    expect(outcome?.ok).toBe(false);
    expect(Object.keys(timer.ms)).toEqual(['preprocess']);
    await runtime.close();
  });
});
