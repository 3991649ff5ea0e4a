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
    const fields = new Map([...fieldMap(flat, what)].map(([name, v]) => [name, asString(v, what)]));
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

/** A flat `[field, value, …]` array (RESP2, or a RESP3 map as ioredis's legacy mapping gives it). */
function fieldMap(raw: unknown, what: string): Map<string, unknown> {
  const flat = asArray(raw, what);
  const info = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) info.set(asString(flat[i], what), flat[i + 1]);
  return info;
}

/** XINFO GROUPS: one field map per group. */
export function groupsReply(value: unknown): GroupInfo[] {
  return asArray(value, 'XINFO GROUPS').map((raw) => {
    const info = fieldMap(raw, 'XINFO GROUPS');
    const pending = info.get('pending');
    const lag = info.get('lag');
    return {
      name: asString(info.get('name'), 'XINFO GROUPS'),
      pending: typeof pending === 'number' ? pending : fail('XINFO GROUPS'),
      lastDeliveredId: asString(info.get('last-delivered-id'), 'XINFO GROUPS'),
      lag: typeof lag === 'number' ? lag : null,
    };
  });
}

/** XINFO CONSUMERS: name, pending, idle (ms since the consumer last read or claimed). */
export function consumersReply(value: unknown): { name: string; pending: number; idle: number }[] {
  return asArray(value, 'XINFO CONSUMERS').map((raw) => {
    const info = fieldMap(raw, 'XINFO CONSUMERS');
    const pending = info.get('pending');
    const idle = info.get('idle');
    return {
      name: asString(info.get('name'), 'XINFO CONSUMERS'),
      pending: typeof pending === 'number' ? pending : fail('XINFO CONSUMERS'),
      idle: typeof idle === 'number' ? idle : fail('XINFO CONSUMERS'),
    };
  });
}

export function stringList(value: unknown, what: string): string[] {
  return asArray(value, what).map((v) => asString(v, what));
}
