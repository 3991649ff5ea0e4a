import type { Random } from '../../src/loadgen/prng.js';

/**
 * Request values generated from a JSON Schema (the subset route schemas use): valid ones that
 * reach every optional field, enum value and bound, and invalid ones that break one rule each.
 * Seeded, so a failure names an input that the next run sends again.
 */

export interface JsonSchema {
  readonly type?: string;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | JsonSchema;
  readonly items?: JsonSchema;
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly format?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minItems?: number;
  readonly pattern?: string;
  readonly $ref?: string;
}

/** One generated value and what it exercises, for the failure message. */
export interface Case<T = unknown> {
  readonly name: string;
  readonly value: T;
}

/** Formats whose valid values carry meaning the schema cannot state: the caller supplies them. */
export type FormatValues = Readonly<Record<string, () => string>>;

export class SchemaInputs {
  constructor(
    private readonly random: Random,
    private readonly formats: FormatValues,
    /** Values for schemas that allow anything (`{}`), such as a model's input. */
    private readonly anything: () => unknown,
  ) {}

  /** One valid value: required fields only when `full` is false, every field when true. */
  valid(schema: JsonSchema, full: boolean): unknown {
    if (schema.const !== undefined) return schema.const;
    if (schema.enum !== undefined) return this.pick(schema.enum);
    switch (schema.type) {
      case 'object': {
        const out: Record<string, unknown> = {};
        for (const [key, sub] of Object.entries(schema.properties ?? {})) {
          if (full || schema.required?.includes(key)) out[key] = this.valid(sub, full);
        }
        if (schema.properties === undefined && typeof schema.additionalProperties !== 'boolean') {
          out[`k${this.int(0, 999)}`] = this.anything();
        }
        return out;
      }
      case 'array': {
        const n = Math.max(schema.minItems ?? 0, full ? 2 : 1);
        const items = schema.items ?? {};
        // An enum's items are all its values once when there are enough, so none is left unsent.
        if (items.enum !== undefined) return items.enum.slice(0, Math.max(n, items.enum.length));
        return Array.from({ length: n }, () => this.valid(items, full));
      }
      case 'integer':
        return this.int(schema.minimum ?? 0, Math.min(schema.maximum ?? 1000, (schema.minimum ?? 0) + 1000));
      case 'number':
        return (schema.minimum ?? 0) + this.random() * 100;
      case 'boolean':
        return this.random() < 0.5;
      case 'string': {
        const format = schema.format === undefined ? undefined : this.formats[schema.format];
        if (format !== undefined) return format();
        const length = Math.max(schema.minLength ?? 1, Math.min(schema.maxLength ?? 16, 16));
        return Array.from({ length }, () => String.fromCharCode(this.int(0x61, 0x7a))).join('');
      }
      default:
        return this.anything();
    }
  }

  /** Valid values at the edges: every enum value, each bound, each optional field alone. */
  edges(schema: JsonSchema, path = ''): Case[] {
    const cases: Case[] = [];
    if (schema.type !== 'object') return cases;
    const base = this.valid(schema, false) as Record<string, unknown>;
    for (const [key, sub] of Object.entries(schema.properties ?? {})) {
      const at = `${path}/${key}`;
      const withValue = (name: string, value: unknown) => cases.push({ name: `${at} ${name}`, value: { ...base, [key]: value } });
      if (!schema.required?.includes(key)) withValue('alone (optional)', this.valid(sub, false));
      for (const value of sub.enum ?? []) withValue(`= ${JSON.stringify(value)}`, value);
      if (sub.type === 'integer' || sub.type === 'number') {
        if (sub.minimum !== undefined) withValue('at its minimum', sub.minimum);
        if (sub.maximum !== undefined) withValue('at its maximum', sub.maximum);
      }
      if (sub.type === 'string' && sub.maxLength !== undefined && sub.format === undefined) withValue('at its maxLength', 'a'.repeat(sub.maxLength));
      if (sub.type === 'array' && sub.items?.enum !== undefined) {
        for (const value of sub.items.enum) withValue(`= [${JSON.stringify(value)}]`, [value]);
      }
      for (const inner of this.edges(sub, at)) withValue(inner.name.slice(at.length + 1), inner.value);
    }
    return cases;
  }

  /** Values that break exactly one rule of `schema` each (inside otherwise valid values). */
  invalid(schema: JsonSchema, path = ''): Case[] {
    const cases: Case[] = [];
    const here = (name: string, value: unknown) => cases.push({ name: `${path || '(root)'} ${name}`, value });
    const wrongType = wrongTypeFor(schema);
    if (wrongType !== undefined) here(`of type ${typeof wrongType === 'object' ? (Array.isArray(wrongType) ? 'array' : 'object') : typeof wrongType}`, wrongType);
    if (schema.enum !== undefined && schema.enum.every((v) => typeof v === 'string')) here('not one of the enum', 'not-a-listed-value');
    if (schema.minimum !== undefined) here('below its minimum', schema.minimum - 1);
    if (schema.maximum !== undefined) here('above its maximum', schema.maximum + 1);
    if (schema.type === 'integer') here('a fraction', (schema.minimum ?? 0) + 0.5);
    if (schema.maxLength !== undefined) here('over its maxLength', 'a'.repeat(schema.maxLength + 1));
    if (schema.minLength !== undefined && schema.minLength > 0) here('under its minLength', '');
    if (schema.format !== undefined) here(`not a ${schema.format}`, 'not a value of this format');
    if (schema.type === 'array') {
      if (schema.minItems !== undefined && schema.minItems > 0) here('with too few items', []);
      for (const inner of this.invalid(schema.items ?? {}, `${path}/0`)) cases.push({ name: inner.name, value: [inner.value] });
    }
    if (schema.type === 'object') {
      const base = this.valid(schema, false) as Record<string, unknown>;
      for (const key of schema.required ?? []) {
        const { [key]: _dropped, ...rest } = base;
        here(`without required "${key}"`, rest);
      }
      if (schema.additionalProperties === false) here('with an unknown property', { ...base, unknown_field: 1 });
      for (const [key, sub] of Object.entries(schema.properties ?? {})) {
        for (const inner of this.invalid(sub, `${path}/${key}`)) cases.push({ name: inner.name, value: { ...base, [key]: inner.value } });
      }
    }
    return cases;
  }

  pick<T>(values: readonly T[]): T {
    return values[Math.floor(this.random() * values.length)] as T;
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }
}

/** A value of another JSON type than the schema's; undefined when the schema allows any. */
function wrongTypeFor(schema: JsonSchema): unknown {
  switch (schema.type) {
    case 'object':
      return 'a string, not an object';
    case 'array':
      return { not: 'an array' };
    case 'string':
      return 12;
    case 'integer':
    case 'number':
      return '12';
    case 'boolean':
      return 'true';
    default:
      return undefined;
  }
}
