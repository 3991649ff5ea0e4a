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
  let wait: number | undefined;
  let respondAsync = false;
  const values = header === undefined ? [] : typeof header === 'string' ? [header] : header;
  // Plain loops and slices: this runs for every prediction request.
  for (const value of values) {
    for (const preference of value.split(',')) {
      const semicolon = preference.indexOf(';');
      const [name = '', rawValue] = (semicolon === -1 ? preference : preference.slice(0, semicolon)).split('=');
      const lowered = name.trim().toLowerCase();
      if (lowered === 'respond-async') respondAsync = true;
      else if (lowered === 'wait' && rawValue !== undefined && wait === undefined) {
        const seconds = unquote(rawValue.trim());
        if (/^\d+(\.\d+)?$/.test(seconds)) wait = Number(seconds);
      }
    }
  }
  return wait === undefined ? { respondAsync } : { wait, respondAsync };
}

function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}

/** How long to hold the connection for the result: what the client prefers, capped at `maxWaitS`; 0 to answer at once. */
export function heldWaitS(header: string | readonly string[] | undefined, maxWaitS: number): number {
  const prefer = parsePrefer(header);
  return prefer.respondAsync ? 0 : Math.min(prefer.wait ?? 0, maxWaitS);
}
