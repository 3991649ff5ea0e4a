import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * An API key as a client holds it: `spw_<id>_<secret>`. The id (16 hex digits) is public: it
 * names the key in `spillway keys list`, in records and in logs. The secret (32 random bytes,
 * base64url) is shown once, when the key is made; the store keeps only its SHA-256, which is
 * enough for a random secret of that length (no password stretching needed).
 */

const prefix = 'spw_';
const idLength = 16;
const tokenPattern = /^spw_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface NewApiKeyToken {
  /** What the client sends; printed once. */
  readonly token: string;
  readonly id: string;
  /** SHA-256 of the secret, lowercase hex: what the store keeps. */
  readonly hash: string;
}

export function newApiKeyToken(): NewApiKeyToken {
  const id = randomBytes(idLength / 2).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { token: `${prefix}${id}_${secret}`, id, hash: hashSecret(secret) };
}

/** The id and secret of a well-formed token; undefined for anything else. */
export function parseApiKeyToken(token: string): { readonly id: string; readonly secret: string } | undefined {
  const match = tokenPattern.exec(token);
  return match === null ? undefined : { id: match[1]!, secret: match[2]! };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Compares in constant time: how much of a guess was right must not show in the timing. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const given = createHash('sha256').update(secret).digest();
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === given.length && timingSafeEqual(given, stored);
}
