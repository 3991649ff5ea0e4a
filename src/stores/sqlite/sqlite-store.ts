import { join, resolve } from 'node:path';
import type { OutgoingMessage } from '../../protocol/message.js';
import type { CallbackDeliveryView, PredictionRecord } from '../../protocol/prediction.js';
import { isTerminal, storeProgress, storeRank } from '../../protocol/prediction.js';
import { GroupCommit } from '../../sqlite/group-commit.js';
import { openDatabase, whileBusy, type SqliteDatabase } from '../../sqlite/open-database.js';
import type { TopicView } from '../../sqlite/topic-view.js';
import type {
  CallbackAttemptOutcome,
  ClaimedCallback,
  IdempotencyClaimResult,
  IdempotencyKeyClaim,
  NewCallbackDelivery,
  RateBucket,
  RateDecision,
  ResultStore,
  StoredApiKey,
  StoredNotice,
} from '../store.js';
import { StoredNotices } from '../stored-notices.js';
import { viewRecords } from '../viewed-records.js';
import { ApiKeyTable, apiKeyTableDdl } from './api-key-table.js';
import { addMissingCallbackColumns, CallbackTable, callbackTableDdl } from './callback-table.js';
import { CappedSetTable, cappedSetTableDdl } from './capped-set-table.js';
import { NoticeTable, noticeTableDdl } from './notice-table.js';
import { RateBucketTable, rateBucketTableDdl } from './rate-bucket-table.js';

