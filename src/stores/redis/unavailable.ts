import { SpillwayError } from '../../protocol/errors.js';

/**
 * Every failure of a Redis command becomes SPILLWAY_STORE_UNAVAILABLE (503, retryable): the
 * connection is down or reconnecting (commands fail at once rather than queue), a reply timed
 * out, or the server refused the command (LOADING after a restart, OOM, READONLY on a replica).
 * None of these is the client's fault, and a raw ioredis error must never reach a client as a 500.
 */
export function storeUnavailable(url: string, error: unknown): SpillwayError {
  if (error instanceof SpillwayError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new SpillwayError('SPILLWAY_STORE_UNAVAILABLE', `the result store at ${url} did not answer: ${reason}`, { cause: error });
}

/** Runs one store operation, turning whatever it throws into SPILLWAY_STORE_UNAVAILABLE. */
export async function guarded<T>(url: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw storeUnavailable(url, error);
  }
}
