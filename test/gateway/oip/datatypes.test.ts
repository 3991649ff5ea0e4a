import { describe, expect, it } from 'vitest';
import { acceptsDatatype, datatypeProblem, roundToFp16 } from '../../../src/gateway/oip/datatypes.js';

describe('FP16 conversion', () => {
  // Expected values are numpy's: float(np.float16(x)), round to nearest, ties to even.
  it.each([
    [0.1, 0.0999755859375],
    [1 / 3, 0.333251953125],
    [65504, 65504],
    [-2.5e-7, -2.384185791015625e-7],
    [6e-8, 5.960464477539063e-8],
    [1e-8, 0],
    [3.14159, 3.140625],
    [2049, 2048],
    [2051, 2052],
    [0.5, 0.5],
    [-1.0000001, -1],
  ])('%f becomes the nearest half-precision value %f', (value, half) => {
    expect(roundToFp16(value)).toBe(half);
  });

  it('is accepted for float32 inputs only', () => {
    expect(acceptsDatatype('float32', 'FP16')).toBe(true);
    expect(acceptsDatatype('float64', 'FP16')).toBe(false);
    expect(acceptsDatatype('float32', 'FP64')).toBe(false);
  });
});

describe('values are checked against their datatype', () => {
  it.each([
    ['BOOL', true, 0],
    ['INT8', -128, 128],
    ['INT16', 32767, -32769],
    ['INT32', -2147483648, 2147483648],
    ['INT64', Number.MAX_SAFE_INTEGER, 2 ** 53],
    ['UINT8', 255, -1],
    ['UINT16', 65535, 65536],
    ['UINT32', 4294967295, 4294967296],
    ['UINT64', Number.MAX_SAFE_INTEGER, -1],
    ['FP16', -65504, 65505],
    ['FP32', 3.4e38, 3.5e38],
    ['FP64', 1e308, 'NaN'],
    ['BYTES', '{"a": 1}', 1],
  ] as const)('%s: %s fits, %s does not', (datatype, good, bad) => {
    expect(datatypeProblem(good, datatype)).toBeUndefined();
    expect(datatypeProblem(bad, datatype)).toMatch(/.+/);
  });

  it('integers must be whole and booleans must be booleans', () => {
    expect(datatypeProblem(1.5, 'INT32')).toContain('expected an integer');
    expect(datatypeProblem(1, 'BOOL')).toContain('expected true or false');
    expect(datatypeProblem(Infinity, 'FP64')).toContain('finite');
  });
});
