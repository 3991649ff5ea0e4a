import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { PredictionRecord } from '../protocol/prediction.js';
import { SpillwayError, type ErrorDetail } from '../protocol/errors.js';
import { splitList } from './split-list.js';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com/, spec v1): the receiver checks an
 * HMAC-SHA256 over `${webhook-id}.${webhook-timestamp}.${body}` with a shared secret, so it can
 * tell our deliveries from forgeries and refuse replays. Any Standard Webhooks library verifies
 * these; the tests use the independent `standardwebhooks` package, never this module.
 */

const secretPrefix = 'whsec_';
// The spec recommends secrets of 24 to 64 bytes; shorter ones are guessable, longer ones gain nothing.
const minSecretBytes = 24;
const maxSecretBytes = 64;

/**
 * A parsed signing secret. The key lives in a private field so that logging or serialising the
 * object (pino, JSON, util.inspect) shows only the fingerprint, never the key.
 */
export class SigningSecret {
  readonly #key: Buffer;
  /** A non-secret name for logs and rotation: the first 8 hex digits of SHA-256 of the key. */
  readonly fingerprint: string;
  /** The key's length in bytes. */
  readonly size: number;

  constructor(key: Buffer) {
    this.#key = Buffer.from(key);
    this.fingerprint = createHash('sha256').update(key).digest('hex').slice(0, 8);
    this.size = key.length;
  }

  /** Base64 HMAC-SHA256 of `content` under this key. */
  hmac(content: string): string {
    return createHmac('sha256', this.#key).update(content, 'utf8').digest('base64');
  }
}

export const callbackEvents = ['prediction.completed', 'prediction.running'] as const;
export type CallbackEvent = (typeof callbackEvents)[number];

export function isCallbackEvent(value: unknown): value is CallbackEvent {
  return typeof value === 'string' && (callbackEvents as readonly string[]).includes(value);
}

export interface WebhookHeaders {
  readonly 'webhook-id': string;
  readonly 'webhook-timestamp': string;
  readonly 'webhook-signature': string;
}

/** What one delivery sends: the exact body that was signed and the headers that sign it. */
export interface SignedWebhook {
  readonly id: string;
  readonly body: string;
  readonly headers: WebhookHeaders;
}

/** A new random secret in the `whsec_` form (32 bytes, as the spec's reference libraries use). */
export function generateSecret(): string {
  return `${secretPrefix}${randomBytes(32).toString('base64')}`;
}

/** Parses one `whsec_<base64>` secret; the message says what is wrong without echoing the secret. */
export function parseSecret(text: string): SigningSecret {
  const problem = secretProblem(text);
  if (problem !== undefined) throw new SpillwayError('SPILLWAY_INVALID_CONFIG', `invalid callback secret: ${problem}`);
  return new SigningSecret(Buffer.from(text.slice(secretPrefix.length), 'base64'));
}

function secretProblem(text: string): string | undefined {
  if (!text.startsWith(secretPrefix)) return `a secret must start with ${secretPrefix}`;
  const encoded = text.slice(secretPrefix.length);
  // Buffer.from(…, 'base64') skips what it cannot read, so check the alphabet and padding first.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) {
    return `the part after ${secretPrefix} must be standard base64 (A-Z a-z 0-9 + /, padded with =)`;
  }
  const bytes = Buffer.from(encoded, 'base64').length;
  if (bytes < minSecretBytes || bytes > maxSecretBytes) {
    return `a secret must decode to ${minSecretBytes} to ${maxSecretBytes} bytes, this one has ${bytes}`;
  }
  return undefined;
}

/**
 * The signing secrets from `callbacks.secrets` (config) or `SPILLWAY_CALLBACK_SECRET` (env, one
 * secret or several separated by spaces or commas). The environment, when set, replaces the
 * file's value, as for every setting. Several secrets are for rotation: each delivery is signed
 * with all of them, so receivers can switch at their own pace. Every problem is reported at once.
 */
export function parseSigningSecrets(sources: {
  readonly secrets?: readonly unknown[];
  readonly env?: string;
  /** The config path of `secrets`, for problems; default `callbacks.secrets`. */
  readonly where?: string;
}): readonly SigningSecret[] {
  const fromEnv = sources.env !== undefined && sources.env.trim() !== '';
  const items: readonly unknown[] = fromEnv ? splitList(sources.env ?? '') : (sources.secrets ?? []);
  const where = (i: number) => (fromEnv ? 'SPILLWAY_CALLBACK_SECRET' : `${sources.where ?? 'callbacks.secrets'}[${i}]`);
  const problems: ErrorDetail[] = [];
  const secrets: SigningSecret[] = [];
  items.forEach((item, i) => {
    const problem = typeof item === 'string' ? secretProblem(item) : 'expected a string';
    if (problem === undefined) secrets.push(parseSecret(item as string));
    else problems.push({ pointer: where(i), message: problem });
  });
  if (problems.length > 0) {
    const lines = problems.map((p) => `  ${p.pointer}: ${p.message}`).join('\n');
    throw new SpillwayError('SPILLWAY_INVALID_CONFIG', `invalid callback secrets:\n${lines}`, { details: problems });
  }
  return secrets;
}

/** The `v1,<base64>` signature of one message with one secret. */
export function signature(secret: SigningSecret, id: string, timestamp: number, body: string): string {
  return `v1,${secret.hmac(`${id}.${timestamp}.${body}`)}`;
}

/**
 * The Standard Webhooks payload for a prediction event. `timestamp` is when the event happened
 * (RFC 3339); the header timestamp is when this attempt was signed, which differs on a retry.
 */
export function buildPayload(type: CallbackEvent, record: PredictionRecord, at: Date = new Date()): string {
  return JSON.stringify({ type, timestamp: at.toISOString(), data: record });
}

/**
 * Signs `body` as sent. `id` must stay the same across retries of one event so receivers can drop
 * duplicates (the spec's idempotency key); a fresh one is made when none is given.
 */
export function signWebhook(
  body: string,
  secrets: readonly SigningSecret[],
  options: { readonly id?: string; readonly now?: Date } = {},
): SignedWebhook {
  if (secrets.length === 0) {
    throw new SpillwayError('SPILLWAY_INVALID_CONFIG', 'no callback signing secret is configured');
  }
  const id = options.id ?? `msg_${randomUUID()}`;
  const timestamp = Math.floor((options.now ?? new Date()).getTime() / 1000);
  return {
    id,
    body,
    headers: {
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': secrets.map((s) => signature(s, id, timestamp, body)).join(' '),
    },
  };
}
