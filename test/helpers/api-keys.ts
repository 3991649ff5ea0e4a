import { newApiKeyToken } from '../../src/gateway/tenancy/api-key-token.js';
import type { ApiKeys, StoredApiKey } from '../../src/stores/store.js';

/** Stores a new key the way `spillway keys create` does and returns its Authorization header. */
export async function addKey(
  store: Pick<ApiKeys, 'putApiKey'>,
  tenant: string,
  scopes: readonly string[],
  extra: Partial<Pick<StoredApiKey, 'limits' | 'expiresAt' | 'name'>> = {},
): Promise<{ readonly id: string; readonly auth: { readonly authorization: string } }> {
  const made = newApiKeyToken();
  await store.putApiKey({ id: made.id, hash: made.hash, tenant, scopes, createdAt: new Date().toISOString(), ...extra });
  return { id: made.id, auth: { authorization: `Bearer ${made.token}` } };
}
