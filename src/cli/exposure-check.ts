import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { SpillwayConfig } from '../config/schema.js';
import { SpillwayError } from '../protocol/errors.js';
import type { ApiKeys } from '../stores/store.js';

/**
 * Secure by default: a gateway others can reach does not start open to all. On loopback the
 * quick start stays key-free; on any other address there must be API keys, unless the operator
 * says `auth: none` out loud, and then it is said again in the log.
 */
export async function checkExposure(config: SpillwayConfig, keys: Pick<ApiKeys, 'hasApiKeys'>, logger: Logger): Promise<void> {
  const host = config.gateway.host;
  if (isLoopback(host)) return;
  if (config.auth === 'none') {
    logger.warn({ host }, `auth is "none" on ${host}, which is not loopback: anyone who can reach this gateway may submit, read and cancel any prediction`);
    return;
  }
  if (await keys.hasApiKeys()) return;
  const message =
    `the gateway would listen on ${host}, which is not loopback, and no API key exists: create one first ` +
    '(spillway keys create --tenant <name> --scopes predict,read, on the same store), or set auth: none (SPILLWAY_AUTH=none, --auth none) to serve without keys';
  throw new SpillwayError('SPILLWAY_INVALID_CONFIG', message, { details: [{ pointer: 'gateway.host', message }] });
}

/** 127.0.0.0/8, ::1 and localhost; anything else (0.0.0.0 and :: included) others may reach. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || bare === '0:0:0:0:0:0:0:1';
  return false;
}
