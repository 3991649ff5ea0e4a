/** The Prefer request header as the route schema declares it: free text, since unknown preferences are ignored. */
export const preferSchema = {
  type: 'string',
  description:
    'RFC 7240 preferences: `wait=N` holds the connection up to N seconds (capped by the gateway) for the result; ' +
    '`respond-async` answers 202 at once. Others are ignored.',
  examples: ['wait=10', 'respond-async'],
} as const;

/** What a client asked for in its RFC 7240 Prefer header(s). */
export interface Preferences {
  /** Seconds the client is willing to wait for the result on this connection. */
  readonly wait?: number;
  readonly respondAsync: boolean;
}

/**
 * Parses `Prefer: wait=10, respond-async` (several headers, or one with commas). Unknown or
 * malformed preferences are ignored, as RFC 7240 requires of a server that cannot honour them.
 */
export function parsePrefer(header: string | readonly string[] | undefined): Preferences {
  const values = header === undefined ? [] : typeof header === 'string' ? [header] : header;
  let wait: number | undefined;
  let respondAsync = false;
  for (const preference of values.flatMap((v) => v.split(','))) {
    const [token, ...params] = preference.split(';');
    const [name = '', rawValue] = (token ?? '').split('=').map((s) => s.trim());
    const value = rawValue?.replace(/^"(.*)"$/, '$1');
    void params;
    if (name.toLowerCase() === 'respond-async') respondAsync = true;
    if (name.toLowerCase() === 'wait' && value !== undefined && /^\d+(\.\d+)?$/.test(value) && wait === undefined) {
      wait = Number(value);
    }
  }
  return wait === undefined ? { respondAsync } : { wait, respondAsync };
}

/** How long to hold the connection for the result: what the client prefers, capped at `maxWaitS`; 0 to answer at once. */
export function heldWaitS(header: string | readonly string[] | undefined, maxWaitS: number): number {
  const prefer = parsePrefer(header);
  return prefer.respondAsync ? 0 : Math.min(prefer.wait ?? 0, maxWaitS);
}
