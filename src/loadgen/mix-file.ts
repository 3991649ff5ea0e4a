import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { benchFlags, BenchUsageError, checkApiKey, within, type Env } from './options.js';

/** One tenant of a --mix file, in the command line's terms. */
export interface MixEntry {
  readonly name: string;
  /** From the entry's `key` or `key_env`; absent: the command line's (--key, SPILLWAY_API_KEY). */
  readonly api_key: string | undefined;
  /** The per-tenant flags the entry sets, as the command line would give them (text). */
  readonly flags: Readonly<Record<string, string>>;
}

/** The same rule as a tenant's name in Spillway's config, so the bench's names can be the deployment's. */
const namePattern = /^[A-Za-z0-9_-]{1,64}$/;
const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

const tenantFlags = Object.keys(benchFlags).filter((flag) => benchFlags[flag]?.tenant === true);
const entryKeys = ['name', 'key', 'key_env', ...tenantFlags];
/** File paths in an entry are read from the mix file's folder, wherever the bench runs. */
const pathFlags: ReadonlySet<string> = new Set(['replay', 'input-file']);

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * Reads and checks a --mix file: `{ "tenants": [{ "name": …, "key" | "key_env": …, <flag>: … }] }`.
 * Only its shape is checked here; the flags' values are checked as the command line's are, by
 * resolveLoadOptions. Every error is a BenchUsageError naming the file (and the tenant).
 */
export function readMixFile(file: string, env: Env): MixEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new BenchUsageError(`--mix ${file} cannot be read: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BenchUsageError(`--mix ${file} is not valid JSON: ${(error as Error).message}`);
  }
  return within(`--mix ${file}`, () => parseMix(value, dirname(resolve(file)), env));
}

function parseMix(value: unknown, folder: string, env: Env): MixEntry[] {
  const shape = 'it must be an object with a non-empty "tenants" array: { "tenants": [{ "name": "A", "rate": 10 }, …] }';
  if (!isObject(value) || !Array.isArray(value['tenants']) || value['tenants'].length === 0) throw new BenchUsageError(shape);
  for (const key of Object.keys(value)) {
    if (key !== 'tenants') throw new BenchUsageError(`unknown key "${key}" at the top (only "tenants")`);
  }
  const seen = new Map<string, number>();
  return value['tenants'].map((raw: unknown, k) => {
    if (!isObject(raw)) throw new BenchUsageError(`tenants[${k}] must be an object ({ "name": "A", … })`);
    const name = raw['name'];
    if (name === undefined) throw new BenchUsageError(`tenants[${k}] has no "name"`);
    if (typeof name !== 'string' || !namePattern.test(name)) {
      throw new BenchUsageError(`tenants[${k}]: "name" must be 1 to 64 letters, digits, _ or - (got ${JSON.stringify(name)})`);
    }
    const before = seen.get(name);
    if (before !== undefined) throw new BenchUsageError(`tenant "${name}" is named twice (tenants[${before}] and tenants[${k}]); names must be unique`);
    seen.set(name, k);
    return within(`tenant "${name}"`, () => parseEntry(name, raw, folder, env));
  });
}

function parseEntry(name: string, raw: Readonly<Record<string, unknown>>, folder: string, env: Env): MixEntry {
  for (const key of Object.keys(raw)) {
    if (entryKeys.includes(key)) continue;
    if (benchFlags[key] !== undefined) {
      throw new BenchUsageError(`"${key}" is shared by every tenant: give it on the command line (--${key})`);
    }
    const dashed = key.replace(/_/g, '-');
    const hint = tenantFlags.includes(dashed) ? ` (did you mean "${dashed}"?)` : '';
    throw new BenchUsageError(`unknown key "${key}"${hint}; a tenant may set ${entryKeys.join(', ')}`);
  }
  const flags: Record<string, string> = {};
  for (const flag of tenantFlags) {
    const value = raw[flag];
    if (value === undefined) continue;
    flags[flag] = flagText(flag, value, folder);
  }
  return { name, api_key: entryKey(raw, env), flags };
}

/** A value as the command line would have given it, so the command line's checks apply unchanged. */
function flagText(flag: string, value: unknown, folder: string): string {
  // The input is the input itself, any JSON, as --input takes it written out.
  if (flag === 'input') return JSON.stringify(value);
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') throw new BenchUsageError(`"${flag}" must be a number or a string (got ${JSON.stringify(value)})`);
  return pathFlags.has(flag) ? resolve(folder, value) : value;
}

function entryKey(raw: Readonly<Record<string, unknown>>, env: Env): string | undefined {
  const key = raw['key'];
  const keyEnv = raw['key_env'];
  if (key !== undefined && keyEnv !== undefined) throw new BenchUsageError('give "key" or "key_env", not both');
  if (key !== undefined) {
    if (typeof key !== 'string') throw new BenchUsageError('"key" must be a string (an API key, spw_…)');
    return checkApiKey(key, '"key"');
  }
  if (keyEnv === undefined) return undefined;
  if (typeof keyEnv !== 'string' || !envNamePattern.test(keyEnv)) {
    throw new BenchUsageError(`"key_env" must name an environment variable: letters, digits and _ (got ${JSON.stringify(keyEnv)})`);
  }
  const fromEnv = env[keyEnv];
  if (fromEnv === undefined || fromEnv === '') throw new BenchUsageError(`"key_env" names ${keyEnv}, which is not set (or is empty)`);
  return checkApiKey(fromEnv, `the environment variable ${keyEnv} ("key_env")`);
}
