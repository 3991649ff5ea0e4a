import { join } from 'node:path';
import type { PredictionRecord } from '../../protocol/prediction.js';
import { statusRank } from '../../protocol/prediction.js';
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
  id         TEXT    PRIMARY KEY,
  rank       INTEGER NOT NULL,
  attempts   INTEGER NOT NULL,
  record     TEXT    NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS predictions_by_expiry ON predictions (expires_at);
`;

/** The embedded profile's result store: its own SQLite file beside the queue's. */
export class SqliteStore implements ResultStore {
  private readonly db: SqliteDatabase;
  private readonly writes: GroupCommit<PredictionRecord>;
  private readonly read;
  private readonly purger: NodeJS.Timeout;

  static open(options: SqliteStoreOptions): SqliteStore {
    return new SqliteStore(options);
  }

  private constructor(private readonly options: SqliteStoreOptions) {
    this.db = openDatabase(join(options.dataDir, 'results.db'), {
      durability: 'full',
      busyTimeoutMs: options.busyTimeoutMs ?? 5000,
    });
    this.db.exec(ddl);
    // Only a record of higher rank, or a later attempt's "running", replaces the stored one.
    const upsert = this.db.prepare(
      `INSERT INTO predictions (id, rank, attempts, record, expires_at) VALUES (@id, @rank, @attempts, @record, @expires)
       ON CONFLICT (id) DO UPDATE SET
         rank = excluded.rank, attempts = excluded.attempts, record = excluded.record, expires_at = excluded.expires_at
       WHERE excluded.rank > predictions.rank
          OR (excluded.rank = 1 AND predictions.rank = 1 AND excluded.attempts > predictions.attempts)`,
    );
    this.writes = new GroupCommit(this.db, (records) => {
      const expires = Date.now() + this.options.retentionMs;
      for (const r of records) {
        upsert.run({ id: r.id, rank: statusRank(r.status), attempts: r.attempts, record: JSON.stringify(r), expires });
      }
    });
    this.read = this.db.prepare('SELECT record FROM predictions WHERE id = ? AND expires_at > ?').pluck();
    this.purger = setInterval(() => this.purgeQuietly(), options.purgeEveryMs ?? 60_000);
    this.purger.unref();
  }

  async put(records: readonly PredictionRecord[]): Promise<void> {
    await this.writes.submitMany(records);
  }

  async get(id: string): Promise<PredictionRecord | undefined> {
    const json = this.read.get(id, Date.now()) as string | undefined;
    return json === undefined ? undefined : (JSON.parse(json) as PredictionRecord);
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  /** Delete records past their retention; returns how many went. */
  purge(now = Date.now()): number {
    return this.db.prepare('DELETE FROM predictions WHERE expires_at <= ?').run(now).changes;
  }

  async close(): Promise<void> {
    clearInterval(this.purger);
    this.db.close();
  }

  private purgeQuietly(): void {
    try {
      this.purge();
    } catch {
      // Busy with another process's write; the next purge catches up.
    }
  }
}
