import { join } from 'node:path';
import type { PredictionRecord } from '../../protocol/prediction.js';
import { isTerminal, statusRank } from '../../protocol/prediction.js';
import { GroupCommit } from '../../sqlite/group-commit.js';
import { openDatabase, type SqliteDatabase } from '../../sqlite/open-database.js';
import type { ResultStore } from '../store.js';

export interface SqliteStoreOptions {
  /** Folder holding results.db; processes sharing the folder share the store. */
  readonly dataDir: string;
  readonly retentionMs: number;
  readonly busyTimeoutMs?: number;
  readonly purgeEveryMs?: number;
}

const ddl = `
CREATE TABLE IF NOT EXISTS predictions (
  id         TEXT    NOT NULL UNIQUE,
  rank       INTEGER NOT NULL,
  attempts   INTEGER NOT NULL,
  record     TEXT    NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_by_expiry ON predictions (expires_at);
`;

// Only a record of higher rank, or a later attempt's "running", replaces the stored one.
const upsertSql = `
INSERT INTO predictions (id, rank, attempts, record, expires_at) VALUES (@id, @rank, @attempts, @record, @expires)
ON CONFLICT (id) DO UPDATE SET
  rank = excluded.rank, attempts = excluded.attempts, record = excluded.record, expires_at = excluded.expires_at
WHERE excluded.rank > predictions.rank
   OR (excluded.rank = 1 AND predictions.rank = 1 AND excluded.attempts > predictions.attempts)`;

/**
 * A rowid table (not WITHOUT ROWID): records are a few hundred bytes, and random UUID keys in a
 * clustered index of large rows split pages far more often than an append plus a small index.
 *
 * The embedded profile's result store: its own SQLite file beside the queue's.
 *
 * Terminal records are committed with synchronous=FULL: once a client may have seen an outcome,
 * it survives power loss, and first-terminal-wins holds across a crash. Queued and running
 * records use synchronous=NORMAL: the request itself is already durable in the queue, and the
 * write-ahead log is ordered, so the next FULL commit makes them durable too.
 */
export class SqliteStore implements ResultStore {
  private readonly durable: SqliteDatabase;
  private readonly fast: SqliteDatabase;
  private readonly terminalWrites: GroupCommit<PredictionRecord>;
  private readonly progressWrites: GroupCommit<PredictionRecord>;
  private readonly read;
  private readonly purger: NodeJS.Timeout;

  static open(options: SqliteStoreOptions): SqliteStore {
    return new SqliteStore(options);
  }

  private constructor(private readonly options: SqliteStoreOptions) {
    const path = join(options.dataDir, 'results.db');
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.durable = openDatabase(path, { durability: 'full', busyTimeoutMs });
    this.durable.exec(ddl);
    this.fast = openDatabase(path, { durability: 'normal', busyTimeoutMs });
    this.terminalWrites = this.writer(this.durable);
    this.progressWrites = this.writer(this.fast);
    this.read = this.fast.prepare('SELECT record FROM predictions WHERE id = ? AND expires_at > ?').pluck();
    this.purger = setInterval(() => this.purgeQuietly(), options.purgeEveryMs ?? 60_000);
    this.purger.unref();
  }

  async put(records: readonly PredictionRecord[]): Promise<void> {
    await Promise.all(
      records.map((r) => (isTerminal(r.status) ? this.terminalWrites : this.progressWrites).submit(r)),
    );
  }

  async get(id: string): Promise<PredictionRecord | undefined> {
    const json = this.read.get(id, Date.now()) as string | undefined;
    return json === undefined ? undefined : (JSON.parse(json) as PredictionRecord);
  }

  async ping(): Promise<void> {
    this.fast.prepare('SELECT 1').get();
  }

  /** Delete records past their retention; returns how many went. */
  purge(now = Date.now()): number {
    return this.fast.prepare('DELETE FROM predictions WHERE expires_at <= ?').run(now).changes;
  }

  async close(): Promise<void> {
    clearInterval(this.purger);
    this.durable.close();
    this.fast.close();
  }

  private writer(db: SqliteDatabase): GroupCommit<PredictionRecord> {
    const upsert = db.prepare(upsertSql);
    return new GroupCommit(db, (records) => {
      const expires = Date.now() + this.options.retentionMs;
      for (const r of records) {
        upsert.run({ id: r.id, rank: statusRank(r.status), attempts: r.attempts, record: JSON.stringify(r), expires });
      }
    });
  }

  private purgeQuietly(): void {
    try {
      this.purge();
    } catch {
      // Busy with another process's write; the next purge catches up.
    }
  }
}
