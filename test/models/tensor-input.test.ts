import { describe, expect, it } from 'vitest';
import { createInputValidator } from '../../src/models/input-validator.js';
import { loadModelRepository } from '../../src/models/model-repository.js';
import { modelsDir } from '../helpers/paths.js';

const repo = loadModelRepository(modelsDir);
const iris = createInputValidator(repo.models.get('iris')!);
const digits = createInputValidator(repo.models.get('digits')!);
const echo = createInputValidator(repo.models.get('echo')!);

describe('input validation against declared inputs', () => {
  it('accepts the friendly and raw forms', () => {
    expect(iris([5.1, 3.5, 1.4, 0.2])).toEqual([]);
    expect(iris([[5.1, 3.5, 1.4, 0.2], [1, 2, 3, 4]])).toEqual([]);
    expect(iris({ sepal_length: 1, sepal_width: 2, petal_length: 3, petal_width: 4 })).toEqual([]);
    expect(iris({ inputs: [{ name: 'float_input', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7, 8] }] })).toEqual([]);
    expect(digits(Array.from({ length: 64 }, () => 3))).toEqual([]);
    expect(echo({ anything: ['goes'] })).toEqual([]);
  });

  it('says what was expected for a wrong length', () => {
    const [problem] = iris([1, 2, 3]);
    expect(problem?.message).toContain('expected 4 float32 values (sepal_length, sepal_width, petal_length, petal_width), got 3 values');
    expect(digits([1, 2])[0]?.message).toContain('expected 64 float32 values');
  });

  it('points at a wrong type, null and non-finite values', () => {
    expect(iris([1, 'two', 3, 4])).toEqual([{ pointer: '/input/1', message: 'expected a number, got the string "two"' }]);
    expect(iris([1, null, 3, 4])[0]).toMatchObject({ pointer: '/input/1', message: 'expected a number, got null' });
    expect(iris([1, 2, 3, 1e39])[0]?.message).toBe('out of float32 range');
  });

  it('names missing and unknown features, and wrong tensors', () => {
    const problems = iris({ sepal_length: 1, sepal_width: 2, petal_length: 3, colour: 'red' });
    expect(problems).toEqual(
      expect.arrayContaining([
        { pointer: '/input/colour', message: expect.stringContaining('unknown feature') },
        { pointer: '/input/petal_width', message: 'missing feature' },
      ]),
    );
    expect(iris({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] })[0]?.message).toContain('unknown input');
    expect(iris({ inputs: [{ name: 'float_input', datatype: 'INT64', shape: [1, 4], data: [1, 2, 3, 4] }] })[0]?.message).toBe('expected FP32');
    expect(iris({ inputs: [{ name: 'float_input', datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }] })[0]?.pointer).toBe('/input/inputs/0/shape');
    expect(iris({ inputs: [] })[0]?.message).toBe('missing input float_input');
    expect(iris('hello')[0]?.message).toContain('expected 4 float32 values');
  });
});
