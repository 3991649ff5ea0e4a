/**
 * Typed readings of the RESP2 replies ioredis hands back as nested arrays. A reply of another
 * shape throws, so a server that answers differently fails loudly rather than losing entries.
 */

export interface StreamEntry {
  readonly id: string;
  readonly fields: ReadonlyMap<string, string>;
}

function fail(what: string): never {
  throw new Error(`unexpected Redis reply to ${what}`);
}

function asArray(value: unknown, what: string): unknown[] {
  return Array.isArray(value) ? (value as unknown[]) : fail(what);
}

function asString(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return fail(what);
}

/** `[id, [field, value, …]]`; an entry deleted while pending comes as `[id, nil]` and is skipped. */
export function readEntries(value: unknown, what: string): StreamEntry[] {
  const out: StreamEntry[] = [];
  for (const raw of asArray(value, what)) {
    const [id, flat] = asArray(raw, what);
    if (flat === null) continue;
    const fields = new Map<string, string>();
    const pairs = asArray(flat, what);
    for (let i = 0; i + 1 < pairs.length; i += 2) fields.set(asString(pairs[i], what), asString(pairs[i + 1], what));
    out.push({ id: asString(id, what), fields });
  }
  return out;
}

/**
 * XREADGROUP with one stream: nil on timeout, else `[[key, entries]]` in RESP2, or in RESP3 a
 * map that ioredis's legacy mapping flattens to `[key, entries]`.
 */
export function readGroupReply(value: unknown): StreamEntry[] {
  if (value === null) return [];
  const reply = asArray(value, 'XREADGROUP');
  const [key, entries] = typeof reply[0] === 'string' || Buffer.isBuffer(reply[0]) ? reply : asArray(reply[0], 'XREADGROUP');
  asString(key, 'XREADGROUP');
  return readEntries(entries, 'XREADGROUP');
}

/** XAUTOCLAIM (Redis 7+): `[next cursor, claimed entries, ids deleted from the stream]`. */
export function autoClaimReply(value: unknown): { cursor: string; claimed: StreamEntry[]; deleted: string[] } {
  const [cursor, claimed, deleted] = asArray(value, 'XAUTOCLAIM');
  return {
    cursor: asString(cursor, 'XAUTOCLAIM'),
    claimed: readEntries(claimed, 'XAUTOCLAIM'),
    deleted: deleted === undefined ? [] : asArray(deleted, 'XAUTOCLAIM').map((id) => asString(id, 'XAUTOCLAIM')),
  };
}

/** Extended XPENDING for one id: `[[id, consumer, idle, times delivered]]`, or [] once acked. */
export function deliveryCountReply(value: unknown): number | undefined {
  const [row] = asArray(value, 'XPENDING');
  if (row === undefined) return undefined;
  const count = asArray(row, 'XPENDING')[3];
  return typeof count === 'number' ? count : fail('XPENDING');
}

export interface GroupInfo {
  readonly name: string;
  readonly pending: number;
  readonly lastDeliveredId: string;
  /** null when Redis cannot tell (deleted entries after the group's position). */
  readonly lag: number | null;
}

/**
 * A list of flat `[field, value, …]` arrays (RESP2, or RESP3 maps as ioredis's legacy mapping
 * gives them), each read into a record with typed getters.
 */
function records<T>(value: unknown, what: string, read: (get: { text(f: string): string; count(f: string): number; raw(f: string): unknown }) => T): T[] {
  return asArray(value, what).map((raw) => {
    const flat = asArray(raw, what);
    const info = new Map<string, unknown>();
    for (let i = 0; i + 1 < flat.length; i += 2) info.set(asString(flat[i], what), flat[i + 1]);
    return read({
      text: (f) => asString(info.get(f), what),
      count: (f) => {
        const v = info.get(f);
        return typeof v === 'number' ? v : fail(what);
      },
      raw: (f) => info.get(f),
    });
  });
}

/** XINFO GROUPS. */
export function groupsReply(value: unknown): GroupInfo[] {
  return records(value, 'XINFO GROUPS', (g) => {
    const lag = g.raw('lag');
    return { name: g.text('name'), pending: g.count('pending'), lastDeliveredId: g.text('last-delivered-id'), lag: typeof lag === 'number' ? lag : null };
  });
}

/** XINFO CONSUMERS: name, pending, idle (ms since the consumer last read or claimed). */
export function consumersReply(value: unknown): { name: string; pending: number; idle: number }[] {
  return records(value, 'XINFO CONSUMERS', (c) => ({ name: c.text('name'), pending: c.count('pending'), idle: c.count('idle') }));
}

export function stringList(value: unknown, what: string): string[] {
  return asArray(value, what).map((v) => asString(v, what));
}

/** Extended XPENDING: the ids of its `[id, consumer, idle, times delivered]` rows, oldest first. */
export function pendingIdsReply(value: unknown): string[] {
  return asArray(value, 'XPENDING').map((row) => asString(asArray(row, 'XPENDING')[0], 'XPENDING'));
}
