import { randomUUID } from 'node:crypto';
import type { OutgoingMessage } from '../../protocol/message.js';
import type { CallbackDeliveryView, CallbackEventName, PredictionRecord } from '../../protocol/prediction.js';
import { isTerminal, storeProgress, storeRank } from '../../protocol/prediction.js';
import { connectRedis, firstAttempt, type Redis } from '../../redis/connect.js';
import { parseRedisUrl, type RedisAddress } from '../../redis/redis-url.js';
import type { StreamView } from '../../redis/stream-view.js';
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
import { storeKeys, type StoreKeys } from './keys.js';
import { PubSubNotices } from './pubsub-notices.js';
import { RedisApiKeys } from './redis-api-keys.js';
import { RedisLimits } from './redis-limits.js';
import {
  claimCallbacksLua,
  claimKeyLua,
  enqueueCallbacksLua,
  listCallbacksLua,
  putRecordsLua,
  recordAttemptLua,
  releaseKeyLua,
  resendCallbackLua,
} from './scripts.js';
import { guarded } from './unavailable.js';

export interface RedisStoreOptions {
  /** `redis://host:port[/db]`. */
  readonly url: string;
  /** Put before every key and the notice channel (`spillway:`), so deployments may share a server. */
  readonly keyPrefix: string;
  readonly retentionMs: number;
  /** A command without a reply by then fails with SPILLWAY_STORE_UNAVAILABLE; default 5000. */
  readonly commandTimeoutMs?: number;
  /** How long `open` waits for a first connection before handing out a store that answers 503; default 2000. */
  readonly connectWaitMs?: number;
}

/** The scripts as ioredis commands (defineCommand adds them at run time; this names their types). */
interface ScriptCommands {
  spillwayPutRecords(...keysAndArgs: (string | number)[]): Promise<number[]>;
  spillwayClaimKey(key: string, value: string, retentionMs: number): Promise<string | null>;
  spillwayReleaseKey(key: string, id: string): Promise<number>;
  spillwayEnqueueCallbacks(...keysAndArgs: (string | number)[]): Promise<number>;
  spillwayClaimCallbacks(due: string, now: number, limit: number, leaseUntil: number, token: string, deliveryPrefix: string): Promise<(string | null)[]>;
  spillwayRecordAttempt(delivery: string, due: string, ...args: (string | number)[]): Promise<number>;
  spillwayResendCallback(delivery: string, due: string, webhookId: string, now: number): Promise<number>;
  spillwayListCallbacks(index: string, deliveryPrefix: string): Promise<(string | null)[]>;
}

type ScriptedRedis = Redis & ScriptCommands;

/** What an idempotency key holds: the claim that won it. */
interface HeldKey {
  readonly id: string;
  readonly fingerprint: string;
  readonly createdAt: string;
}

/**
 * A result store on Redis, shared by every gateway and dispatcher pointed at the same server and
 * prefix. Records, idempotency keys and deliveries expire by Redis TTL (PX / PEXPIRE with the
 * retention), so nothing sweeps; API keys never expire, and limits expire on their own terms
 * (redis-api-keys.ts, redis-limits.ts). Every check-then-write is one Lua script (scripts.ts). How
 * durable a write is is the server's setting: `appendfsync always` makes a write that resolved
 * survive a crash, as the SQLite store's terminal records do.
 */
export class RedisStore implements ResultStore {
  private readonly keys: StoreKeys;
  private readonly notices: StoredNotices;
  private readonly carrier: PubSubNotices;
  private readonly apiKeys: RedisApiKeys;
  private readonly limits: RedisLimits;

