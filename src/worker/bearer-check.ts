import { createHash, timingSafeEqual } from 'node:crypto';
import { bearerToken } from '../http/bearer-token.js';

/**
 * Checks the `Authorization: Bearer <secret>` header of a call to the sync endpoint against the
 * deployment's secret, in constant time. Both sides are hashed (SHA-256) before the comparison,
 * so it always compares 32 bytes with 32: neither the secret's length nor how much of it a guess
 * got right shows in how long the check takes.
 */
export class BearerCheck {
  private readonly expected: Buffer;

  constructor(secret: string) {
    if (secret === '') throw new Error('BearerCheck: the secret is empty');
    this.expected = digest(secret);
  }

  /** Whether the header carries the secret. A missing or malformed header is refused. */
  accepts(authorization: string | undefined): boolean {
    const token = bearerToken(authorization);
    // Compared even without a token, so a call without one takes as long as one with a wrong one.
    const same = timingSafeEqual(digest(token ?? ''), this.expected);
    return same && token !== undefined;
  }
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
