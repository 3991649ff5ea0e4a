/**
 * `fields` without the keys whose value is undefined: a message or record built from optional
 * inputs then reads the same before and after a trip through JSON, and comparing two is exact.
 */
export function withoutUndefined<T extends object>(fields: T): T {
  const kept: Partial<T> = {};
  for (const key of Object.keys(fields) as (keyof T)[]) if (fields[key] !== undefined) kept[key] = fields[key];
  return kept as T;
}
