import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { CallbackDeliveryView, CallbackEventName, PredictionRecord } from '../../protocol/prediction.js';
import { isTerminal, storeProgress, storeRank } from '../../protocol/prediction.js';
import { GroupCommit } from '../../sqlite/group-commit.js';
import { openDatabase, type SqliteDatabase } from '../../sqlite/open-database.js';
import type {
  CallbackAttemptOutcome,
  ClaimedCallback,
  IdempotencyClaimResult,
  IdempotencyKeyClaim,
  NewCallbackDelivery,
  ResultStore,
  StoredNotice,
} from '../store.js';
import { StoredNotices } from '../stored-notices.js';
import { NoticeTable, noticeTableDdl } from './notice-table.js';

export interface SqliteStoreOptions {
  /** Folder holding results.db; processes sharing the folder share the store. */
  readonly dataDir: string;
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
CREATE TABLE IF NOT EXISTS callback_deliveries (
  webhook_id      TEXT    NOT NULL PRIMARY KEY,
  prediction_id   TEXT    NOT NULL,
  event           TEXT    NOT NULL,
  url             TEXT    NOT NULL,
  body            TEXT    NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  state           TEXT    NOT NULL DEFAULT 'pending',
  last_status     INTEGER,
  last_error      TEXT,
  delivered_at    INTEGER,
  lease_until     INTEGER NOT NULL DEFAULT 0,
  lease_token     TEXT,
  created_at      INTEGER NOT NULL,
  expires_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS callback_deliveries_due ON callback_deliveries (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS callback_deliveries_by_prediction ON callback_deliveries (prediction_id);
CREATE INDEX IF NOT EXISTS callback_deliveries_by_expiry ON callback_deliveries (expires_at);
`;

const enqueueCallbackSql = `
INSERT INTO callback_deliveries (webhook_id, prediction_id, event, url, body, next_attempt_at, created_at, expires_at)
VALUES (@webhookId, @predictionId, @event, @url, @body, @now, @now, @expires)
ON CONFLICT (webhook_id) DO NOTHING`;

// One statement, so the choice and the lease are one write: two dispatchers never get the same row.
const claimCallbacksSql = `
UPDATE callback_deliveries SET lease_until = @leaseUntil, lease_token = @token
WHERE webhook_id IN (
  SELECT webhook_id FROM callback_deliveries
  WHERE state = 'pending' AND next_attempt_at <= @now AND lease_until <= @now
  ORDER BY next_attempt_at LIMIT @limit)
RETURNING webhook_id AS webhookId, prediction_id AS predictionId, event, url, body, attempts`;

const recordAttemptSql = `
UPDATE callback_deliveries SET
  attempts = attempts + 1, state = @state, last_status = @status, last_error = @error,
  next_attempt_at = @nextAttemptAt, delivered_at = @deliveredAt, lease_until = 0, lease_token = NULL
WHERE webhook_id = @webhookId AND lease_token = @leaseToken`;

interface DeliveryRow {
  event: CallbackEventName;
  webhook_id: string;
  state: CallbackDeliveryView['state'];
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  delivered_at: number | null;
  next_attempt_at: number;
}

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
const upsertSql = `
INSERT INTO predictions (id, rank, attempts, record, expires_at) VALUES (@id, @rank, @attempts, @record, @expires)
ON CONFLICT (id) DO UPDATE SET
  rank = excluded.rank, attempts = excluded.attempts, record = excluded.record, expires_at = excluded.expires_at
WHERE excluded.rank > predictions.rank
   OR (excluded.rank % 3 = 1 AND excluded.rank = predictions.rank AND excluded.attempts > predictions.attempts)`;

/**
 * A rowid table (not WITHOUT ROWID): records are a few hundred bytes, and random UUID keys in a
 * clustered index of large rows split pages far more often than an append plus a small index.
 *
 * The embedded profile's result store: its own SQLite file beside the queue's.
 *
 * Terminal records are committed with synchronous=FULL: once a client may have seen an outcome,
 * it survives power loss, and first-terminal-wins holds across a crash. Queued and running
 * records use synchronous=NORMAL: the request itself is already durable in the queue, and the
 * write-ahead log is ordered, so the next FULL commit makes them durable too. Idempotency claims
 * are FULL as well: the request a key stands for is queued right after the claim, and a lost
 * claim would let a retry queue it twice.
 */
export class SqliteStore implements ResultStore {
  private readonly durable: SqliteDatabase;
  private readonly fast: SqliteDatabase;
  private readonly terminalWrites: GroupCommit<WriteJob>;
  private readonly progressWrites: GroupCommit<WriteJob>;
  private readonly claims: GroupCommit<ClaimJob>;
  private readonly read;
  private readonly callbackStatements;
  private readonly purger: NodeJS.Timeout;
  private readonly notices: StoredNotices;

  static open(options: SqliteStoreOptions): SqliteStore {
    return new SqliteStore(options);
  }

  private constructor(private readonly options: SqliteStoreOptions) {
    const path = join(options.dataDir, 'results.db');
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.durable = openDatabase(path, { durability: 'full', busyTimeoutMs });
    this.durable.exec(ddl + noticeTableDdl);
    this.fast = openDatabase(path, { durability: 'normal', busyTimeoutMs });
    this.terminalWrites = this.writer(this.durable);
    this.progressWrites = this.writer(this.fast);
    this.claims = this.claimer(this.durable);
    this.read = this.fast.prepare('SELECT record FROM predictions WHERE id = ? AND expires_at > ?').pluck();
    this.callbackStatements = {
      enqueue: this.durable.prepare(enqueueCallbackSql),
      claim: this.durable.prepare(claimCallbacksSql),
      record: this.durable.prepare(recordAttemptSql),
      list: this.fast.prepare(
        `SELECT event, webhook_id, state, attempts, last_status, last_error, delivered_at, next_attempt_at
         FROM callback_deliveries WHERE prediction_id = ? ORDER BY created_at, webhook_id`,
      ),
    };
    this.notices = new StoredNotices(`spillway:stored:${resolve(path)}`, new NoticeTable(this.fast, options.pollMs ?? 2, (id) => this.readRecord(id)));
    this.purger = setInterval(() => this.purgeQuietly(), options.purgeEveryMs ?? 60_000);
    this.purger.unref();
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

  // Callback writes go through the FULL connection: a delivery owed to a client must survive a
  // crash once its response message has been acked.
  async enqueueCallbacks(deliveries: readonly NewCallbackDelivery[]): Promise<number> {
    if (deliveries.length === 0) return 0;
    const insert = this.callbackStatements.enqueue;
    const now = Date.now();
    const expires = now + this.options.retentionMs;
    return this.durable.transaction(() =>
      deliveries.reduce((n, d) => n + insert.run({ ...d, now, expires }).changes, 0),
    )();
  }

  async claimCallbacks(limit: number, leaseMs: number): Promise<ClaimedCallback[]> {
    const now = Date.now();
    const leaseToken = randomUUID();
    const rows = this.callbackStatements.claim.all({ now, leaseUntil: now + leaseMs, token: leaseToken, limit }) as Omit<ClaimedCallback, 'leaseToken'>[];
    return rows.map((r) => ({ ...r, leaseToken }));
  }

  async recordCallbackAttempt(o: CallbackAttemptOutcome): Promise<boolean> {
    const now = Date.now();
    const result = this.callbackStatements.record.run({
      webhookId: o.webhookId,
      leaseToken: o.leaseToken,
      state: o.state,
      status: o.status ?? null,
      error: o.error ?? null,
      nextAttemptAt: o.state === 'pending' ? (o.nextAttemptAt ?? now) : now,
      deliveredAt: o.state === 'delivered' ? now : null,
    });
    return result.changes > 0;
  }

  async resendCallback(webhookId: string): Promise<boolean> {
    const now = Date.now();
    return (
      this.durable
        .prepare(`UPDATE callback_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, lease_until = 0, lease_token = NULL
                  WHERE webhook_id = ? AND state = 'dead'`)
        .run(now, webhookId).changes > 0
    );
  }

  async callbackDeliveries(predictionId: string): Promise<CallbackDeliveryView[]> {
    const rows = this.callbackStatements.list.all(predictionId) as DeliveryRow[];
    return rows.map((r) => ({
      event: r.event,
      webhook_id: r.webhook_id,
      state: r.state,
      attempts: r.attempts,
      ...(r.last_status === null ? {} : { last_status: r.last_status }),
      ...(r.last_error === null ? {} : { last_error: r.last_error }),
      ...(r.delivered_at === null ? {} : { delivered_at: new Date(r.delivered_at).toISOString() }),
      ...(r.state === 'pending' ? { next_attempt_at: new Date(r.next_attempt_at).toISOString() } : {}),
    }));
  }

  async ping(): Promise<void> {
    this.fast.prepare('SELECT 1').get();
  }

  /** Delete records and idempotency keys past their retention; returns how many went. */
  purge(now = Date.now()): number {
    const records = this.fast.prepare('DELETE FROM predictions WHERE expires_at <= ?').run(now).changes;
    const keys = this.fast.prepare('DELETE FROM idempotency_keys WHERE expires_at <= ?').run(now).changes;
    const callbacks = this.fast.prepare('DELETE FROM callback_deliveries WHERE expires_at <= ?').run(now).changes;
    return records + keys + callbacks;
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
        job.written = upsert.run({ id: r.id, rank: storeRank(r), attempts: storeProgress(r), record: JSON.stringify(r), expires }).changes > 0;
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
