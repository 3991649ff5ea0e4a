import { randomUUID } from 'node:crypto';
import type { CallbackDeliveryView, CallbackEventName } from '../../protocol/prediction.js';
import type { SqliteDatabase } from '../../sqlite/open-database.js';
import type { CallbackAttemptOutcome, CallbackSchedule, ClaimedCallback, NewCallbackDelivery } from '../store.js';

export const callbackTableDdl = `
CREATE TABLE IF NOT EXISTS callback_deliveries (
  webhook_id      TEXT    NOT NULL PRIMARY KEY,
  prediction_id   TEXT    NOT NULL,
  tenant          TEXT,
  traceparent     TEXT,
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
INSERT INTO callback_deliveries (webhook_id, prediction_id, tenant, traceparent, event, url, body, next_attempt_at, created_at, expires_at)
VALUES (@webhookId, @predictionId, @tenant, @traceparent, @event, @url, @body, @now, @now, @expires)
ON CONFLICT (webhook_id) DO NOTHING`;

// One statement, so the choice and the lease are one write: two dispatchers never get the same row.
const claimCallbacksSql = `
UPDATE callback_deliveries SET lease_until = @leaseUntil, lease_token = @token
WHERE webhook_id IN (
  SELECT webhook_id FROM callback_deliveries
  WHERE state = 'pending' AND next_attempt_at <= @now AND lease_until <= @now
  ORDER BY next_attempt_at LIMIT @limit)
RETURNING webhook_id AS webhookId, prediction_id AS predictionId, tenant, traceparent, event, url, body, attempts`;

const recordAttemptSql = `
UPDATE callback_deliveries SET
  attempts = attempts + 1, state = @state, last_status = @status, last_error = @error,
  next_attempt_at = @nextAttemptAt, delivered_at = @deliveredAt, lease_until = 0, lease_token = NULL
WHERE webhook_id = @webhookId AND lease_token = @leaseToken`;

type ClaimedRow = Omit<ClaimedCallback, 'leaseToken' | 'tenant' | 'traceparent'> & { tenant: string | null; traceparent: string | null };

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

/**
 * Adds the columns a results.db made by an older Spillway lacks (CREATE TABLE IF NOT EXISTS
 * leaves an old table as it is): tenant, then traceparent. Checked and altered in one IMMEDIATE
 * transaction, so processes that open the same old file at once add each once; the deliveries
 * already there have neither.
 */
export function addMissingCallbackColumns(db: SqliteDatabase): void {
  db.transaction(() => {
    const columns = new Set((db.prepare('PRAGMA table_info(callback_deliveries)').all() as { name: string }[]).map((c) => c.name));
    for (const column of ['tenant', 'traceparent']) {
      if (!columns.has(column)) db.exec(`ALTER TABLE callback_deliveries ADD COLUMN ${column} TEXT`);
    }
  }).immediate();
}

/**
 * The callback schedule of the SQLite store: one row per webhook owed. Writes go through the
 * FULL connection: a delivery owed to a client must survive a crash once its response message
 * has been acked. The list reads through the NORMAL one.
 */
export class CallbackTable implements CallbackSchedule {
  private readonly statements;

  constructor(
    private readonly durable: SqliteDatabase,
    fast: SqliteDatabase,
    private readonly retentionMs: number,
  ) {
    this.statements = {
      enqueue: durable.prepare(enqueueCallbackSql),
      claim: durable.prepare(claimCallbacksSql),
      record: durable.prepare(recordAttemptSql),
      resend: durable.prepare(`UPDATE callback_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, lease_until = 0, lease_token = NULL
                               WHERE webhook_id = ? AND state = 'dead'`),
      list: fast.prepare(
        `SELECT event, webhook_id, state, attempts, last_status, last_error, delivered_at, next_attempt_at
         FROM callback_deliveries WHERE prediction_id = ? ORDER BY created_at, webhook_id`,
      ),
      purge: fast.prepare('DELETE FROM callback_deliveries WHERE expires_at <= ?'),
    };
  }

  async enqueueCallbacks(deliveries: readonly NewCallbackDelivery[]): Promise<number> {
    if (deliveries.length === 0) return 0;
    const insert = this.statements.enqueue;
    const now = Date.now();
    const expires = now + this.retentionMs;
    return this.durable.transaction(() =>
      deliveries.reduce((n, d) => n + insert.run({ ...d, tenant: d.tenant ?? null, traceparent: d.traceparent ?? null, now, expires }).changes, 0),
    )();
  }

  async claimCallbacks(limit: number, leaseMs: number): Promise<ClaimedCallback[]> {
    const now = Date.now();
    const leaseToken = randomUUID();
    const rows = this.statements.claim.all({ now, leaseUntil: now + leaseMs, token: leaseToken, limit }) as ClaimedRow[];
    return rows.map(({ tenant, traceparent, ...r }) => ({ ...r, ...(tenant === null ? {} : { tenant }), ...(traceparent === null ? {} : { traceparent }), leaseToken }));
  }

  async recordCallbackAttempt(o: CallbackAttemptOutcome): Promise<boolean> {
    const now = Date.now();
    const result = this.statements.record.run({
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
    return this.statements.resend.run(Date.now(), webhookId).changes > 0;
  }

  async callbackDeliveries(predictionId: string): Promise<CallbackDeliveryView[]> {
    const rows = this.statements.list.all(predictionId) as DeliveryRow[];
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

  /** Deletes deliveries past the retention; returns how many went. */
  purge(now: number): number {
    return this.statements.purge.run(now).changes;
  }
}
