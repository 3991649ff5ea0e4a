import { randomUUID } from 'node:crypto';
import type { PredictionRecord } from '../../protocol/prediction.js';
import type { SqliteDatabase } from '../../sqlite/open-database.js';
import type { NoticeCarrier } from '../stored-notices.js';

// AUTOINCREMENT: a seq is never reused once the table empties, so a watcher's mark stays valid.
export const noticeTableDdl = `
CREATE TABLE IF NOT EXISTS stored_notice_ids (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  origin  TEXT    NOT NULL,
  ids     TEXT    NOT NULL,
  at      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS notice_listeners (
  listener TEXT    PRIMARY KEY,
  origin   TEXT    NOT NULL,
  seen_at  INTEGER NOT NULL
);`;

/** Notices are for clients waiting now; one a watcher has not read by then is of no use to it. */
const keepMs = 10_000;
/** A listener renews its row this often; one not renewed for `keepMs` is taken for gone (its process died). */
const renewMs = 2_000;

/**
 * Carries stored notices to other processes sharing the file: each is a row, and a watcher
 * polls `PRAGMA data_version` (it changes when another connection commits, and reads shared
 * memory, not the disk), reading the new rows only when it moved. Rows are written with the
 * connection's own durability (NORMAL): a notice lost to a crash costs a waiter its fast path,
 * nothing more. A row names the records by id: the records are in the store already, and
 * writing them twice would cost every store write, while reading them back costs only the
 * processes that hear another's notice.
 *
 * Listening handles register in `notice_listeners`, and a notice is written only while a
 * listener of another process is registered: a deployment in one process (`spillway serve`)
 * then pays one read per store-writer batch instead of a commit.
 */
export class NoticeTable implements NoticeCarrier {
  private readonly insert;
  private readonly prune;
  private readonly newest;
  private readonly since;
  private readonly dataVersion;
  private readonly othersListen;
  private readonly register;
  private readonly unregister;
  private prunedAt = 0;

  constructor(
    db: SqliteDatabase,
    private readonly pollMs: number,
    /** Reads a stored record (undefined once past retention). */
    private readonly load: (id: string) => PredictionRecord | undefined,
  ) {
    this.insert = db.prepare('INSERT INTO stored_notice_ids (origin, ids, at) VALUES (?, ?, ?)');
    this.prune = db.prepare('DELETE FROM stored_notice_ids WHERE at <= ?');
    this.newest = db.prepare('SELECT coalesce(max(seq), 0) FROM stored_notice_ids').pluck();
    this.since = db.prepare('SELECT origin, ids FROM stored_notice_ids WHERE seq > ? AND seq <= ? AND origin <> ? ORDER BY seq');
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
    this.othersListen = db.prepare('SELECT 1 FROM notice_listeners WHERE origin <> ? AND seen_at > ? LIMIT 1').pluck();
    this.register = db.prepare('INSERT OR REPLACE INTO notice_listeners (listener, origin, seen_at) VALUES (?, ?, ?)');
    this.unregister = db.prepare('DELETE FROM notice_listeners WHERE listener = ? OR seen_at <= ?');
  }

  send(origin: string, records: readonly PredictionRecord[]): void {
    const now = Date.now();
    try {
      if (this.othersListen.get(origin, now - keepMs) === undefined) return;
      this.insert.run(origin, JSON.stringify(records.map((r) => r.id)), now);
      if (now - this.prunedAt >= keepMs) {
        this.prunedAt = now;
        this.prune.run(now - keepMs);
      }
    } catch {
      // Busy past the timeout, or closed: other processes fall back to reading the store.
    }
  }

  private readonly loadQuietly = (id: string): PredictionRecord | undefined => {
    try {
      return this.load(id);
    } catch {
      return undefined; // busy or closing: that waiter falls back to its own read
    }
  };

  watch(origin: string, deliver: (origin: string, records: readonly PredictionRecord[]) => void): () => void {
    const listener = `${origin}:${randomUUID()}`;
    let renewedAt = Date.now();
    this.register.run(listener, origin, renewedAt);
    let version = this.dataVersion.get() as number;
    let mark = this.newest.get() as number;
    const poll = () => {
      let rows: { origin: string; ids: string }[];
      try {
        const now = Date.now();
        if (now - renewedAt >= renewMs) {
          renewedAt = now;
          this.register.run(listener, origin, now);
        }
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
      for (const row of rows) {
        const records = (JSON.parse(row.ids) as string[]).map(this.loadQuietly).filter((r) => r !== undefined);
        if (records.length > 0) deliver(row.origin, records);
      }
    };
    const timer = setInterval(poll, this.pollMs);
    timer.unref();
    return () => {
      clearInterval(timer);
      try {
        // Its own row, and any left by a process that died.
        this.unregister.run(listener, Date.now() - keepMs);
      } catch {
        // Closing: the row goes stale and is ignored.
      }
    };
  }
}
