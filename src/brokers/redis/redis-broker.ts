import type { Logger } from 'pino';
import { SpillwayError } from '../../protocol/errors.js';
import type { OutgoingMessage } from '../../protocol/message.js';
import type { Redis } from '../../redis/connect.js';
import { parseRedisUrl, type RedisAddress } from '../../redis/redis-url.js';
import type { StreamView } from '../../redis/stream-view.js';
import type { Broker, Delivery, QueuePlace, QueueStats, SubscribeOptions, Subscription, TopicOptions } from '../broker.js';
import { groupBacklog, groupQueuePlace, groupQueueStats } from './backlog.js';
import { streamKey, topicsKey } from './redis-keys.js';
import { RedisLink } from './redis-link.js';
import { TickBatcher } from '../tick-batcher.js';
import { heldEntryOf, RedisSubscription } from './redis-subscription.js';
import { handOffScript, viewedHandOffScript } from './lua-scripts.js';
import { destroyAbandonedGroups, pruneDeadConsumers, Trimmer } from './trimmer.js';

export interface RedisBrokerOptions {
  readonly address: RedisAddress;
  /** Default lease of a taken entry (SubscribeOptions.leaseMs overrides it). */
  readonly leaseMs: number;
  readonly maxMessageBytes: number;
  /** How often a publisher trims a topic it publishes to. */
  readonly trimEveryMs?: number;
  /** How old an entry every group has acked must be before trimming drops it (topics without a retention). */
  readonly trimGraceMs?: number;
  /** How long a call waits for a connection that is not ready before it fails with 503. */
  readonly readyWaitMs?: number;
  /** Keys kept in step with a topic (a result store on this server); a view of another server is passed over. */
  readonly views?: readonly StreamView<OutgoingMessage>[];
  readonly logger?: Logger;
}

/** Same as Kafka's default limit, so a deployment can move between the two without surprises. */
export const defaultRedisMaxMessageBytes = 1_000_000;

/** How long a topic's retention, once read, is trusted before it is read again. */
const retentionCacheMs = 10_000;

/**
 * Most keys and args a view may add to one script call: Lua's unpack, which hands the view its
 * own, has a bounded stack. A larger call goes without the view (its entries unmarked, so the
 * store writer copies them).
 */
const maxViewArgs = 4000;

const sameServer = (a: RedisAddress, b: RedisAddress) => a.host === b.host && a.port === b.port && a.db === b.db;

export function openRedisBroker(url: string, options: Omit<RedisBrokerOptions, 'address'>): RedisBroker {
  return new RedisBroker({ ...options, address: parseRedisUrl(url, 'broker') });
}

/** A message as an XADD's fields. */
function fieldsOf(m: OutgoingMessage): string[] {
  const fields = ['value', m.value];
  if (m.key !== undefined) fields.push('key', m.key);
  if (m.headers !== undefined) fields.push('headers', JSON.stringify(m.headers));
  return fields;
}

/**
 * Spillway on Redis Streams: one stream per topic, one Redis consumer group per Spillway group,
 * one consumer per subscription (see RedisSubscription for take, leases and attempts, Trimmer
 * for what is dropped when). Entries are plain fields (value, key, headers as JSON), so any
 * Redis client can read or write the streams.
 */
export class RedisBroker implements Broker {
  readonly maxMessageBytes: number;
  private readonly commands: RedisLink;
  /**
   * Every publish and hand-off, in the order they were asked for (a worker's `running` record
   * must not land after its result): one command each, those of a turn of the event loop sent as
   * one pipeline, so one socket write carries many gateways' submits.
   */
  private readonly writes: TickBatcher<{ readonly command: string; readonly args: readonly (string | number)[] }, unknown>;
  private readonly trimmer: Trimmer;
  private readonly subscriptions = new Set<Subscription>();
  private readonly retentions = new Map<string, { value: number | undefined; at: number }>();
  private ackDelete: Promise<boolean> | undefined;
  private closed = false;
  /** Each viewed topic's view, and the hand-off script that runs it first. */
  private readonly views: ReadonlyMap<string, { readonly view: StreamView<OutgoingMessage>; readonly script: string }>;

