import { SpillwayError } from '../protocol/errors.js';

/** Where a Redis server is: what `redis://host:port[/db]` names. */
export interface RedisAddress {
  readonly host: string;
  readonly port: number;
  readonly db: number;
}

/**
 * Parses `redis://host:port[/db]`, refusing anything else with an error that names the setting
 * (`pointer`) and the problem, so a typo fails at start and not at the first request.
 * Credentials and TLS (`rediss://`) are not supported yet, and are refused rather than ignored.
 */
export function parseRedisUrl(url: string, pointer: string): RedisAddress {
  const fail = (problem: string): never => {
    throw new SpillwayError('SPILLWAY_INVALID_CONFIG', `invalid Redis URL "${url}" for ${pointer}: ${problem}`, {
      details: [{ pointer, message: `${problem}; expected redis://host:port[/db]` }],
    });
  };
  const match = /^redis:\/\/(\[[0-9a-fA-F:.]+\]|[^:/?#@[\]\s]+)(?::(\d{1,5}))?(?:\/(\d{0,2}))?$/.exec(url);
  if (match === null) {
    if (/^rediss:\/\//.test(url)) fail('TLS (rediss://) is not supported');
    if (/^redis:\/\/[^/]*@/.test(url)) fail('credentials in the URL are not supported');
    if (!url.startsWith('redis://')) fail('it does not start with redis://');
    return fail('it is not host:port with an optional /db');
  }
  const [, rawHost = '', rawPort, rawDb] = match;
  const port = rawPort === undefined ? 6379 : Number(rawPort);
  if (port < 1 || port > 65535) fail(`port ${rawPort} is out of range`);
  const db = rawDb === undefined || rawDb === '' ? 0 : Number(rawDb);
  if (db > 15) fail(`database ${db} is out of range 0..15`);
  return { host: rawHost.replace(/^\[|\]$/g, ''), port, db };
}
