import { Type, type SchemaOptions, type TUnsafe } from '@sinclair/typebox';

/**
 * A string that must be one of `values`. TypeBox's Union-of-Literals emits `anyOf`, whose Ajv
 * errors are one per branch ("must be equal to constant", twice, then "must match a schema in
 * anyOf") and never name the values; a plain `enum` gives one error with every allowed value,
 * and lets --help list them.
 */
export function stringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] });
}