  /**
   * Opens a handle without requiring Redis to answer: a malformed URL throws at once, but a
   * server that is down gives a store whose operations fail with SPILLWAY_STORE_UNAVAILABLE
   * while the connection retries, as the brokers do.
   */
  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    const address = parseRedisUrl(options.url, 'store');
    const commandTimeoutMs = options.commandTimeoutMs ?? 5000;
    const redis = connectRedis(address, { name: 'spillway-store', commandTimeoutMs }) as ScriptedRedis;
    const store = new RedisStore(options, address, redis, commandTimeoutMs);
    await firstAttempt(redis, options.connectWaitMs ?? 2000);
    return store;
  }

  private constructor(
    private readonly options: RedisStoreOptions,
    private readonly address: RedisAddress,
    private readonly redis: ScriptedRedis,
    commandTimeoutMs: number,
  ) {
    // Reported through the operations that fail (503) and ping; without a listener ioredis
    // would print every failed reconnect.
    redis.on('error', () => {});
    redis.defineCommand('spillwayPutRecords', { lua: putRecordsLua });
    redis.defineCommand('spillwayClaimKey', { lua: claimKeyLua, numberOfKeys: 1 });
    redis.defineCommand('spillwayReleaseKey', { lua: releaseKeyLua, numberOfKeys: 1 });
    redis.defineCommand('spillwayEnqueueCallbacks', { lua: enqueueCallbacksLua, numberOfKeys: 1 });
    redis.defineCommand('spillwayClaimCallbacks', { lua: claimCallbacksLua, numberOfKeys: 1 });
    redis.defineCommand('spillwayRecordAttempt', { lua: recordAttemptLua, numberOfKeys: 2 });
    redis.defineCommand('spillwayResendCallback', { lua: resendCallbackLua, numberOfKeys: 2 });
    redis.defineCommand('spillwayListCallbacks', { lua: listCallbacksLua, numberOfKeys: 1, readOnly: true });
    this.keys = storeKeys(options.keyPrefix);
    this.apiKeys = new RedisApiKeys(redis, this.keys, options.url);
    this.limits = new RedisLimits(redis, this.keys, options.url);
    this.carrier = new PubSubNotices(redis, address, this.keys.notices, commandTimeoutMs);
    // Same server, db and channel → same BroadcastChannel, so this process's handles hear each other.
    this.notices = new StoredNotices(`spillway:stored:redis://${address.host}:${address.port}/${address.db}/${this.keys.notices}`, this.carrier);
  }

  private run<T>(operation: () => Promise<T>): Promise<T> {
    return guarded(this.options.url, operation);
  }

  async put(records: readonly PredictionRecord[]): Promise<readonly PredictionRecord[]> {
    if (records.length === 0) return [];
    const keys = records.map((r) => this.keys.record(r.id));
    const args = records.flatMap((r) => [storeRank(r), storeProgress(r), `${storeRank(r)} ${storeProgress(r)} ${JSON.stringify(r)}`]);
    // Number of keys first: the batch varies in size, so it is given per call.
    const written = await this.run(() => this.redis.spillwayPutRecords(keys.length, ...keys, this.options.retentionMs, ...args));
    return records.filter((_, i) => written[i] === 1);
  }

  /**
   * For a Redis broker on this server and database: its script that adds the response stream's
   * entries (and acks a worker's requests) first runs putRecordsLua over their records, so
   * result, ack and stored record are one step, and the store writer passes the marked entries
   * over. The final records written are announced once the script has run.
   */
  readonly recordsView = (topic: string): StreamView<OutgoingMessage> => ({
    kind: 'redis',
    topic,
    address: this.address,
    lua: putRecordsLua,
    write: (messages) => {
      const { records, marked } = viewRecords(messages);
      const keys = records.map(({ record }) => this.keys.record(record.id));
      const args = [this.options.retentionMs, ...records.flatMap(({ rank, progress, json }) => [rank, progress, `${rank} ${progress} ${json}`])];
      const committed = (reply: unknown) => {
        const written = Array.isArray(reply) ? reply : [];
        this.announceStored(records.filter(({ record }, i) => written[i] === 1 && isTerminal(record.status)).map(({ record }) => record));
      };
      return { keys, args, messages: marked, committed };
    },
  });

  async get(id: string): Promise<PredictionRecord | undefined> {
    const value = await this.run(() => this.redis.get(this.keys.record(id)));
    return value === null ? undefined : decodeStored(value);
  }

  announceStored(records: readonly PredictionRecord[]): void {
    this.notices.announce(records);
  }

  onStored(listener: (notice: StoredNotice) => void): () => void {
    return this.notices.listen(listener);
  }

  async claimIdempotencyKey(claim: IdempotencyKeyClaim): Promise<IdempotencyClaimResult> {
    const value: HeldKey = { id: claim.id, fingerprint: claim.fingerprint, createdAt: claim.createdAt };
    const holder = await this.run(() =>
      this.redis.spillwayClaimKey(this.keys.idempotencyKey(claim.key), JSON.stringify(value), this.options.retentionMs),
    );
    if (holder === null) return { claimed: true };
    const held = JSON.parse(holder) as HeldKey;
    return { claimed: false, id: held.id, fingerprint: held.fingerprint, createdAt: held.createdAt };
  }

  async releaseIdempotencyKey(key: string, id: string): Promise<void> {
    await this.run(() => this.redis.spillwayReleaseKey(this.keys.idempotencyKey(key), id));
  }

  async enqueueCallbacks(deliveries: readonly NewCallbackDelivery[]): Promise<number> {
    if (deliveries.length === 0) return 0;
    const { callbacksDue, deliveryPrefix, indexPrefix } = this.keys;
    const args = deliveries.flatMap((d) => [
      ...[d.webhookId, d.predictionId, d.event, d.url, d.body],
      ...[d.tenant === undefined ? 0 : 1, d.tenant ?? ''],
      ...[d.traceparent === undefined ? 0 : 1, d.traceparent ?? ''],
    ]);
    return this.run(() =>
      this.redis.spillwayEnqueueCallbacks(callbacksDue, Date.now(), this.options.retentionMs, deliveryPrefix, indexPrefix, ...args),
    );
  }

  async claimCallbacks(limit: number, leaseMs: number): Promise<ClaimedCallback[]> {
    if (limit <= 0) return [];
    const now = Date.now();
    const leaseToken = randomUUID();
    // At least 1 ms: a lease ending now would leave the delivery due within the same claim.
    const leaseUntil = now + Math.max(1, leaseMs);
    const flat = await this.run(() =>
      this.redis.spillwayClaimCallbacks(this.keys.callbacksDue, now, limit, leaseUntil, leaseToken, this.keys.deliveryPrefix),
    );
    const claimed: ClaimedCallback[] = [];
    for (let i = 0; i + 7 < flat.length; i += 8) {
      const tenant = flat[i + 6];
      const traceparent = flat[i + 7];
      claimed.push({
        webhookId: flat[i]!,
        predictionId: flat[i + 1]!,
        event: flat[i + 2] as CallbackEventName,
        url: flat[i + 3]!,
        body: flat[i + 4]!,
        attempts: Number(flat[i + 5]),
        ...(tenant == null ? {} : { tenant }),
        ...(traceparent == null ? {} : { traceparent }),
        leaseToken,
      });
    }
    return claimed;
  }

  async recordCallbackAttempt(o: CallbackAttemptOutcome): Promise<boolean> {
    const now = Date.now();
    const outcome = [
      ...(o.status === undefined ? [] : ['last_status', o.status]),
      ...(o.error === undefined ? [] : ['last_error', o.error]),
      ...(o.state === 'delivered' ? ['delivered_at', now] : []),
    ];
    const nextAttemptAt = o.state === 'pending' ? (o.nextAttemptAt ?? now) : now;
    const recorded = await this.run(() =>
      this.redis.spillwayRecordAttempt(this.keys.deliveryPrefix + o.webhookId, this.keys.callbacksDue, o.webhookId, o.leaseToken, o.state, nextAttemptAt, ...outcome),
    );
    return recorded === 1;
  }

  async resendCallback(webhookId: string): Promise<boolean> {
    const resent = await this.run(() =>
      this.redis.spillwayResendCallback(this.keys.deliveryPrefix + webhookId, this.keys.callbacksDue, webhookId, Date.now()),
    );
    return resent === 1;
  }

  async callbackDeliveries(predictionId: string): Promise<CallbackDeliveryView[]> {
    const flat = await this.run(() => this.redis.spillwayListCallbacks(this.keys.indexPrefix + predictionId, this.keys.deliveryPrefix));
    const views: CallbackDeliveryView[] = [];
    for (let i = 0; i + 7 < flat.length; i += 8) {
      const [webhookId, event, state, attempts, lastStatus, lastError, deliveredAt, nextAttemptAt] = flat.slice(i, i + 8);
      const viewState = state as CallbackDeliveryView['state'];
      views.push({
        event: event as CallbackEventName,
        webhook_id: webhookId!,
        state: viewState,
        attempts: Number(attempts),
        ...(lastStatus == null ? {} : { last_status: Number(lastStatus) }),
        ...(lastError == null ? {} : { last_error: lastError }),
        ...(deliveredAt == null ? {} : { delivered_at: new Date(Number(deliveredAt)).toISOString() }),
        ...(viewState === 'pending' ? { next_attempt_at: new Date(Number(nextAttemptAt)).toISOString() } : {}),
      });
    }
    return views;
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

  takeTokens(buckets: readonly RateBucket[]): Promise<RateDecision> {
    return this.limits.takeTokens(buckets);
  }

  joinCapped(set: string, member: string, cap: number, expiresAt: number): Promise<{ readonly joined: boolean; readonly size: number }> {
    return this.limits.joinCapped(set, member, cap, expiresAt);
  }

  leaveCapped(set: string, members: readonly string[]): Promise<void> {
    return this.limits.leaveCapped(set, members);
  }

  async ping(): Promise<void> {
    await this.run(async () => {
      await this.redis.ping();
      await this.carrier.subscribed();
    });
  }

  async close(): Promise<void> {
    this.notices.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** A stored value: `<rank> <progress> <record JSON>` (see putRecordsLua). */
function decodeStored(value: string): PredictionRecord {
  const start = value.indexOf(' ', value.indexOf(' ') + 1) + 1;
  return JSON.parse(value.slice(start)) as PredictionRecord;
}
