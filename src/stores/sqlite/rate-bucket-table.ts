import type { SqliteDatabase } from '../../sqlite/open-database.js';
import type { RateBucket, RateDecision } from '../store.js';
import { fullInMs, normalized, rateDecision, refilled, takeOne } from '../token-bucket.js';

// A bucket's tokens as of `at` (epoch ms); without a row it is full. full_at is when it is full
// again, and so the same as no row: the purge deletes it then. NULL: it never refills (rate 0).
export const rateBucketTableDdl = `
CREATE TABLE IF NOT EXISTS rate_buckets (
  name    TEXT    NOT NULL PRIMARY KEY,
  tokens  REAL    NOT NULL,
  at      INTEGER NOT NULL,
  full_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rate_buckets_by_full ON rate_buckets (full_at);
`;

const saveSql = `
INSERT INTO rate_buckets (name, tokens, at, full_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, at = excluded.at, full_at = excluded.full_at`;

/**
 * Token buckets in results.db, shared by every process that opens it. A take reads and writes
 * its buckets inside one IMMEDIATE transaction: it holds the write lock from its first read, so
 * two processes never both spend the last token. The NORMAL connection is enough: a power cut
 * that loses the newest takes only hands out a few tokens again.
 */
export class RateBucketTable {
  private readonly take;
  private readonly purgeStatement;

  constructor(db: SqliteDatabase) {
    const read = db.prepare('SELECT tokens, at FROM rate_buckets WHERE name = ?');
    const save = db.prepare(saveSql);
    this.take = db.transaction((buckets: readonly RateBucket[]): RateDecision => {
      // The clock is read once the lock is held: a take that waited for it must not refill from a stale time.
      const now = Date.now();
      const found = buckets.map((b) => {
        const row = read.get(b.name) as { tokens: number; at: number } | undefined;
        return row === undefined ? b.burst : refilled(b, row.tokens, now - row.at);
      });
      const { allowed, tokens } = takeOne(found);
      if (allowed) {
        buckets.forEach((b, i) => {
          const left = tokens[i] ?? 0;
          const full = fullInMs(b, left);
          save.run(b.name, left, now, full === undefined ? null : now + full);
        });
      }
      return rateDecision(buckets, tokens, allowed);
    });
    this.purgeStatement = db.prepare('DELETE FROM rate_buckets WHERE full_at <= ?');
  }

  takeTokens(buckets: readonly RateBucket[]): RateDecision {
    if (buckets.length === 0) return { allowed: true, buckets: [] };
    return this.take.immediate(buckets.map(normalized));
  }

  /** Deletes buckets that are full again; returns how many went. */
  purge(now: number): number {
    return this.purgeStatement.run(now).changes;
  }
}
