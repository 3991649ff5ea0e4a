import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { isMap, isNode, isScalar, LineCounter, parseDocument } from 'yaml';
import { describeError, SpillwayError, type ErrorDetail } from '../protocol/errors.js';
import { configLeaves, configSchema, type ConfigLeaf, type ConfigScalarType, type SpillwayConfig } from './schema.js';

export interface ConfigSources {
  /** Config file, relative to cwd; it must exist. Without it: SPILLWAY_CONFIG, then ./spillway.yaml if present. */
  readonly file?: string;
  /** Not defaulted to process.env, so that what a caller or a test depends on is what it passes. */
  readonly env?: NodeJS.ProcessEnv;
  /** Parsed flags, keyed by flag name without `--`; names that are not config flags are ignored. */
  readonly argv?: Readonly<Record<string, string | boolean | undefined>>;
  /** Defaults to process.cwd(). */
  readonly cwd?: string;
}

type Origin =
  | { readonly kind: 'file'; readonly file: string; readonly line?: number }
  | { readonly kind: 'env'; readonly name: string }
  | { readonly kind: 'flag'; readonly flag: string };

/** Where each dotted path's value came from, so a problem can say which source to fix. */
type Origins = Map<string, Origin>;

type Coerced = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string };

/** Layering: schema defaults < file < environment < flags; validated once, so every problem is reported together. */
export function loadConfig(sources: ConfigSources = {}): SpillwayConfig {
  const cwd = resolve(sources.cwd ?? process.cwd());
  const env = sources.env ?? {};
  const origins: Origins = new Map();
  // Keyed by path: a later source that sets the same setting replaces the earlier one's problem.
  const coercionProblems = new Map<string, ErrorDetail>();

  const file = locateFile(sources.file, env.SPILLWAY_CONFIG, cwd);
  const data: Record<string, unknown> = file === undefined ? {} : readConfigFile(file, origins);

  const apply = (leaf: ConfigLeaf, raw: string | boolean, origin: Origin): void => {
    const result = coerce(leaf, raw);
    origins.set(leaf.path, origin);
    if (result.ok) {
      coercionProblems.delete(leaf.path);
      setAt(data, leaf.segments, result.value);
    } else {
      coercionProblems.set(leaf.path, { pointer: leaf.path, message: `${result.reason} (${describeOrigin(origin)})` });
      // Otherwise an overridden lower-layer value would be validated as if it had won.
      setAt(data, leaf.segments, undefined);
    }
  };
  for (const leaf of configLeaves()) {
    const raw = env[leaf.env];
    // An empty variable is how compose files and shells "unset" one, so it means "not set".
    if (raw !== undefined && raw !== '') apply(leaf, raw, { kind: 'env', name: leaf.env });
  }
  for (const leaf of configLeaves()) {
    const raw = leaf.flag === undefined ? undefined : sources.argv?.[leaf.flag];
    if (raw !== undefined && leaf.flag !== undefined) apply(leaf, raw, { kind: 'flag', flag: leaf.flag });
  }

  const validate = validator();
  const valid = validate(data);
  const problems = [
    ...coercionProblems.values(),
    ...(valid ? [] : (validate.errors ?? []).map((error) => describeSchemaError(error, origins))),
  ];
  if (problems.length > 0 || !valid) {
    const count = `${problems.length} problem${problems.length === 1 ? '' : 's'}`;
    const lines = problems.map((p) => `  - ${p.pointer ?? '(config)'}: ${p.message}`);
    throw new SpillwayError('SPILLWAY_INVALID_CONFIG', `invalid configuration, ${count}:\n${lines.join('\n')}`, {
      details: problems,
    });
  }

  const config: SpillwayConfig = data;
  for (const key of ['data', 'models'] as const) {
    const origin = origins.get(key);
    config[key] = resolve(origin?.kind === 'file' ? dirname(origin.file) : cwd, config[key]);
  }
  return deepFreeze(config);
}