  constructor(private readonly o: RedisBrokerOptions) {
    this.maxMessageBytes = o.maxMessageBytes;
    this.views = new Map(
      (o.views ?? []).filter((view) => sameServer(view.address, o.address)).map((view) => [view.topic, { view, script: viewedHandOffScript(view.lua) }]),
    );
    this.commands = new RedisLink(o.address, 'spillway-broker', o.readyWaitMs ?? 1000);
    this.writes = new TickBatcher(async (writes) => {
      const pipeline = this.commands.redis.pipeline();
      for (const { command, args } of writes) pipeline.call(command, ...args);
      const replies = (await pipeline.exec()) ?? [];
      return writes.map((_write, i) => {
        const [error, reply] = replies[i] ?? [new Error('no reply'), undefined];
        return error ?? reply;
      });
    });
    this.trimmer = new Trimmer(o.trimEveryMs ?? 1000, o.trimGraceMs ?? 60_000);
  }

  async ensureTopic(topic: string, options: TopicOptions = {}): Promise<void> {
    const retention = options.retentionMs;
    await this.commands.run('create a topic', (r) =>
      retention === undefined ? r.hsetnx(topicsKey, topic, '') : r.hset(topicsKey, topic, String(retention)),
    );
    this.retentions.set(topic, { value: retention, at: Date.now() });
  }

  /**
   * One script (handOffScript): the XADDs of the results, then the acks of the requests, run by
   * Redis as one step and written to the AOF as one transaction, so with `appendfsync always`
   * the worker pays one round trip and one fsync where it paid two. A delivery of another
   * broker's subscription is acked on its own after.
   */
  async publishAndAck(topic: string, messages: readonly OutgoingMessage[], deliveries: readonly Delivery[]): Promise<void> {
    if (this.closed) throw new Error('broker is closed');
    this.checkSizes(messages);
    const acks = new Map<RedisSubscription, string[]>();
    const others: Delivery[] = [];
    for (const delivery of deliveries) {
      const held = heldEntryOf(delivery, this.commands);
      if (held === undefined) others.push(delivery);
      else if (acks.has(held.subscription)) acks.get(held.subscription)!.push(held.id);
      else acks.set(held.subscription, [held.id]);
    }
    if (messages.length + acks.size > 0) {
      await this.handOff('hand off results', topic, messages, acks);
      for (const [subscription, ids] of acks) subscription.handedOff(ids);
      if (messages.length > 0) this.trimIfDue(topic);
    }
    await Promise.all(others.map((d) => d.ack()));
  }

  /**
   * One message is one XADD (every gateway submit), several one script (handOffScript with no
   * acks), so a call's messages go in together. It resolves once Redis has replied; with
   * `appendonly yes` and `appendfsync always` (how Spillway's Redis is meant to run) Redis
   * replies only after the AOF write is fsynced, which is what makes it durable.
   */
  async publish(topic: string, messages: readonly OutgoingMessage[]): Promise<readonly (string | undefined)[]> {
    if (this.closed) throw new Error('broker is closed');
    this.checkSizes(messages);
    const added =
      messages.length === 1 && !this.views.has(topic)
        ? [await this.write('store a message', 'XADD', [streamKey(topic), '*', ...fieldsOf(messages[0]!)])]
        : await this.handOff('store messages', topic, messages, new Map());
    this.trimIfDue(topic);
    // XADD answers the entry's id, which is its position.
    const ids = Array.isArray(added) ? (added as unknown[]) : [];
    return messages.map((_message, i) => {
      const id = ids[i];
      return typeof id === 'string' ? id : Buffer.isBuffer(id) ? id.toString('utf8') : undefined;
    });
  }

  /**
   * handOffScript: `messages` added to `topic`, then each subscription's `acks`; answers the ids
   * added. On a topic with a view, viewedHandOffScript: the view's chunk first, in the same step.
   */
  private async handOff(what: string, topic: string, messages: readonly OutgoingMessage[], acks: ReadonlyMap<RedisSubscription, readonly string[]>): Promise<unknown> {
    const viewed = messages.length === 0 ? undefined : this.views.get(topic);
    const update = viewed?.view.write(messages);
    const view = update !== undefined && update.keys.length + update.args.length <= maxViewArgs ? update : undefined;
    const added = view?.messages ?? messages;
    const keys = [...(view?.keys ?? []), streamKey(topic)];
    const args = view === undefined ? [] : [view.keys.length, view.args.length, ...view.args];
    args.push(added.length);
    for (const message of added) {
      const fields = fieldsOf(message);
      args.push(fields.length, ...fields);
    }
    for (const [subscription, ids] of acks) {
      const { key, group, deletes } = subscription.ackTarget;
      keys.push(key);
      args.push(group, deletes ? '1' : '0', ids.length, ...ids);
    }
    const script = view === undefined ? handOffScript : viewed!.script;
    const reply = await this.write(what, 'EVAL', [script, keys.length, ...keys, ...args]);
    if (view === undefined) return reply;
    const [ids, viewReply] = Array.isArray(reply) ? (reply as unknown[]) : [];
    view.committed(viewReply);
    return ids;
  }

