import { describe, expect, it } from 'vitest';
import { heldWaitS, parsePrefer } from '../../src/gateway/prefer.js';

describe('Prefer header (RFC 7240)', () => {
  it('reads wait and respond-async, in one header or several, in any case', () => {
    expect(parsePrefer('wait=10')).toEqual({ wait: 10, respondAsync: false });
    expect(parsePrefer('respond-async')).toEqual({ respondAsync: true });
    expect(parsePrefer('Respond-Async, WAIT=2.5')).toEqual({ wait: 2.5, respondAsync: true });
    expect(parsePrefer(['handling=lenient', ' wait = 3 '])).toEqual({ wait: 3, respondAsync: false });
    expect(parsePrefer(undefined)).toEqual({ respondAsync: false });
  });

  it('takes a quoted value and ignores parameters after a semicolon', () => {
    expect(parsePrefer('wait="7"')).toEqual({ wait: 7, respondAsync: false });
    expect(parsePrefer('wait=4; foo=bar')).toEqual({ wait: 4, respondAsync: false });
  });

  it('keeps the first valid wait and ignores malformed ones', () => {
    expect(parsePrefer('wait=5, wait=9')).toEqual({ wait: 5, respondAsync: false });
    expect(parsePrefer('wait=-1, wait=abc, wait=, wait="", wait, wait=1e3')).toEqual({ respondAsync: false });
    expect(parsePrefer('wait=x, wait=6')).toEqual({ wait: 6, respondAsync: false });
    expect(parsePrefer('"wait=3"')).toEqual({ respondAsync: false });
  });

  it('holds for the preferred wait capped by the gateway, or not at all with respond-async', () => {
    expect(heldWaitS('wait=100', 60)).toBe(60);
    expect(heldWaitS('wait=2', 60)).toBe(2);
    expect(heldWaitS('wait=2, respond-async', 60)).toBe(0);
    expect(heldWaitS(undefined, 60)).toBe(0);
  });
});
