/**
 * What a caller may do, and whose it is. An API key belongs to one tenant and carries scopes;
 * records carry the tenant, so every gateway can tell whose a prediction is.
 */

export const apiScopes = ['predict', 'read', 'cancel', 'admin'] as const;
export type ApiScope = (typeof apiScopes)[number];

/** The tenant of every request when no API keys are in use, and of records made then. */
export const defaultTenant = 'default';

export function isApiScope(value: string): value is ApiScope {
  return (apiScopes as readonly string[]).includes(value);
}
