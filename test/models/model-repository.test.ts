import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadModelRepository } from '../../src/models/model-repository.js';

/** A repository of one model named `bad` with this config (and an empty handler file). */
function failureOf(config: Record<string, unknown>) {
  const root = mkdtempSync(join(tmpdir(), 'spillway-repo-'));
  mkdirSync(join(root, 'bad'));
  writeFileSync(join(root, 'bad', 'handler.js'), 'export function predict(x) { return x; }\n');
  writeFileSync(join(root, 'bad', 'model.yaml'), stringify(config));
  const repository = loadModelRepository(root);
  expect(repository.models.size).toBe(0);
  const [failure] = repository.failures;
  expect(failure?.error.code).toBe('SPILLWAY_INVALID_MODEL_CONFIG');
  return failure!.error;
}

describe('model config errors', () => {
  it('name the allowed values of runtime, once', () => {
    const error = failureOf({ runtime: 'tensorflow', file: 'handler.js' });
    expect(error.message).toContain('runtime: must be one of onnx, handler, got "tensorflow"');
    expect(error.message).not.toContain('constant');
    expect(error.message).not.toContain('anyOf');
    expect(error.message.match(/runtime:/g)).toHaveLength(1);
  });

  it('name the allowed values of dispatch and of every tensor dtype', () => {
    const error = failureOf({
      runtime: 'onnx',
      file: 'handler.js',
      dispatch: 'batch',
      inputs: [{ name: 'x', dtype: 'float', shape: [-1, 4] }],
      outputs: [{ name: 'y', dtype: 'double', shape: [-1] }],
    });
    const pointers = Object.fromEntries((error.details ?? []).map((d) => [d.pointer, d.message]));
    expect(pointers).toEqual({
      dispatch: 'must be one of async, sync, got "batch"',
      'inputs.0.dtype': 'must be one of float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, bool, got "float"',
      'outputs.0.dtype': 'must be one of float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, bool, got "double"',
    });
  });

  it('still list every other problem beside them', () => {
    const error = failureOf({ runtime: 'tensorflow', file: 'handler.js', max_batch_size: -1, colour: 'red' });
    expect(error.details?.map((d) => `${d.pointer}: ${d.message}`)).toEqual([
      '(root): must NOT have additional properties "colour"',
      'runtime: must be one of onnx, handler, got "tensorflow"',
      'max_batch_size: must be >= 1',
    ]);
  });
});

describe('batch_wait_ms', () => {
  it('is a number of ms or auto, and a wrong value says so', () => {
    const error = failureOf({ runtime: 'handler', file: 'handler.js', batch_wait_ms: 'soon' });
    expect(error.details?.map((d) => `${d.pointer}: ${d.message}`)).toEqual(['batch_wait_ms: must be an integer from 0 to 10000, or "auto", got "soon"']);
  });
});