export interface SqliteStoreOptions {
  /** Folder holding the store's file; processes sharing the folder share the store. */
  readonly dataDir: string;
  /**
   * The file in `dataDir`: `results.db` (default), or `queue.db` to share the embedded queue's
   * file, which lets the queue write records into the store as it publishes them (recordsView).
   */
  readonly file?: 'results.db' | 'queue.db';
  readonly retentionMs: number;
  readonly busyTimeoutMs?: number;
  readonly purgeEveryMs?: number;
  /** How often a listening handle checks for notices from other processes; default 2 ms. */
  readonly pollMs?: number;
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
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key         TEXT    NOT NULL PRIMARY KEY,
  fingerprint TEXT    NOT NULL,
  id          TEXT    NOT NULL,
  created_at  TEXT    NOT NULL,
  expires_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_keys_by_expiry ON idempotency_keys (expires_at);
`;

// Takes a free key, or one whose claim has expired (the purge may not have run yet).
const claimSql = `
INSERT INTO idempotency_keys (key, fingerprint, id, created_at, expires_at) VALUES (@key, @fingerprint, @id, @createdAt, @expires)
ON CONFLICT (key) DO UPDATE SET
  fingerprint = excluded.fingerprint, id = excluded.id, created_at = excluded.created_at, expires_at = excluded.expires_at
WHERE idempotency_keys.expires_at <= @now`;

interface ClaimJob {
  readonly claim: IdempotencyKeyClaim;
  result?: IdempotencyClaimResult;
}

interface WriteJob {
  readonly record: PredictionRecord;
  written?: boolean;
}

// Only a record of higher rank, or a later attempt's "running", replaces the stored one. The
// rank is storeRank(): generation × 3 + status rank, so `rank % 3 = 1` is "running".
// Parameters by position (id, rank, attempts, record, expires): binding an object by name costs
// more, on a statement that runs holding the queue's write lock.
const upsertSql = `
INSERT INTO predictions (id, rank, attempts, record, expires_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
  rank = excluded.rank, attempts = excluded.attempts, record = excluded.record, expires_at = excluded.expires_at
WHERE excluded.rank > predictions.rank
   OR (excluded.rank % 3 = 1 AND excluded.rank = predictions.rank AND excluded.attempts > predictions.attempts)`;

/**
 * A rowid table (not WITHOUT ROWID): records are a few hundred bytes, and random UUID keys in a
 * clustered index of large rows split pages far more often than an append plus a small index.
 *
 * The embedded profile's result store: in the embedded queue's own file (queue.db), where the
 * queue writes each record into the store in the transaction that publishes it (recordsView);
 * beside another broker, or in a data folder an earlier Spillway made, a file of its own
 * (results.db), written by the store writer.
 *
 * Terminal records are committed with synchronous=FULL: once a client may have seen an outcome,
 * it survives power loss, and first-terminal-wins holds across a crash. Queued and running
 * records use synchronous=NORMAL: the request itself is already durable in the queue, and the
 * write-ahead log is ordered, so the next FULL commit makes them durable too. Idempotency claims
 * are FULL as well: the request a key stands for is queued right after the claim, and a lost
 * claim would let a retry queue it twice. The callback schedule, API keys, token buckets and
 * capped sets each have a file of their own here, which says how durable their writes are.
 */
export class SqliteStore implements ResultStore {
  private readonly durable: SqliteDatabase;
  private readonly fast: SqliteDatabase;
  private readonly terminalWrites: GroupCommit<WriteJob>;
  private readonly progressWrites: GroupCommit<WriteJob>;
  private readonly claims: GroupCommit<ClaimJob>;
  private readonly read;
  private readonly callbacks: CallbackTable;
  private readonly apiKeys: ApiKeyTable;
  private readonly buckets: RateBucketTable;
  private readonly cappedSets: CappedSetTable;
  private readonly purger: NodeJS.Timeout;
  private readonly notices: StoredNotices;
  readonly recordsView: ((topic: string) => TopicView<OutgoingMessage>) | undefined;

  static open(options: SqliteStoreOptions): SqliteStore {
    return new SqliteStore(options);
  }

  private constructor(private readonly options: SqliteStoreOptions) {
    const path = join(options.dataDir, options.file ?? 'results.db');
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.durable = openDatabase(path, { durability: 'full', busyTimeoutMs });
    whileBusy(busyTimeoutMs, () => this.durable.exec(ddl + callbackTableDdl + apiKeyTableDdl + rateBucketTableDdl + cappedSetTableDdl + noticeTableDdl));
    whileBusy(busyTimeoutMs, () => addMissingCallbackColumns(this.durable));
    this.fast = openDatabase(path, { durability: 'normal', busyTimeoutMs });
    this.terminalWrites = this.writer(this.durable);
    this.progressWrites = this.writer(this.fast);
    this.claims = this.claimer(this.durable);
    this.read = this.fast.prepare('SELECT record FROM predictions WHERE id = ? AND expires_at > ?').pluck();
    this.callbacks = new CallbackTable(this.durable, this.fast, options.retentionMs);
    this.apiKeys = new ApiKeyTable(this.durable, this.fast);
    this.buckets = new RateBucketTable(this.fast);
    this.cappedSets = new CappedSetTable(this.fast);
    this.notices = new StoredNotices(`spillway:stored:${resolve(path)}`, new NoticeTable(this.fast, options.pollMs ?? 2, (id) => this.readRecord(id)));
    this.purger = setInterval(() => this.purgeQuietly(), options.purgeEveryMs ?? 60_000);
    this.purger.unref();
    this.recordsView = options.file === 'queue.db' ? (topic) => this.viewOf(topic) : undefined;
  }

  /**
   * Runs in the queue's publishing transaction, on its connection: each record goes in by the
   * same rule as put(), is marked stored (the store writer then passes it over), and the final
   * ones written are announced once that transaction has committed. Records are decoded before
   * the transaction, so the write lock is held for the upserts alone.
   */
  private viewOf(topic: string): TopicView<OutgoingMessage> {
    return {
      kind: 'sqlite',
      topic,
      prepare: (db) => {
        const upsert = db.prepare(upsertSql);
        return (messages) => {
          const expires = Date.now() + this.options.retentionMs;
          const { records, marked } = viewRecords(messages);
          const written: PredictionRecord[] = [];
          // Runs again if the transaction is retried (the lock was taken), so it starts over.
          const apply = () => {
            written.length = 0;
            for (const { record, rank, progress, json } of records) {
              if (upsert.run(record.id, rank, progress, json, expires).changes > 0 && isTerminal(record.status)) written.push(record);
            }
          };
          return { messages: marked, apply, committed: () => this.announceStored(written) };
        };
      },
    };
  }

  async put(records: readonly PredictionRecord[]): Promise<readonly PredictionRecord[]> {
    const jobs: WriteJob[] = records.map((record) => ({ record }));
    await Promise.all(jobs.map((job) => (isTerminal(job.record.status) ? this.terminalWrites : this.progressWrites).submit(job)));
    return jobs.filter((job) => job.written === true).map((job) => job.record);
  }

  async get(id: string): Promise<PredictionRecord | undefined> {
    return this.readRecord(id);
  }

  private readRecord(id: string): PredictionRecord | undefined {
    const json = this.read.get(id, Date.now()) as string | undefined;
    return json === undefined ? undefined : (JSON.parse(json) as PredictionRecord);
  }

  announceStored(records: readonly PredictionRecord[]): void {
    this.notices.announce(records);
  }

  onStored(listener: (notice: StoredNotice) => void): () => void {
    return this.notices.listen(listener);
  }

  async claimIdempotencyKey(claim: IdempotencyKeyClaim): Promise<IdempotencyClaimResult> {
    const job: ClaimJob = { claim };
    await this.claims.submit(job);
    if (job.result === undefined) throw new Error('idempotency claim committed without a result');
    return job.result;
  }

  async releaseIdempotencyKey(key: string, id: string): Promise<void> {
    // FULL: a release lost to a power cut would leave the key standing for a request never queued.
    this.durable.prepare('DELETE FROM idempotency_keys WHERE key = ? AND id = ?').run(key, id);
  }

  enqueueCallbacks(deliveries: readonly NewCallbackDelivery[]): Promise<number> {
    return this.callbacks.enqueueCallbacks(deliveries);
  }

  claimCallbacks(limit: number, leaseMs: number): Promise<ClaimedCallback[]> {
    return this.callbacks.claimCallbacks(limit, leaseMs);
  }

  recordCallbackAttempt(outcome: CallbackAttemptOutcome): Promise<boolean> {
    return this.callbacks.recordCallbackAttempt(outcome);
  }

  resendCallback(webhookId: string): Promise<boolean> {
    return this.callbacks.resendCallback(webhookId);
  }

  callbackDeliveries(predictionId: string): Promise<CallbackDeliveryView[]> {
    return this.callbacks.callbackDeliveries(predictionId);
  }

  putApiKey(key: StoredApiKey): Promise<void> {
    return this.apiKeys.putApiKey(key);
  }

  getApiKey(id: string): Promise<StoredApiKey | undefined> {
    return this.apiKeys.getApiKey(id);
  }

  listApiKeys(): Promise<StoredApiKey[]> {
    return this.apiKeys.listApiKeys();
  }

  hasApiKeys(): Promise<boolean> {
    return this.apiKeys.hasApiKeys();
  }

  async takeTokens(buckets: readonly RateBucket[]): Promise<RateDecision> {
    return this.buckets.takeTokens(buckets);
  }

  async joinCapped(set: string, member: string, cap: number, expiresAt: number): Promise<{ readonly joined: boolean; readonly size: number }> {
    return this.cappedSets.joinCapped(set, member, cap, expiresAt);
  }

  async leaveCapped(set: string, members: readonly string[]): Promise<void> {
    this.cappedSets.leaveCapped(set, members);
  }

  async ping(): Promise<void> {
    this.fast.prepare('SELECT 1').get();
  }

  /**
   * Deletes what is past its time: records, idempotency keys and callbacks past the retention,
   * capped-set members past their expiry, and token buckets full again (the same as none).
   * API keys are never purged. Returns how many rows went.
   */
  purge(now = Date.now()): number {
    const records = this.fast.prepare('DELETE FROM predictions WHERE expires_at <= ?').run(now).changes;
    const keys = this.fast.prepare('DELETE FROM idempotency_keys WHERE expires_at <= ?').run(now).changes;
    return records + keys + this.callbacks.purge(now) + this.cappedSets.purge(now) + this.buckets.purge(now);
  }

  async close(): Promise<void> {
    clearInterval(this.purger);
    this.notices.close();
    this.durable.close();
    this.fast.close();
  }

  private writer(db: SqliteDatabase): GroupCommit<WriteJob> {
    const upsert = db.prepare(upsertSql);
    return new GroupCommit(db, (jobs) => {
      const expires = Date.now() + this.options.retentionMs;
      for (const job of jobs) {
        const r = job.record;
        // No change: the upsert's WHERE found the stored record as new or newer.
        // The attempts column holds storeProgress(), the order of running records.
        job.written = upsert.run(r.id, storeRank(r), storeProgress(r), JSON.stringify(r), expires).changes > 0;
      }
    });
  }

  /**
   * Claims share a transaction per event-loop turn like record writes do; each is decided inside
   * it (insert, or read the holder), so claims of one key in one batch still meet in order.
   */
  private claimer(db: SqliteDatabase): GroupCommit<ClaimJob> {
    const insert = db.prepare(claimSql);
    const holder = db.prepare('SELECT fingerprint, id, created_at AS createdAt FROM idempotency_keys WHERE key = ?');
    return new GroupCommit(db, (jobs) => {
      const now = Date.now();
      const expires = now + this.options.retentionMs;
      for (const job of jobs) {
        const { key, fingerprint, id, createdAt } = job.claim;
        if (insert.run({ key, fingerprint, id, createdAt, expires, now }).changes > 0) {
          job.result = { claimed: true };
          continue;
        }
        const held = holder.get(key) as { fingerprint: string; id: string; createdAt: string };
        job.result = { claimed: false, ...held };
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
