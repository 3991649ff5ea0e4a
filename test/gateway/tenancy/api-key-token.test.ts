import { describe, expect, it } from 'vitest';
import { hashSecret, newApiKeyToken, parseApiKeyToken, secretMatches } from '../../../src/gateway/tenancy/api-key-token.js';

describe('API key tokens', () => {
  it('are spw_<16 hex>_<43 base64url>, distinct each time, and stored as the hash of their secret', () => {
    const a = newApiKeyToken();
    const b = newApiKeyToken();
    expect(a.token).toMatch(/^spw_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(a.id).not.toBe(b.id);
    const parsed = parseApiKeyToken(a.token);
    expect(parsed?.id).toBe(a.id);
    expect(hashSecret(parsed!.secret)).toBe(a.hash);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(a.token).not.toContain(a.hash);
  });

  it('match only their own secret', () => {
    const a = newApiKeyToken();
    const secret = parseApiKeyToken(a.token)!.secret;
    expect(secretMatches(secret, a.hash)).toBe(true);
    expect(secretMatches(parseApiKeyToken(newApiKeyToken().token)!.secret, a.hash)).toBe(false);
    expect(secretMatches(secret, 'not hex')).toBe(false);
    expect(secretMatches(secret, a.hash.slice(0, 32))).toBe(false);
  });

  it('refuse anything but the exact form', () => {
    const { token } = newApiKeyToken();
    for (const bad of ['', 'spw_', token.slice(0, -1), `${token}x`, token.replace('spw_', 'spx_'), token.toUpperCase(), ` ${token}`]) {
      expect(parseApiKeyToken(bad), bad).toBeUndefined();
    }
  });
});
