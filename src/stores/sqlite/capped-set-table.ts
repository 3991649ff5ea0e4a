import type { SqliteDatabase } from '../../sqlite/open-database.js';

export const cappedSetTableDdl = `
CREATE TABLE IF NOT EXISTS capped_set_members (
  set_name   TEXT    NOT NULL,
  member     TEXT    NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (set_name, member)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS capped_set_members_by_expiry ON capped_set_members (expires_at);
`;

/**
 * Capped sets in results.db: one row per member, with the epoch ms at which it stops counting.
 * A join counts and inserts inside one IMMEDIATE transaction, so concurrent joins from any
 * number of processes never overfill a set. It first drops the set's expired members, so a
 * place held by a gateway that died frees itself; the purge drops the rest now and then. The
 * NORMAL connection is enough: a power cut that loses the newest joins frees their places early.
 */
export class CappedSetTable {
  private readonly join;
  private readonly leave;
  private readonly purgeStatement;

  constructor(db: SqliteDatabase) {
    const dropExpired = db.prepare('DELETE FROM capped_set_members WHERE set_name = ? AND expires_at <= ?');
    const refresh = db.prepare('UPDATE capped_set_members SET expires_at = ? WHERE set_name = ? AND member = ?');
    const size = db.prepare('SELECT count(*) FROM capped_set_members WHERE set_name = ?').pluck();
    const insert = db.prepare('INSERT INTO capped_set_members (set_name, member, expires_at) VALUES (?, ?, ?)');
    this.join = db.transaction((set: string, member: string, cap: number, expiresAt: number) => {
      dropExpired.run(set, Date.now());
      let joined = refresh.run(expiresAt, set, member).changes > 0;
      if (!joined && (size.get(set) as number) < cap) joined = insert.run(set, member, expiresAt).changes > 0;
      return { joined, size: size.get(set) as number };
    });
    const remove = db.prepare('DELETE FROM capped_set_members WHERE set_name = ? AND member = ?');
    this.leave = db.transaction((set: string, members: readonly string[]) => {
      for (const member of members) remove.run(set, member);
    });
    this.purgeStatement = db.prepare('DELETE FROM capped_set_members WHERE expires_at <= ?');
  }

  joinCapped(set: string, member: string, cap: number, expiresAt: number): { joined: boolean; size: number } {
    return this.join.immediate(set, member, cap, expiresAt);
  }

  leaveCapped(set: string, members: readonly string[]): void {
    if (members.length > 0) this.leave(set, members);
  }

  /** Deletes members past their expiry; returns how many went. */
  purge(now: number): number {
    return this.purgeStatement.run(now).changes;
  }
}
