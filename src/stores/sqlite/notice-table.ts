import type { PredictionRecord } from '../../protocol/prediction.js';
import type { SqliteDatabase } from '../../sqlite/open-database.js';
import type { NoticeCarrier } from '../stored-notices.js';

// AUTOINCREMENT: a seq is never reused once the table empties, so a watcher's mark stays valid.
export const noticeTableDdl = `
CREATE TABLE IF NOT EXISTS stored_notices (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  origin  TEXT    NOT NULL,
  records TEXT    NOT NULL,
  at      INTEGER NOT NULL
);`;

/** Notices are for clients waiting now; one a watcher has not read by then is of no use to it. */
const keepMs = 10_000;

/**
 * Carries stored notices to other processes sharing the file: each is a row, and a watcher
 * polls `PRAGMA data_version` (it changes when another connection commits, and reads shared
 * memory, not the disk), reading the new rows only when it moved. Rows are written with the
 * connection's own durability (NORMAL): a notice lost to a crash costs a waiter its fast path,
 * nothing more.
 */
export class NoticeTable implements NoticeCarrier {
  private readonly insert;
  private readonly prune;
  private readonly newest;
  private readonly since;
  private readonly dataVersion;
  private prunedAt = 0;

  constructor(
    db: SqliteDatabase,
    private readonly pollMs: number,
  ) {
    this.insert = db.prepare('INSERT INTO stored_notices (origin, records, at) VALUES (?, ?, ?)');
    this.prune = db.prepare('DELETE FROM stored_notices WHERE at <= ?');
    this.newest = db.prepare('SELECT coalesce(max(seq), 0) FROM stored_notices').pluck();
    this.since = db.prepare('SELECT origin, records FROM stored_notices WHERE seq > ? AND seq <= ? AND origin <> ? ORDER BY seq');
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
  }

  send(origin: string, records: readonly PredictionRecord[]): void {
    const now = Date.now();
    try {
      this.insert.run(origin, JSON.stringify(records), now);
      if (now - this.prunedAt >= keepMs) {
        this.prunedAt = now;
        this.prune.run(now - keepMs);
      }
    } catch {
      // Busy past the timeout, or closed: other processes fall back to reading the store.
    }
  }

  watch(origin: string, deliver: (origin: string, records: readonly PredictionRecord[]) => void): () => void {
    let version = this.dataVersion.get() as number;
    let mark = this.newest.get() as number;
    const poll = () => {
      let rows: { origin: string; records: string }[];
      try {
        const current = this.dataVersion.get() as number;
        if (current === version) return;
        const newest = this.newest.get() as number;
        // This process's own rows are skipped unread: its threads heard them already.
        rows = newest > mark ? (this.since.all(mark, newest, origin) as typeof rows) : [];
        version = current;
        mark = newest;
      } catch {
        return; // busy or closing: the next poll reads what this one missed
      }
      for (const row of rows) deliver(row.origin, JSON.parse(row.records) as PredictionRecord[]);
    };
    const timer = setInterval(poll, this.pollMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
