import type { SqliteDatabase } from '../../sqlite/open-database.js';
import { apiKeyAge, apiKeyFields, apiKeyFromFields, type StoredApiKeyFields } from '../api-key-fields.js';
import type { ApiKeys, StoredApiKey } from '../store.js';

// No retention column: keys stay until an operator deletes them, and the purge never looks here.
// expires_at and revoked_at are the key's own RFC 3339 times, read by the gateway, not by SQL.
export const apiKeyTableDdl = `
CREATE TABLE IF NOT EXISTS api_keys (
  id          TEXT    NOT NULL PRIMARY KEY,
  tenant      TEXT    NOT NULL,
  scopes      TEXT    NOT NULL,
  hash        TEXT    NOT NULL,
  created_at  TEXT    NOT NULL,
  created_ms  INTEGER NOT NULL,
  name        TEXT,
  expires_at  TEXT,
  revoked_at  TEXT,
  limits      TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_by_age ON api_keys (created_ms, id);
`;

const putSql = `
INSERT INTO api_keys (id, tenant, scopes, hash, created_at, created_ms, name, expires_at, revoked_at, limits)
VALUES (@id, @tenant, @scopes, @hash, @created_at, @created_ms, @name, @expires_at, @revoked_at, @limits)
ON CONFLICT (id) DO UPDATE SET
  tenant = excluded.tenant, scopes = excluded.scopes, hash = excluded.hash, created_at = excluded.created_at,
  created_ms = excluded.created_ms, name = excluded.name, expires_at = excluded.expires_at,
  revoked_at = excluded.revoked_at, limits = excluded.limits`;

const columns = 'id, tenant, scopes, hash, created_at, name, expires_at, revoked_at, limits';

/**
 * API keys in results.db. Written through the FULL connection: a revoke that a power cut undid
 * would let a key the operator withdrew authenticate again. Read through the NORMAL one.
 */
export class ApiKeyTable implements ApiKeys {
  private readonly statements;

  constructor(durable: SqliteDatabase, fast: SqliteDatabase) {
    this.statements = {
      put: durable.prepare(putSql),
      get: fast.prepare(`SELECT ${columns} FROM api_keys WHERE id = ?`),
      list: fast.prepare(`SELECT ${columns} FROM api_keys ORDER BY created_ms, id`),
      any: fast.prepare('SELECT EXISTS (SELECT 1 FROM api_keys)').pluck(),
    };
  }

  async putApiKey(key: StoredApiKey): Promise<void> {
    const f = apiKeyFields(key);
    this.statements.put.run({
      ...f,
      created_ms: apiKeyAge(key),
      name: f.name ?? null,
      expires_at: f.expires_at ?? null,
      revoked_at: f.revoked_at ?? null,
      limits: f.limits ?? null,
    });
  }

  async getApiKey(id: string): Promise<StoredApiKey | undefined> {
    const row = this.statements.get.get(id) as StoredApiKeyFields | undefined;
    return row === undefined ? undefined : apiKeyFromFields(row);
  }

  async listApiKeys(): Promise<StoredApiKey[]> {
    return (this.statements.list.all() as StoredApiKeyFields[]).map(apiKeyFromFields);
  }

  async hasApiKeys(): Promise<boolean> {
    return this.statements.any.get() === 1;
  }
}