  /** One command, in order with every other write of this broker; an error reply rejects. */
  private write(what: string, command: string, args: readonly (string | number)[]): Promise<unknown> {
    return this.commands.run(what, async () => {
      const [reply] = await this.writes.submit([{ command, args }]);
      if (reply instanceof Error) throw reply;
      return reply;
    });
  }

  /** One message over the size limit refuses the whole call. */
  private checkSizes(messages: readonly OutgoingMessage[]): void {
    for (const m of messages) {
      if (Buffer.byteLength(m.value) > this.maxMessageBytes) {
        throw new SpillwayError('SPILLWAY_BODY_TOO_LARGE', `a message is over the queue's limit of ${this.maxMessageBytes} bytes`);
      }
    }
  }

  private trimIfDue(topic: string): void {
    if (this.trimmer.due(topic)) void this.trim(topic).catch((error: unknown) => this.o.logger?.debug({ err: error, topic }, 'Redis trim failed'));
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new Error('broker is closed');
    const [ackDeletes, retention] = await this.commands.run('subscribe', async (r) => {
      await destroyAbandonedGroups(r, options.topic);
      // Subscribing is rare (process start, reconnect), so the heavier sweep runs here.
      await pruneDeadConsumers(r, options.topic);
      return Promise.all([this.supportsAckDelete(r), this.retentionOf(r, options.topic)]);
    });
    const reader = new RedisLink(this.o.address, 'spillway-reader', this.o.readyWaitMs ?? 1000);
    const subscription = new RedisSubscription(
      {
        commands: this.commands,
        reader,
        leaseMs: options.leaseMs ?? this.o.leaseMs,
        // Acks delete only where nothing else keeps entries: a retention topic keeps read ones.
        ackDeletes: ackDeletes && retention === undefined,
        ...(this.o.logger === undefined ? {} : { logger: this.o.logger }),
        onClose: () => this.subscriptions.delete(subscription),
      },
      options,
    );
    try {
      await subscription.start();
    } catch (error) {
      reader.close();
      throw error;
    }
    this.subscriptions.add(subscription);
    return subscription;
  }

  backlog(topic: string, group: string): Promise<number> {
    return this.commands.run('count a backlog', (r) => groupBacklog(r, topic, group));
  }

  queueStats(topic: string, group: string): Promise<QueueStats> {
    return this.commands.run('read queue stats', (r) => groupQueueStats(r, topic, group, this.o.leaseMs));
  }

  /** See queuePlaceScript: exact unless more than `placeCountCap` entries are ahead. */
  positionOf(topic: string, group: string, position: string): Promise<QueuePlace | null> {
    if (!/^\d+-\d+$/.test(position)) return Promise.resolve(null);
    return this.commands.run('find a queue position', (r) => groupQueuePlace(r, topic, group, position, this.o.leaseMs));
  }

  async ping(): Promise<void> {
    await this.commands.run('answer a ping', (r) => r.ping());
  }

  /** Trims one topic now (publishers do it on their own; exposed for tests and tools). */
  trim(topic: string, now = Date.now()): Promise<number> {
    return this.commands.run('trim a stream', async (r) => this.trimmer.trim(r, topic, await this.retentionOf(r, topic), now));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.commands.close();
  }

  private async retentionOf(redis: Redis, topic: string): Promise<number | undefined> {
    const cached = this.retentions.get(topic);
    if (cached !== undefined && Date.now() - cached.at < retentionCacheMs) return cached.value;
    const raw = await redis.hget(topicsKey, topic);
    const value = raw === null || raw === '' ? undefined : Number(raw);
    this.retentions.set(topic, { value, at: Date.now() });
    return value;
  }

  /**
   * Redis 8.2 added XACKDEL, whose ACKED mode deletes an entry once no group needs it. Asked
   * once per broker: COMMAND INFO answers nil for a command the server does not know.
   */
  private supportsAckDelete(redis: Redis): Promise<boolean> {
    this.ackDelete ??= redis.call('COMMAND', 'INFO', 'XACKDEL').then((reply) => Array.isArray(reply) && reply[0] !== null && reply[0] !== undefined);
    this.ackDelete.catch(() => (this.ackDelete = undefined));
    return this.ackDelete;
  }
}

