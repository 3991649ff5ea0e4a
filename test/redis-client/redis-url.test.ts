import { describe, expect, it } from 'vitest';
import { SpillwayError } from '../../src/protocol/errors.js';
import { parseRedisUrl } from '../../src/redis/redis-url.js';

describe('parseRedisUrl', () => {
  it('reads host, port and database, with Redis defaults for the parts left out', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6390', 'store')).toEqual({ host: '127.0.0.1', port: 6390, db: 0 });
    expect(parseRedisUrl('redis://cache.internal/3', 'store')).toEqual({ host: 'cache.internal', port: 6379, db: 3 });
    expect(parseRedisUrl('redis://[::1]:7000/', 'broker')).toEqual({ host: '::1', port: 7000, db: 0 });
  });

  it.each([
    ['redis://', 'not host:port'],
    ['redis://host:99999', 'out of range'],
    ['redis://host:6379/16', 'out of range'],
    ['redis://user:pw@host:6379', 'credentials'],
    ['rediss://host:6379', 'TLS'],
    ['http://host:6379', 'redis://'],
    ['redis://host:6379?db=1', 'not host:port'],
  ])('refuses %s, naming the setting and the problem', (url, problem) => {
    let error: unknown;
    try {
      parseRedisUrl(url, 'store');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SpillwayError);
    expect((error as SpillwayError).code).toBe('SPILLWAY_INVALID_CONFIG');
    expect((error as SpillwayError).message).toContain(problem);
    expect((error as SpillwayError).message).toContain('store');
  });
});
