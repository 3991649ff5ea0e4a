import { SpillwayError } from '../protocol/errors.js';
import type { PredictionRecord } from '../protocol/prediction.js';

// RFC 3339 with a zone: Date.parse alone would also take "2026-01-01" or "Jan 1", read as local time.
const rfc3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * The request's deadline as an ISO timestamp: its own `deadline`, or `timeout_ms` from now, or
 * the model's default; none if none applies. A deadline that has already passed is refused, so
 * nothing is queued that could only expire.
 */
export function resolveDeadline(
  body: { readonly deadline?: string | undefined; readonly timeout_ms?: number | undefined },
  modelTimeoutMs: number | undefined,
  now: number,
): string | undefined {
  if (body.deadline !== undefined && body.timeout_ms !== undefined) {
    throw new SpillwayError('SPILLWAY_INVALID_DEADLINE', 'give deadline or timeout_ms, not both', {
      details: [{ pointer: '/timeout_ms', message: 'not allowed together with deadline' }],
    });
  }
  if (body.deadline !== undefined) {
    const at = Date.parse(body.deadline);
    if (!rfc3339.test(body.deadline) || Number.isNaN(at)) {
      throw new SpillwayError('SPILLWAY_INVALID_DEADLINE', `deadline "${body.deadline}" is not an RFC 3339 time`, {
        details: [{ pointer: '/deadline', message: 'expected an RFC 3339 time with a zone, e.g. 2026-11-28T12:00:00Z' }],
      });
    }
    if (at <= now) {
      throw new SpillwayError('SPILLWAY_INVALID_DEADLINE', `deadline ${body.deadline} has already passed`, {
        details: [{ pointer: '/deadline', message: 'must be in the future' }],
      });
    }
    return new Date(at).toISOString();
  }
  const ms = body.timeout_ms ?? modelTimeoutMs;
  return ms === undefined ? undefined : new Date(now + ms).toISOString();
}

/**
 * A prediction still queued after its deadline will never be started (workers check before they
 * start), so it is already expired; this is that record. Undefined if it is not overdue.
 */
export function overdue(record: PredictionRecord, now: number): PredictionRecord | undefined {
  if (record.status !== 'queued' || record.deadline === undefined || Date.parse(record.deadline) > now) return undefined;
  return expiredRecord(record, now);
}

export function expiredRecord(record: Omit<PredictionRecord, 'status'>, now: number): PredictionRecord {
  const createdAt = Date.parse(record.created_at);
  return {
    ...record,
    status: 'expired',
    error: new SpillwayError('SPILLWAY_DEADLINE_EXCEEDED', `the deadline ${record.deadline ?? ''} passed before a worker started it`).toBody(),
    completed_at: new Date(now).toISOString(),
    metrics: { ...record.metrics, total_ms: Math.max(0, now - createdAt) },
  };
}
