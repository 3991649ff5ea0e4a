/**
 * `spillway keys`: API keys, kept in the result store that every gateway of the deployment
 * shares. A key's secret is printed once, when it is made, and never stored: only its hash.
 * Exit codes: 0 done, 1 the store refused or the key is unknown, 2 bad input.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load-config.js';
import { tenantNamePattern } from '../config/schema.js';
import { newApiKeyToken } from '../gateway/tenancy/api-key-token.js';
import { describeError, SpillwayError } from '../protocol/errors.js';
import { apiScopes, isApiScope } from '../protocol/tenancy.js';
import type { LimitOverrides, ResultStore, StoredApiKey } from '../stores/store.js';
import { asRun } from './program-name.js';
import { openConfiguredStore } from './services.js';

const HELP = `Usage: spillway keys create --tenant NAME --scopes predict,read[,cancel,admin] [--name LABEL]
                          [--rate-per-s R] [--burst N] [--max-queued N] [--max-waiting N]
       spillway keys list [--json]
       spillway keys revoke --key ID
       spillway keys rotate --key ID [--grace-s S]

API keys for the gateway (Authorization: Bearer <key>), kept in the result store, so every
gateway sharing it knows them. Once any key exists, gateways with auth "auto" (the default)
require one. A key belongs to a tenant, which sees only its own predictions.

  create    make a key; prints it once (keep it: only its hash is stored)
  list      every key, without secrets
  revoke    the key stops working (within a second on every gateway)
  rotate    make a new key like ID (tenant, scopes, limits) and let ID expire after
            --grace-s seconds (default 86400), so clients can change over

Scopes: ${apiScopes.join(', ')} (predict: submit; read: get and follow; cancel; admin: /metrics)
Limits given to create are the key's own, in place of its tenant's (docs/tenants.md).

Store options (as for every command): --config FILE, --store sqlite|redis://…, --data DIR,
--prefix NAME (on Redis, the deployment's prefix: its keys are stored under it)
`;

const OPTIONS = {
  tenant: { type: 'string' },
  scopes: { type: 'string' },
  name: { type: 'string' },
  key: { type: 'string' },
  'grace-s': { type: 'string' },
  'rate-per-s': { type: 'string' },
  burst: { type: 'string' },
  'max-queued': { type: 'string' },
  'max-waiting': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  config: { type: 'string' },
  store: { type: 'string' },
  data: { type: 'string' },
  prefix: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

class InputError extends Error {}

export async function runKeys(argv: readonly string[]): Promise<number> {
  let store: ResultStore | undefined;
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true });
    const [action, ...extra] = positionals;
    if (values.help === true) {
      process.stdout.write(asRun(HELP));
      return 0;
    }
    if (action === undefined || extra.length > 0 || !['create', 'list', 'revoke', 'rotate'].includes(action)) {
      throw new InputError(`say what to do: create, list, revoke or rotate (got "${positionals.join(' ')}")`);
    }
    const create = action === 'create' ? newKeyFields(values) : undefined;
    const config = loadConfig({
      ...(values.config === undefined ? {} : { file: values.config }),
      env: process.env,
      argv: { store: values.store, data: values.data, prefix: values.prefix },
    });
    store = await openConfiguredStore(config);
    switch (action) {
      case 'create':
        return await createKey(store, create!, values.json === true);
      case 'list':
        return await listKeys(store, values.json === true);
      case 'revoke':
        return await revokeKey(store, required(values.key, '--key'));
      default:
        return await rotateKey(store, required(values.key, '--key'), number(values['grace-s'], '--grace-s', 0) ?? 86_400, values.json === true);
    }
  } catch (error) {
    const input = error instanceof InputError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
    const config = error instanceof SpillwayError && error.code === 'SPILLWAY_INVALID_CONFIG';
    process.stderr.write(`spillway keys: ${describeError(error)}\n${input ? `\n${asRun(HELP)}` : ''}`);
    return input || config ? 2 : 1;
  } finally {
    await store?.close();
  }
}

type NewKeyFields = Pick<StoredApiKey, 'tenant' | 'scopes' | 'name' | 'limits'>;

/** Checked before the store is opened, so bad input costs nothing and reports every problem. */
function newKeyFields(values: Values): NewKeyFields {
  const problems: string[] = [];
  const tenant = values.tenant;
  if (tenant === undefined) problems.push('--tenant is required');
  else if (!new RegExp(tenantNamePattern).test(tenant)) problems.push(`--tenant "${tenant}" must be 1 to 64 letters, digits, _ or -`);
  const scopes = (values.scopes ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (scopes.length === 0) problems.push(`--scopes is required: some of ${apiScopes.join(', ')}`);
  for (const s of scopes) if (!isApiScope(s)) problems.push(`--scopes: unknown scope "${s}" (known: ${apiScopes.join(', ')})`);
  const limits: { -readonly [K in keyof LimitOverrides]: LimitOverrides[K] } = {};
  const field = (flag: keyof Values, name: keyof LimitOverrides, min: number, integer: boolean) => {
    try {
      const n = number(values[flag] as string | undefined, `--${flag}`, min, integer);
      if (n !== undefined) limits[name] = n;
    } catch (error) {
      problems.push((error as Error).message);
    }
  };
  field('rate-per-s', 'ratePerS', 0, false);
  field('burst', 'burst', 1, true);
  field('max-queued', 'maxQueued', 0, true);
  field('max-waiting', 'maxWaiting', 0, true);
  if (problems.length > 0) throw new InputError(problems.join('; '));
  return {
    tenant: tenant!,
    scopes: [...new Set(scopes)],
    ...(values.name === undefined ? {} : { name: values.name }),
    ...(Object.keys(limits).length === 0 ? {} : { limits }),
  };
}

async function createKey(store: ResultStore, fields: NewKeyFields, json: boolean): Promise<number> {
  const made = newApiKeyToken();
  const key: StoredApiKey = { id: made.id, hash: made.hash, createdAt: new Date().toISOString(), ...fields };
  await store.putApiKey(key);
  printNew(made.token, key, json);
  return 0;
}

async function listKeys(store: ResultStore, json: boolean): Promise<number> {
  const keys = await store.listApiKeys();
  if (json) {
    process.stdout.write(`${JSON.stringify(keys.map(shown), null, 2)}\n`);
    return 0;
  }
  if (keys.length === 0) {
    process.stdout.write('no API keys: gateways with auth "auto" serve without keys\n');
    return 0;
  }
  const now = Date.now();
  const rows = keys.map((k) => [k.id, k.tenant, k.scopes.join(','), state(k, now), k.createdAt, k.name ?? '', limitsText(k.limits)]);
  const header = ['id', 'tenant', 'scopes', 'state', 'created', 'name', 'limits'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
  return 0;
}

async function revokeKey(store: ResultStore, id: string): Promise<number> {
  const key = await store.getApiKey(id);
  if (key === undefined) throw new Error(`no API key with id ${id}`);
  if (key.revokedAt === undefined) await store.putApiKey({ ...key, revokedAt: new Date().toISOString() });
  process.stdout.write(`revoked ${id} (tenant ${key.tenant}); gateways refuse it within a second\n`);
  return 0;
}

async function rotateKey(store: ResultStore, id: string, graceS: number, json: boolean): Promise<number> {
  const old = await store.getApiKey(id);
  if (old === undefined) throw new Error(`no API key with id ${id}`);
  if (old.revokedAt !== undefined) throw new Error(`API key ${id} is revoked; create a new one instead`);
  const made = newApiKeyToken();
  const { id: _id, hash: _hash, createdAt: _created, expiresAt: _expires, ...kept } = old;
  const key: StoredApiKey = { ...kept, id: made.id, hash: made.hash, createdAt: new Date().toISOString() };
  await store.putApiKey(key);
  const expiresAt = new Date(Date.now() + graceS * 1000).toISOString();
  // Only ever brought forward: rotating twice must not lengthen the old key's life.
  if (old.expiresAt === undefined || old.expiresAt > expiresAt) await store.putApiKey({ ...old, expiresAt });
  printNew(made.token, key, json);
  if (!json) process.stdout.write(`the old key ${id} keeps working until ${expiresAt}\n`);
  return 0;
}

function printNew(token: string, key: StoredApiKey, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify({ key: token, ...shown(key) }, null, 2)}\n`);
  else process.stdout.write(`${token}\nAPI key ${key.id} for tenant ${key.tenant} (${key.scopes.join(', ')}). This is the only time it is shown.\n`);
}

/** A key as `list` shows it: everything but its hash. */
function shown(k: StoredApiKey) {
  const { hash: _hash, ...rest } = k;
  return rest;
}

function state(k: StoredApiKey, now: number): string {
  if (k.revokedAt !== undefined) return 'revoked';
  if (k.expiresAt === undefined) return 'active';
  return Date.parse(k.expiresAt) <= now ? 'expired' : `expires ${k.expiresAt}`;
}

function limitsText(l: LimitOverrides | undefined): string {
  if (l === undefined) return '';
  const parts = [
    l.ratePerS === undefined ? '' : `rate ${l.ratePerS}/s`,
    l.burst === undefined ? '' : `burst ${l.burst}`,
    l.maxQueued === undefined ? '' : `queued ${l.maxQueued}`,
    l.maxWaiting === undefined ? '' : `waiting ${l.maxWaiting}`,
  ];
  return parts.filter((p) => p !== '').join(', ');
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new InputError(`${flag} is required`);
  return value;
}

function number(value: string | undefined, flag: string, min: number, integer = true): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new InputError(`${flag} must be ${integer ? 'a whole number' : 'a number'} of at least ${min}, not "${value}"`);
  }
  return n;
}
