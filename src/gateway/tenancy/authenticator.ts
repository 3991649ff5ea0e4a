import { bearerToken } from '../../http/bearer-token.js';
import { SpillwayError } from '../../protocol/errors.js';
import { apiScopes, defaultTenant, isApiScope, type ApiScope } from '../../protocol/tenancy.js';
import type { ApiKeys, LimitOverrides, StoredApiKey } from '../../stores/store.js';
import { parseApiKeyToken, secretMatches } from './api-key-token.js';

export type AuthMode = 'auto' | 'keys' | 'none';

/** Who is calling: a key's tenant and scopes, or everyone, on a gateway without keys. */
export interface Caller {
  readonly tenant: string;
  readonly scopes: ReadonlySet<ApiScope>;
  /** The key's id; absent for the anonymous caller of a gateway without keys. */
  readonly keyId?: string;
  /** The key's own limits, in place of its tenant's. */
  readonly keyLimits?: LimitOverrides;
}

/** Without keys, a caller may do everything, as one tenant; its records carry no tenant. */
export const anonymousCaller: Caller = { tenant: defaultTenant, scopes: new Set(apiScopes) };

/** The tenant a prediction of `caller` carries: none without keys (such records are the default tenant's). */
export function recordTenant(caller: Caller): string | undefined {
  return caller.keyId === undefined ? undefined : caller.tenant;
}

/** What a route asks of its caller: a scope, or only a valid key (`any`). */
export type RouteScope = ApiScope | 'any';

export interface AuthenticatorOptions {
  readonly keys: Pick<ApiKeys, 'getApiKey' | 'hasApiKeys'>;
  readonly mode: AuthMode;
  /**
   * How long a key read from the store is trusted before it is read again, and so how long a
   * revoke takes to reach every gateway. Default 1 s.
   */
  readonly cacheMs?: number;
  readonly now?: () => number;
}

interface Cached<T> {
  readonly value: T;
  readonly until: number;
}

/** Most keys kept in the cache; past it the cache starts over (a flood of made-up ids). */
const maxCachedKeys = 10_000;

/**
 * Turns an Authorization header into a Caller, or refuses with 401/403 problems that say why.
 * Keys are read from the shared store and kept for `cacheMs`, unknown ids too, so that neither
 * a busy client nor a stream of made-up keys costs a store read per request.
 */
export class Authenticator {
  private readonly cacheMs: number;
  private readonly now: () => number;
  private readonly keys = new Map<string, Cached<StoredApiKey | undefined>>();
  private anyKeys: Cached<Promise<boolean>> | undefined;
  /** The last answer of `anyKeys`, once it came: lets a keyless request pass without a promise. */
  private knownAnyKeys: Cached<boolean> | undefined;

  constructor(private readonly o: AuthenticatorOptions) {
    this.cacheMs = o.cacheMs ?? 1000;
    this.now = o.now ?? Date.now;
  }

  /** Whether requests need a key now: always, never, or (auto) once any key exists. */
  async required(): Promise<boolean> {
    if (this.o.mode !== 'auto') return this.o.mode === 'keys';
    const now = this.now();
    if (this.anyKeys === undefined || this.anyKeys.until <= now) {
      const value = this.o.keys.hasApiKeys().catch((error: unknown) => {
        throw new SpillwayError('SPILLWAY_STORE_UNAVAILABLE', 'the API keys could not be read', { cause: error });
      });
      const until = now + this.cacheMs;
      // A failed read is not remembered: the next request asks again.
      value.then(
        (known) => (this.knownAnyKeys = { value: known, until }),
        () => (this.anyKeys = undefined),
      );
      this.anyKeys = { value, until };
    }
    return this.anyKeys.value;
  }

  /**
   * The anonymous caller, decided without waiting, when the gateway is known to need no key for
   * this request (auth none, or auto with no key in the store as of the last look); otherwise
   * undefined, and `authenticate` decides. Keeps the keyless hot path free of promises.
   */
  anonymousNow(authorization: string | undefined): Caller | undefined {
    if (this.o.mode === 'none') return anonymousCaller;
    if (authorization !== undefined || this.o.mode !== 'auto') return undefined;
    const known = this.knownAnyKeys;
    return known !== undefined && !known.value && known.until > this.now() ? anonymousCaller : undefined;
  }

  /**
   * The caller of a request to a route that needs `scope`. Throws SPILLWAY_UNAUTHENTICATED (no
   * key, or one that is malformed, unknown, revoked or expired) or SPILLWAY_FORBIDDEN, each with
   * its WWW-Authenticate challenge.
   */
  async authenticate(authorization: string | undefined, scope: RouteScope): Promise<Caller> {
    if (this.o.mode === 'none') return anonymousCaller;
    if (authorization === undefined) {
      if (!(await this.required())) return anonymousCaller;
      throw authError('SPILLWAY_UNAUTHENTICATED', 'this gateway requires an API key: send Authorization: Bearer <key>', 'Bearer realm="spillway"');
    }
    const token = bearerToken(authorization);
    const parsed = token === undefined ? undefined : parseApiKeyToken(token);
    if (parsed === undefined) throw invalidToken('the Authorization header is not "Bearer spw_…" with a well-formed key');
    const key = await this.key(parsed.id);
    if (key === undefined || !secretMatches(parsed.secret, key.hash)) throw invalidToken('the API key is not known');
    if (key.revokedAt !== undefined) throw invalidToken('the API key was revoked');
    if (key.expiresAt !== undefined && Date.parse(key.expiresAt) <= this.now()) throw invalidToken('the API key has expired');
    const scopes = new Set(key.scopes.filter(isApiScope));
    if (scope !== 'any' && !scopes.has(scope)) {
      throw authError(
        'SPILLWAY_FORBIDDEN',
        `the API key has no "${scope}" scope (it has: ${[...scopes].join(', ') || 'none'})`,
        `Bearer realm="spillway", error="insufficient_scope", scope="${scope}"`,
      );
    }
    return { tenant: key.tenant, scopes, keyId: key.id, ...(key.limits === undefined ? {} : { keyLimits: key.limits }) };
  }

  private async key(id: string): Promise<StoredApiKey | undefined> {
    const now = this.now();
    const cached = this.keys.get(id);
    if (cached !== undefined && cached.until > now) return cached.value;
    let value: StoredApiKey | undefined;
    try {
      value = await this.o.keys.getApiKey(id);
    } catch (error) {
      throw new SpillwayError('SPILLWAY_STORE_UNAVAILABLE', 'the API keys could not be read', { cause: error });
    }
    if (this.keys.size >= maxCachedKeys) this.keys.clear();
    this.keys.set(id, { value, until: now + this.cacheMs });
    return value;
  }
}

/** A 401 or 403 whose answer carries `challenge` in WWW-Authenticate (RFC 6750 §3). */
function authError(code: 'SPILLWAY_UNAUTHENTICATED' | 'SPILLWAY_FORBIDDEN', message: string, challenge: string): SpillwayError {
  return new SpillwayError(code, message, { headers: { 'www-authenticate': challenge } });
}

function invalidToken(message: string): SpillwayError {
  return authError('SPILLWAY_UNAUTHENTICATED', message, 'Bearer realm="spillway", error="invalid_token"');
}
