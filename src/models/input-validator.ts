import { Ajv } from 'ajv';
import type { ErrorDetail } from '../protocol/errors.js';
import type { ModelSpec } from './model-config.js';
import { parseTensorInput } from './tensor-input.js';

/** Returns every problem with a request's input; an empty list means it may be queued. */
export type InputValidator = (input: unknown) => readonly ErrorDetail[];

const ajv = new Ajv({ allErrors: true, strict: false });

/** Validation happens at the gateway, so a bad input is refused before anything is queued. */
export function createInputValidator(spec: ModelSpec): InputValidator {
  const { config } = spec;
  if (config.runtime === 'onnx') {
    return (input) => {
      const parsed = parseTensorInput(config, input);
      return parsed.ok ? [] : parsed.details;
    };
  }
  if (config.input_schema !== undefined) {
    const validate = ajv.compile(config.input_schema);
    return (input) =>
      validate(input)
        ? []
        : (validate.errors ?? []).map((e) => ({ pointer: `/input${e.instancePath}`, message: e.message ?? 'invalid' }));
  }
  return (input) => (input === undefined ? [{ pointer: '/input', message: 'required' }] : []);
}
