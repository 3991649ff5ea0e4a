import type { LimitOverrides, StoredApiKey } from './store.js';

/**
 * An API key as flat text fields: the columns of the SQLite store's `api_keys` table and the
 * fields of a key's hash in Redis. One mapping for both, so that a key reads back the same from
 * either (an absent optional field is absent, never empty). A type, not an interface, so that
 * it reads as a record of text fields (Object.entries).
 */
export type ApiKeyFields = {
  readonly id: string;
  readonly tenant: string;
  /** JSON array. */
  readonly scopes: string;
  readonly hash: string;
  readonly created_at: string;
  readonly name?: string;
  readonly expires_at?: string;
  readonly revoked_at?: string;
  /** JSON object. */
  readonly limits?: string;
};

export function apiKeyFields(key: StoredApiKey): ApiKeyFields {
  return {
    id: key.id,
    tenant: key.tenant,
    scopes: JSON.stringify(key.scopes),
    hash: key.hash,
    created_at: key.createdAt,
    ...(key.name === undefined ? {} : { name: key.name }),
    ...(key.expiresAt === undefined ? {} : { expires_at: key.expiresAt }),
    ...(key.revokedAt === undefined ? {} : { revoked_at: key.revokedAt }),
    ...(key.limits === undefined ? {} : { limits: JSON.stringify(key.limits) }),
  };
}

type OptionalField = 'name' | 'expires_at' | 'revoked_at' | 'limits';

/** Fields as read back: a missing optional one comes as undefined (Redis) or null (SQL NULL). */
export type StoredApiKeyFields = Omit<ApiKeyFields, OptionalField> & { readonly [F in OptionalField]?: string | null };

export function apiKeyFromFields(f: StoredApiKeyFields): StoredApiKey {
  return {
    id: f.id,
    tenant: f.tenant,
    scopes: JSON.parse(f.scopes) as string[],
    hash: f.hash,
    createdAt: f.created_at,
    ...(f.name == null ? {} : { name: f.name }),
    ...(f.expires_at == null ? {} : { expiresAt: f.expires_at }),
    ...(f.revoked_at == null ? {} : { revokedAt: f.revoked_at }),
    ...(f.limits == null ? {} : { limits: JSON.parse(f.limits) as LimitOverrides }),
  };
}

/**
 * Where a key stands in the list (epoch ms of its creation): both stores order by it, then by
 * id. Parsed rather than compared as text, since RFC 3339 allows offsets that do not sort; an
 * unreadable time sorts first.
 */
export function apiKeyAge(key: StoredApiKey): number {
  const ms = Date.parse(key.createdAt);
  return Number.isFinite(ms) ? ms : 0;
}