function describeOrigin(origin: Origin | undefined): string {
  if (origin === undefined) return 'default';
  switch (origin.kind) {
    case 'file':
      return `from ${origin.file}${origin.line === undefined ? '' : ` line ${origin.line}`}`;
    case 'env':
      return `from env ${origin.name}`;
    case 'flag':
      return `from --${origin.flag}`;
  }
}

function fileProblem(message: string, cause?: unknown): SpillwayError {
  return new SpillwayError('SPILLWAY_INVALID_CONFIG', message, { cause, details: [{ message }] });
}

function locateFile(explicit: string | undefined, fromEnv: string | undefined, cwd: string): string | undefined {
  const named = explicit ?? (fromEnv === '' ? undefined : fromEnv);
  if (named === undefined) {
    const implicit = resolve(cwd, 'spillway.yaml');
    return existsSync(implicit) ? implicit : undefined;
  }
  const path = resolve(cwd, named);
  if (!existsSync(path)) {
    const namedBy = explicit === undefined ? ' (named by SPILLWAY_CONFIG)' : '';
    throw fileProblem(`config file ${path} does not exist${namedBy}`);
  }
  return path;
}

/**
 * A file that cannot be read or parsed is reported on its own: checking env and flags against
 * defaults the user did not mean would only add noise.
 */
function readConfigFile(path: string, origins: Origins): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw fileProblem(`cannot read config file ${path}: ${describeError(error)}`, error);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  if (doc.errors.length > 0) {
    const details = doc.errors.map((error) => {
      const pos = error.linePos?.[0];
      const reason = (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
      const where = pos === undefined ? '' : ` at line ${pos.line}, column ${pos.col}`;
      return { message: `YAML syntax error in ${path}${where}: ${reason}` };
    });
    const lines = details.map((d) => `  - ${d.message}`).join('\n');
    throw new SpillwayError('SPILLWAY_INVALID_CONFIG', `cannot parse config file ${path}:\n${lines}`, { details });
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (error) {
    throw fileProblem(`cannot read config file ${path}: ${describeError(error)}`, error);
  }
  if (data === null || data === undefined) return {};
  if (!isRecord(data)) throw fileProblem(`config file ${path} must be a mapping of setting names to values`);
  recordFileOrigins(doc.contents, [], path, lineCounter, origins);
  return data;
}

function recordFileOrigins(
  node: unknown,
  segments: readonly string[],
  file: string,
  lines: LineCounter,
  origins: Origins,
): void {
  if (!isMap(node)) return;
  for (const pair of node.items) {
    const path = [...segments, isScalar(pair.key) ? String(pair.key.value) : String(pair.key)];
    const offset = isNode(pair.key) ? pair.key.range?.[0] : undefined;
    const line = offset === undefined ? undefined : lines.linePos(offset).line;
    origins.set(path.join('.'), { kind: 'file', file, ...(line === undefined ? {} : { line }) });
    recordFileOrigins(pair.value, path, file, lines, origins);
  }
}

const numberPattern = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const booleanWords: Readonly<Record<string, boolean>> = {
  true: true, yes: true, on: true, 1: true,
  false: false, no: false, off: false, 0: false,
};

function coerceScalar(type: ConfigScalarType, raw: string): Coerced {
  switch (type) {
    case 'string':
      return { ok: true, value: raw };
    case 'number':
    case 'integer': {
      // Stricter than Number(): "", "0x1F" and "Infinity" are typos far more often than intent.
      const text = raw.trim();
      if (numberPattern.test(text)) return { ok: true, value: Number(text) };
      return { ok: false, reason: `expected ${type === 'integer' ? 'an integer' : 'a number'}, got ${show(raw)}` };
    }
    case 'boolean': {
      const value = booleanWords[raw.trim().toLowerCase()];
      if (value !== undefined) return { ok: true, value };
      return { ok: false, reason: `expected true or false, got ${show(raw)}` };
    }
  }
}

function coerce(leaf: ConfigLeaf, raw: string | boolean): Coerced {
  if (typeof raw === 'boolean') {
    return leaf.type === 'boolean' ? { ok: true, value: raw } : { ok: false, reason: 'expected a value' };
  }
  if (leaf.type !== 'array') return coerceScalar(leaf.type, raw);
  const values: unknown[] = [];
  for (const item of raw.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const result = coerceScalar(leaf.itemType ?? 'string', item);
    if (!result.ok) return { ok: false, reason: `in comma-separated list: ${result.reason}` };
    values.push(result.value);
  }
  return { ok: true, value: values };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `undefined` removes the value. A non-mapping in the way is left for validation to report against its source. */
function setAt(data: Record<string, unknown>, segments: readonly string[], value: unknown): void {
  let node = data;
  for (const key of segments.slice(0, -1)) {
    const next = Object.hasOwn(node, key) ? node[key] : undefined;
    if (next === undefined) node = node[key] = {};
    else if (isRecord(next)) node = next;
    else return;
  }
  const last = segments[segments.length - 1];
  if (last === undefined) return;
  if (value === undefined) Reflect.deleteProperty(node, last);
  else node[last] = value;
}

let compiled: ValidateFunction<SpillwayConfig> | undefined;

function validator(): ValidateFunction<SpillwayConfig> {
  if (compiled === undefined) {
    // Strict mode stays on to catch schema typos; x-flag, x-expected (what a pattern means, in
    // words, for its error message), x-sensitive (a secret) and x-file-only (set in the file only,
    // no environment variable or flag) are registered as pure annotations.
    const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true });
    ajv.addKeyword({ keyword: 'x-flag', schemaType: 'string' });
    ajv.addKeyword({ keyword: 'x-expected', schemaType: 'string' });
    ajv.addKeyword({ keyword: 'x-sensitive', schemaType: 'boolean' });
    ajv.addKeyword({ keyword: 'x-file-only', schemaType: 'boolean' });
    compiled = ajv.compile<SpillwayConfig>(configSchema);
  }
  return compiled;
}

