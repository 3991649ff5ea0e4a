import type { SqliteDatabase } from '../../sqlite/open-database.js';
import type { Delivery } from '../broker.js';

/**
 * One table of messages for every topic (seq is global and only grows), a position per consumer
 * group, and a lease row for every message a group has taken but not acked.
 */
const ddl = `
CREATE TABLE IF NOT EXISTS messages (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  topic        TEXT    NOT NULL,
  key          TEXT,
  headers      TEXT,
  value        TEXT    NOT NULL,
  published_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_topic ON messages (topic, seq);

CREATE TABLE IF NOT EXISTS topics (
  topic        TEXT    PRIMARY KEY,
  retention_ms INTEGER
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS groups (
  topic     TEXT    NOT NULL,
  grp       TEXT    NOT NULL,
  cursor    INTEGER NOT NULL,
  ephemeral INTEGER NOT NULL,
  seen_at   INTEGER NOT NULL,
  PRIMARY KEY (topic, grp)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS leases (
  topic      TEXT    NOT NULL,
  grp        TEXT    NOT NULL,
  seq        INTEGER NOT NULL,
  attempt    INTEGER NOT NULL,
  visible_at INTEGER NOT NULL,
  owner      TEXT,
  PRIMARY KEY (topic, grp, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leases_by_visibility ON leases (topic, grp, visible_at);
CREATE INDEX IF NOT EXISTS leases_by_owner ON leases (owner);
`;

export function createSchema(db: SqliteDatabase): void {
  db.exec(ddl);
}

export interface MessageRow {
  seq: number;
  key: string | null;
  headers: string | null;
  value: string;
  published_at: number;
}

export interface DueLeaseRow extends MessageRow {
  attempt: number;
}

/** A stored message as a Delivery; headers are parsed only if a reader looks (most never do). */
export function toDelivery(
  topic: string,
  row: MessageRow,
  attempt: number,
  settle: Pick<Delivery, 'ack' | 'nack'>,
): Delivery {
  return {
    topic,
    position: String(row.seq),
    key: row.key ?? undefined,
    get headers() {
      return row.headers === null ? {} : (JSON.parse(row.headers) as Record<string, string>);
    },
    value: row.value,
    attempt,
    publishedAt: row.published_at,
    ack: settle.ack,
    nack: settle.nack,
  };
}
