import { maxDeadlineMs } from '../protocol/envelope.js';
import { SpillwayError } from '../protocol/errors.js';
import type { PredictionRecord } from '../protocol/prediction.js';
import { expiredOutcome, finishedRecord } from '../protocol/prediction-records.js';

// RFC 3339 with a zone: Date.parse alone would also take "2026-01-01" or "Jan 1", read as local time.
const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/** The time an RFC 3339 string names, or NaN when it is not one or names no such instant (Feb 30). */
export function parseRfc3339(text: string): number {
  const m = rfc3339.exec(text);
  if (m === null) return Number.NaN;
  const field = (i: number) => Number(m[i] ?? 0);
  const [year, month, day] = [field(1), field(2), field(3)];
  // Date.UTC rolls 2099-02-30 over to 2099-03-02; a date that does not round-trip does not exist.
  const calendar = new Date(Date.UTC(year, month - 1, day));
  const exists = calendar.getUTCFullYear() === year && calendar.getUTCMonth() === month - 1 && calendar.getUTCDate() === day;
  if (!exists || field(4) > 23 || field(5) > 59 || field(6) > 59 || field(8) > 23 || field(9) > 59) return Number.NaN;
  return Date.parse(text);
}

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
    const at = parseRfc3339(body.deadline);
    if (Number.isNaN(at)) {
      throw new SpillwayError('SPILLWAY_INVALID_DEADLINE', `deadline "${body.deadline}" is not an RFC 3339 time`, {
        details: [{ pointer: '/deadline', message: 'expected an existing RFC 3339 time with a zone, e.g. 2026-11-28T12:00:00Z' }],
      });
    }
    if (at <= now) {
      throw new SpillwayError('SPILLWAY_INVALID_DEADLINE', `deadline ${body.deadline} has already passed`, {
        details: [{ pointer: '/deadline', message: 'must be in the future' }],
      });
    }
    if (at - now > maxDeadlineMs) throw beyondHorizon('/deadline', `deadline ${body.deadline}`);
    return new Date(at).toISOString();
  }
  const ms = body.timeout_ms ?? modelTimeoutMs;
  if (ms === undefined) return undefined;
  if (ms > maxDeadlineMs) throw beyondHorizon('/timeout_ms', `timeout_ms ${ms}`);
  return new Date(now + ms).toISOString();
}

function beyondHorizon(pointer: string, what: string): SpillwayError {
  const limit = `at most ${maxDeadlineMs} ms (7 days) ahead`;
  return new SpillwayError('SPILLWAY_INVALID_DEADLINE', `${what} is too far ahead: a deadline may be ${limit}`, {
    details: [{ pointer, message: `must be ${limit}` }],
  });
}

/**
 * A prediction still queued after its deadline will never be started (workers check before they
 * start), so it is already expired; this is that record. Undefined if it is not overdue.
 */
export function overdue(record: PredictionRecord, now: number): PredictionRecord | undefined {
  if (record.status !== 'queued' || record.deadline === undefined || Date.parse(record.deadline) > now) return undefined;
  return finishedRecord(record, expiredOutcome(record.deadline), now);
}
