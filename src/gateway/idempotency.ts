import { createHash } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { RequestEnvelope } from '../protocol/envelope.js';
import { SpillwayError } from '../protocol/errors.js';
import { isTerminal, type PredictionRecord } from '../protocol/prediction.js';
import { queuedRecord } from '../protocol/prediction-records.js';
import type { IdempotencyKeys } from '../stores/store.js';
import type { GatewayContext } from './context.js';
import { heldWaitS } from './prefer.js';

/** The request header, and its route schema: 1–255 printable ASCII characters. */
export const idempotencyKeyHeader = 'idempotency-key';
export const idempotencyKeySchema = {
  type: 'string',
  minLength: 1,
  maxLength: 255,
  pattern: '^[\\x20-\\x7E]*$',
  description:
    'Send the request again with the same key and body (within the store retention) to get the original prediction ' +
    'back instead of a new one; the same key with another body is refused (422 SPILLWAY_IDEMPOTENCY_KEY_REUSED).',
} as const;

/** Marks an answer that repeats an earlier request's prediction. */
export const replayedHeader = 'idempotent-replayed';

/** JSON with object keys sorted at every level, so equal bodies hash alike however they were written. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    const entries = Object.keys(object)
      .filter((k) => object[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(object[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** What a key is compared by: the model and the whole request body. */
export function requestFingerprint(model: string, body: unknown): string {
  return createHash('sha256').update(model).update('\n').update(canonicalJson(body)).digest('hex');
}

export interface KeyClaim {
  /** Set when the key already stands for a prediction: that prediction as first accepted. */
  readonly original: PredictionRecord | undefined;
  /** Frees the key: nothing was accepted, so a retry may use it again. */
  release(): Promise<void>;
}

const noKey: KeyClaim = { original: undefined, release: async () => undefined };

/**
 * Holds the request's Idempotency-Key (if it sent one) for the prediction `envelope` is about
 * to create, or finds the prediction the key already stands for. The store decides atomically,
 * so of concurrent duplicates, on any gateway, exactly one goes on to be queued.
 */
export async function claimIdempotencyKey(
  store: IdempotencyKeys,
  /** Every Idempotency-Key header the request sent, unmerged (`headersDistinct`). */
  headers: readonly string[] | undefined,
  envelope: RequestEnvelope,
  body: unknown,
  log: FastifyBaseLogger,
): Promise<KeyClaim> {
  const [key, ...more] = headers ?? [];
  if (key === undefined) return noKey;
  // Node joins repeated headers with ", ", which would make two keys one new key.
  if (more.length > 0) {
    throw new SpillwayError('SPILLWAY_INVALID_REQUEST', `send one Idempotency-Key header, not ${headers?.length}`, {
      details: [{ pointer: `/headers/${idempotencyKeyHeader}`, message: 'sent more than once' }],
    });
  }
  const fingerprint = requestFingerprint(envelope.model, body);
  const scoped = tenantScopedKey(envelope.tenant, key);
  let held;
  try {
    held = await store.claimIdempotencyKey({ key: scoped, fingerprint, id: envelope.id, createdAt: envelope.created_at });
  } catch (error) {
    throw new SpillwayError('SPILLWAY_STORE_UNAVAILABLE', 'could not record the Idempotency-Key; nothing was queued', {
      cause: error,
    });
  }
  if (!held.claimed) {
    if (held.fingerprint !== fingerprint) {
      throw new SpillwayError(
        'SPILLWAY_IDEMPOTENCY_KEY_REUSED',
        `Idempotency-Key "${key}" was already used with a different request; use a new key for a new request`,
      );
    }
    // Same fingerprint, so the same model and metadata: the first request's queued record.
    const { model, metadata, tenant, api_key } = envelope;
    const original = queuedRecord({ id: held.id, model, metadata, created_at: held.createdAt, tenant, api_key });
    return { original, release: async () => undefined };
  }
  const release = () =>
    store.releaseIdempotencyKey(scoped, envelope.id).catch((error: unknown) => {
      log.error({ err: error, id: envelope.id }, 'could not release an Idempotency-Key; retries with it will see a request never queued');
    });
  return { original: undefined, release };
}

/**
 * Each tenant has its own keys: the same Idempotency-Key from two tenants stands for two
 * predictions. A newline cannot occur in a key (printable ASCII) nor in a tenant name. Without
 * API keys there is no tenant, and a key is stored as sent, as it always was.
 */
function tenantScopedKey(tenant: string | undefined, key: string): string {
  return tenant === undefined ? key : `${tenant}\n${key}`;
}

/** How to answer a repeated request. */
export interface Replay {
  readonly status: 200 | 202;
  readonly headers: Readonly<Record<string, string>>;
  readonly record: PredictionRecord;
}

/**
 * Answers a repeated request as the first one would be answered now: 200 with the final record,
 * or 202 with Location and the current one (holding the connection first if Prefer: wait asks).
 * The first request may not have written its record yet; then the record is the queued one.
 */
export async function replayPrediction(
  ctx: GatewayContext,
  original: PredictionRecord,
  preferHeader: string | string[] | undefined,
): Promise<Replay> {
  const read = async () => {
    try {
      return (await ctx.store.get(original.id)) ?? original;
    } catch (error) {
      throw new SpillwayError('SPILLWAY_STORE_UNAVAILABLE', undefined, { cause: error });
    }
  };
  const waitS = heldWaitS(preferHeader, ctx.maxWaitS);
  const headers: Record<string, string> = { [replayedHeader]: 'true', location: `/v1/predictions/${original.id}` };
  // Registered before reading, so a result stored in between is not missed.
  const waiter = waitS > 0 ? ctx.waiters.tryAdd(original.id) : undefined;
  let current = await read().catch((error: unknown) => {
    waiter?.cancel();
    throw error;
  });
  if (isTerminal(current.status)) waiter?.cancel();
  else if (waiter !== undefined) {
    headers['preference-applied'] = `wait=${waitS}`;
    current = (await waiter.wait(waitS * 1000)) ?? (await read());
  }
  const status = isTerminal(current.status) ? 200 : 202;
  ctx.metrics.requestAnswered(original.model, status);
  return { status, headers, record: current };
}