function show(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** What a value was, for an error message; a secret's value is never shown, even a wrong one. */
function showData(error: ErrorObject): string {
  if (!isRecord(error.parentSchema) || error.parentSchema['x-sensitive'] !== true) return show(error.data);
  return typeof error.data === 'string' ? `${error.data.length} characters (not shown: a secret)` : 'a value not shown (a secret)';
}

const unescapePointer = (segment: string): string => segment.replace(/~1/g, '/').replace(/~0/g, '~');

function describeSchemaError(error: ErrorObject, origins: Origins): ErrorDetail {
  const segments = error.instancePath === '' ? [] : error.instancePath.slice(1).split('/').map(unescapePointer);
  const params: Readonly<Record<string, unknown>> = error.params;
  let what: string;
  if (error.keyword === 'additionalProperties') {
    segments.push(String(params.additionalProperty));
    const parent: unknown = error.parentSchema;
    const known = isRecord(parent) && isRecord(parent.properties) ? Object.keys(parent.properties) : [];
    what = `unknown setting${known.length > 0 ? `; expected one of ${known.join(', ')}` : ''}`;
  } else if (error.keyword === 'enum' && Array.isArray(params.allowedValues)) {
    what = `must be one of ${params.allowedValues.map(String).join(', ')}, got ${showData(error)}`;
  } else if (error.keyword === 'pattern' && isRecord(error.parentSchema) && typeof error.parentSchema['x-expected'] === 'string') {
    what = `must be ${error.parentSchema['x-expected']}, got ${showData(error)}`;
  } else {
    what = `${error.message ?? 'is invalid'}, got ${showData(error)}`;
  }
  // The nearest recorded ancestor: a file that puts a scalar where a section belongs owns the error.
  let origin: Origin | undefined;
  for (let n = segments.length; n > 0 && origin === undefined; n--) {
    origin = origins.get(segments.slice(0, n).join('.'));
  }
  return { pointer: segments.join('.'), message: `${what} (${describeOrigin(origin)})` };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
