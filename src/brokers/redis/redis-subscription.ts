import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { SubscriptionClosedError, type Delivery, type SubscribeOptions, type Subscription, type TakeOptions } from '../broker.js';
import { HeldEntries } from './held-entries.js';
import { deleteIdleConsumerScript } from './lua-scripts.js';
import { aliveKey, consumerName, redisGroupName, streamKey } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';
import { autoClaimReply, deliveryCountReply, readGroupReply, type StreamEntry } from './stream-replies.js';

export interface SubscriptionContext {
  /** The broker's shared connection: acks, renewals, CLIENT UNBLOCK, group admin. */
  readonly commands: RedisLink;
  /** This subscription's own connection: a connection blocked in XREADGROUP serves nothing else. */
  readonly reader: RedisLink;
  readonly leaseMs: number;
  /** Whether acks should also delete entries every group has acked (XACKDEL … ACKED, Redis 8.2+). */
  readonly ackDeletes: boolean;
  readonly logger?: Logger;
  readonly onClose: () => void;
}

/** The subscription and entry id behind each delivery, for a hand-off that acks it in its own script. */
const entries = new WeakMap<Delivery, { readonly subscription: RedisSubscription; readonly id: string }>();

/** The subscription holding `delivery` and its entry id, when it is a subscription on `commands`. */
export function heldEntryOf(delivery: Delivery, commands: RedisLink): { readonly subscription: RedisSubscription; readonly id: string } | undefined {
  const held = entries.get(delivery);
  return held?.subscription.sharesLink(commands) === true ? held : undefined;
}

/**
 * One consumer of a Redis consumer group.
 *
 * take(max): first XAUTOCLAIM up to `max` entries idle past the lease (a dead or closed
 * consumer's, or nacked ones whose delay is over), with their delivery counts from XPENDING;
 * only if there are none, XREADGROUP COUNT max `>` for new ones (attempt 1). So a caller never
 * holds more than it asked for.
 *
 * Waiting is an XREADGROUP BLOCK of a bounded slice, so reclaims are looked for again at least
 * every slice. An abort or close ends a blocked read at once with CLIENT UNBLOCK from the other
 * connection, rather than by disconnecting: a disconnect can lose a reply already on its way,
 * leaving entries pending to us that nobody hands out until the lease runs out. A reply that
 * still arrives after an abort is kept and handed out by the next take.
 */
export class RedisSubscription implements Subscription {
  private readonly key: string;
  private readonly group: string;
  private readonly consumer = consumerName();
  private readonly held: HeldEntries;
  private readonly closing = new AbortController();
  private readonly sliceMs: number;
  /** Read but not handed out (the take was aborted meanwhile). */
  private readonly ready: Delivery[] = [];
  private inflight: Promise<void> | undefined;
  private readerId: number | undefined;
  private blocked = false;
  private cursor = '0-0';
  /** When take next looks for reclaimable entries (0: at once). */
  private reclaimDueAt = 0;
  /** Acks asked for in this turn of the event loop: sent as one XACK. */
  private acks: { id: string; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private readonly alive: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly c: SubscriptionContext,
    private readonly options: SubscribeOptions,
  ) {
    this.key = streamKey(options.topic);
    this.group = redisGroupName(options.group, options.ephemeral === true);
    this.sliceMs = Math.min(2000, Math.max(50, Math.floor(c.leaseMs / 2)));
    this.held = new HeldEntries({
      key: this.key,
      group: this.group,
      consumer: this.consumer,
      leaseMs: c.leaseMs,
      attempt: (step) => c.commands.attempt(step),
      wake: () => {
        this.reclaimDueAt = 0;
        this.unblock();
      },
    });
    if (options.ephemeral === true) {
      // The group's own lease: renewed like the entries', gone a lease after this process dies.
      this.alive = setInterval(() => void this.markAlive().catch(() => undefined), Math.max(20, Math.floor(c.leaseMs / 3)));
      this.alive.unref();
    }
    c.reader.redis.on('ready', () => void this.learnReaderId());
  }

  /** Creates the group if needed; rejects (SPILLWAY_BROKER_UNAVAILABLE) while Redis is down. */
  async start(): Promise<void> {
    await this.c.commands.run('create the consumer group', async () => {
      if (this.options.ephemeral === true) await this.markAlive();
      await this.createGroup();
    });
    await this.learnReaderId();
  }

