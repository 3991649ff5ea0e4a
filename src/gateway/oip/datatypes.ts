import type { TensorDtype } from '../../models/model-config.js';
import { elementProblem } from '../../models/tensor-input.js';

/** The Open Inference Protocol's tensor datatypes that Spillway reads in JSON. */
export const oipDatatypes = [
  'BOOL', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'FP16', 'FP32', 'FP64', 'BYTES',
] as const;
export type OipDatatype = (typeof oipDatatypes)[number];

export function isOipDatatype(value: unknown): value is OipDatatype {
  return typeof value === 'string' && (oipDatatypes as readonly string[]).includes(value);
}

/** A model input's dtype (model.yaml) as the protocol names it. */
export const datatypeOfDtype: Readonly<Record<TensorDtype, OipDatatype>> = {
  bool: 'BOOL', int8: 'INT8', int16: 'INT16', int32: 'INT32', int64: 'INT64',
  uint8: 'UINT8', uint16: 'UINT16', uint32: 'UINT32', float32: 'FP32', float64: 'FP64',
};

/** The datatypes a model's dtype has an equal in; the rest exist only on the wire. */
const dtypeOfDatatype: Readonly<Partial<Record<OipDatatype, TensorDtype>>> = Object.fromEntries(
  Object.entries(datatypeOfDtype).map(([dtype, datatype]) => [datatype, dtype]),
);

/** Largest finite half-precision value; anything larger would become infinity. */
const fp16Max = 65504;
/** Smallest normal half-precision value (2^-14); below it the spacing stays 2^-24. */
const fp16MinNormal = 2 ** -14;

/** Why one element does not fit `datatype`, or undefined when it does. */
export function datatypeProblem(value: unknown, datatype: OipDatatype): string | undefined {
  if (datatype === 'BYTES') return typeof value === 'string' ? undefined : `expected a string (BYTES), got ${typeof value}`;
  if (datatype === 'FP16') {
    const problem = elementProblem(value, 'float64');
    if (problem !== undefined) return problem;
    return Math.abs(value as number) > fp16Max ? `out of FP16 range (at most ${fp16Max} in magnitude)` : undefined;
  }
  if (datatype === 'UINT64') {
    // JSON numbers are doubles: past 2^53 - 1 they no longer stand for one integer.
    const problem = elementProblem(value, 'int64');
    return problem ?? ((value as number) < 0 ? 'out of UINT64 range (negative)' : undefined);
  }
  const dtype = dtypeOfDatatype[datatype];
  return dtype === undefined ? `unknown datatype ${datatype}` : elementProblem(value, dtype);
}

/**
 * The half-precision value nearest to `x` (ties to even, as IEEE 754 rounds), as a JS number:
 * every half value is exact in float32 and float64, so this is what a model would have seen had
 * the client converted to float16 itself. `x` must be finite and within ±65504.
 */
export function roundToFp16(x: number): number {
  if (x === 0) return x;
  const a = Math.abs(x);
  let exponent = Math.floor(Math.log2(a));
  // log2 may be off by one right at a power of two.
  if (2 ** exponent > a) exponent -= 1;
  else if (2 ** (exponent + 1) <= a) exponent += 1;
  // 10 fraction bits: normal values are spaced 2^(e-10) apart; subnormals 2^-24.
  const spacing = a < fp16MinNormal ? 2 ** -24 : 2 ** (exponent - 10);
  return Math.sign(x) * roundHalfEven(a / spacing) * spacing;
}

function roundHalfEven(q: number): number {
  const floor = Math.floor(q);
  const rest = q - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * The datatype a request tensor must have for a model input of `dtype`: its own, plus FP16 for
 * a float32 input (rounded to half precision, then passed as float32, see docs/oip-v2.md).
 */
export function acceptsDatatype(dtype: TensorDtype, datatype: OipDatatype): boolean {
  return datatypeOfDtype[dtype] === datatype || (dtype === 'float32' && datatype === 'FP16');
}
