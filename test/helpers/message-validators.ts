import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { expect } from 'vitest';
import { messageSchemas, type MessageSchemaName } from '../../src/protocol/message-schemas.js';
import { repoRoot } from './paths.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/**
 * Validators built from the published files in docs/schemas/v1, not from the TypeBox objects:
 * what a third-party consumer loads. Strict, so a schema that a careful validator refuses (an
 * unknown keyword, say) fails here too.
 */
function validators(): ReadonlyMap<MessageSchemaName, ValidateFunction> {
  const ajv = addFormats(new Ajv2020({ allErrors: true, strict: true }));
  const map = new Map<MessageSchemaName, ValidateFunction>();
  for (const { name } of messageSchemas) {
    const schema = JSON.parse(readFileSync(join(repoRoot, 'docs', 'schemas', 'v1', `${name}.json`), 'utf8')) as object;
    map.set(name, ajv.compile(schema));
  }
  return map;
}

let cached: ReadonlyMap<MessageSchemaName, ValidateFunction> | undefined;

/** Expects `message` (parsed JSON) to match the published schema `name`, naming every error. */
export function expectValidMessage(name: MessageSchemaName, message: unknown): void {
  cached ??= validators();
  const validate = cached.get(name)!;
  expect(validate(message), `${name}: ${JSON.stringify(validate.errors)} in ${JSON.stringify(message)}`).toBe(true);
}

/** Whether `message` matches the published schema `name`. */
export function isValidMessage(name: MessageSchemaName, message: unknown): boolean {
  cached ??= validators();
  return cached.get(name)!(message) === true;
}