  take(max: number, options: TakeOptions = {}): Promise<Delivery[]> {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`take(max) needs a positive integer, got ${max}`);
    if (this.closed) return Promise.reject(new SubscriptionClosedError());
    return this.takeUntil(max, options);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    clearInterval(this.alive);
    this.unblock();
    await this.inflight;
    try {
      await this.c.commands.attempt(async (r) => {
        if (this.options.ephemeral === true) {
          this.held.stop();
          await r.multi().call('XGROUP', 'DESTROY', this.key, this.group).del(aliveKey(this.options.topic, this.group)).exec();
        } else {
          await this.held.handBack();
          await r.eval(deleteIdleConsumerScript, 1, this.key, this.group, this.consumer);
        }
      });
    } catch (error) {
      // Redis is down: what this consumer held comes back to the group a lease from now.
      this.held.stop();
      this.c.logger?.debug({ err: error, topic: this.options.topic }, 'Redis subscription closed without handing back');
    }
    this.c.reader.close();
    this.c.onClose();
  }

  private async takeUntil(max: number, options: TakeOptions): Promise<Delivery[]> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    const signal = AbortSignal.any([options.signal, this.closing.signal].filter((s): s is AbortSignal => s !== undefined));
    const onAbort = () => this.unblock();
    signal.addEventListener('abort', onAbort, { once: true });
    const stop = new Promise<undefined>((resolve) => signal.addEventListener('abort', () => resolve(undefined), { once: true }));
    try {
      let failures = 0;
      for (;;) {
        await this.inflight;
        if (signal.aborted) return [];
        if (this.ready.length > 0) return this.ready.splice(0, max);
        let got: Delivery[] = [];
        try {
          const fetched = this.fetch(max, deadline - Date.now());
          this.inflight = fetched.then(
            () => undefined,
            () => undefined,
          );
          const first = await Promise.race([fetched, stop]);
          if (first === undefined || signal.aborted) {
            // Aborted: return at once; whatever the read still brings waits for the next take.
            this.inflight = fetched.then(
              (ds) => void this.ready.push(...ds),
              () => undefined,
            );
            return [];
          }
          got = first;
          failures = 0;
        } catch (error) {
          // Redis down or restarting: keep trying quietly until the caller's timeout, as the
          // Kafka subscription does; a group lost with a restart without AOF is made again.
          failures += 1;
          this.c.logger?.debug({ err: error, topic: this.options.topic, group: this.options.group }, 'Redis read failed; retrying');
          if (/NOGROUP/.test(String(error))) await this.createGroup().catch(() => undefined);
          const pause = Math.min(1000, 25 * 2 ** failures, Math.max(0, deadline - Date.now()));
          await sleep(pause, undefined, { signal }).catch(() => undefined);
        }
        if (got.length > 0) return got;
        if (deadline - Date.now() <= 0) return [];
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Reclaimed entries if any are due, else new ones, waiting at most one slice. Reclaims are
   * looked for once a slice, not on every take: an entry becomes reclaimable only a lease after
   * its holder stopped, so looking more often finds nothing and costs a round trip (or four) per
   * take. A nack of this consumer's, once its delay is over, makes the next take look at once.
   */
  private async fetch(max: number, remaining: number): Promise<Delivery[]> {
    if (Date.now() >= this.reclaimDueAt) {
      const reclaimed = await this.reclaim(max);
      // A full take, or a scan cut short, may have left more: look again next time.
      this.reclaimDueAt = reclaimed.length === max || this.cursor !== '0-0' ? 0 : Date.now() + this.sliceMs;
      if (reclaimed.length > 0) return reclaimed;
    }
    const block = Math.min(remaining, this.sliceMs);
    const wait = block >= 1 ? ['BLOCK', Math.floor(block)] : [];
    this.blocked = block >= 1;
    try {
      const reply = await this.c.reader.attempt((r) =>
        r.call('XREADGROUP', 'GROUP', this.group, this.consumer, 'COUNT', max, ...wait, 'STREAMS', this.key, '>'),
      );
      const entries = readGroupReply(reply);
      this.held.add(entries.map((e) => e.id));
      return entries.map((e) => this.delivery(e, 1));
    } finally {
      this.blocked = false;
    }
  }

  /** XAUTOCLAIM walks the pending list from a cursor; a few steps per take, so no scan is long. */
  private async reclaim(max: number): Promise<Delivery[]> {
    const out: Delivery[] = [];
    for (let step = 0; step < 4 && out.length < max; step++) {
      const reply = autoClaimReply(
        await this.c.reader.attempt((r) =>
          r.call('XAUTOCLAIM', this.key, this.group, this.consumer, this.c.leaseMs, this.cursor, 'COUNT', max - out.length),
        ),
      );
      this.cursor = reply.cursor;
      // Entries trimmed or deleted while pending: Redis 7 already drops them from the pending
      // list as it reports them; the XACK makes sure on any version that they never come back.
      if (reply.deleted.length > 0) await this.c.reader.attempt((r) => r.call('XACK', this.key, this.group, ...reply.deleted));
      if (reply.claimed.length > 0) {
        this.held.add(reply.claimed.map((e) => e.id));
        const counts = await this.deliveryCounts(reply.claimed);
        reply.claimed.forEach((entry, i) => {
          const count = counts[i];
          if (count === undefined) this.held.forget(entry.id);
          else out.push(this.delivery(entry, count));
        });
      }
      if (reply.cursor === '0-0') break;
    }
    return out;
  }

  /** The pending list's times-delivered, which XAUTOCLAIM has just raised by one: the attempt. */
  private async deliveryCounts(entries: readonly StreamEntry[]): Promise<(number | undefined)[]> {
    const results = await this.c.reader.attempt(async (r) => {
      const pipeline = r.pipeline();
      for (const e of entries) pipeline.call('XPENDING', this.key, this.group, e.id, e.id, 1);
      return (await pipeline.exec()) ?? [];
    });
    return results.map(([error, reply]) => (error === null ? deliveryCountReply(reply) : undefined));
  }

  sharesLink(commands: RedisLink): boolean {
    return this.c.commands === commands;
  }

  /** Where this subscription's acks go, for a script of the broker's (a worker's hand-off). */
  get ackTarget(): { readonly key: string; readonly group: string; readonly deletes: boolean } {
    return { key: this.key, group: this.group, deletes: this.c.ackDeletes };
  }

  /** What a hand-off acked is no longer held: nothing renews or returns it. */
  handedOff(ids: readonly string[]): void {
    for (const id of ids) this.held.forget(id);
  }

  private delivery(entry: StreamEntry, attempt: number): Delivery {
    const headers = entry.fields.get('headers');
    const delivery: Delivery = {
      topic: this.options.topic,
      position: entry.id,
      key: entry.fields.get('key'),
      headers: headers === undefined ? {} : (JSON.parse(headers) as Record<string, string>),
      value: entry.fields.get('value') ?? '',
      attempt,
      publishedAt: Number(entry.id.split('-')[0]),
      ack: () => this.ack(entry.id),
      nack: (delayMs = 0) => this.held.nack(entry.id, delayMs),
    };
    entries.set(delivery, { subscription: this, id: entry.id });
    return delivery;
  }

  /**
   * Acks asked for together (a worker acks a whole batch at once) go as one XACK of many ids,
   * sent once the current microtasks have run; each caller learns that command's fate.
   */
  private ack(id: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.acks.push({ id, resolve, reject });
      if (this.acks.length === 1) queueMicrotask(() => void this.flushAcks());
    });
  }

  private async flushAcks(): Promise<void> {
    const batch = this.acks;
    this.acks = [];
    const ids = batch.map((a) => a.id);
    try {
      await this.c.commands.run('acknowledge messages', (r) =>
        this.c.ackDeletes
          ? r.call('XACKDEL', this.key, this.group, 'ACKED', 'IDS', ids.length, ...ids)
          : r.call('XACK', this.key, this.group, ...ids),
      );
      for (const a of batch) {
        this.held.forget(a.id);
        a.resolve();
      }
    } catch (error) {
      for (const a of batch) a.reject(error);
    }
  }

  private async createGroup(): Promise<void> {
    try {
      await this.c.commands.attempt((r) =>
        r.call('XGROUP', 'CREATE', this.key, this.group, this.options.from === 'latest' ? '$' : '0', 'MKSTREAM'),
      );
    } catch (error) {
      if (!/BUSYGROUP/.test(String(error))) throw error;
    }
  }

  private async markAlive(): Promise<void> {
    await this.c.commands.attempt((r) => r.set(aliveKey(this.options.topic, this.group), this.consumer, 'PX', this.c.leaseMs));
  }

  private async learnReaderId(): Promise<void> {
    try {
      const id = await this.c.reader.attempt((r) => r.call('CLIENT', 'ID'));
      this.readerId = typeof id === 'number' ? id : undefined;
    } catch {
      this.readerId = undefined;
    }
  }

  /** Ends a blocked XREADGROUP now, as if its BLOCK had timed out. */
  private unblock(): void {
    if (!this.blocked || this.readerId === undefined) return;
    this.c.commands.redis.call('CLIENT', 'UNBLOCK', this.readerId).catch(() => undefined);
  }
}
