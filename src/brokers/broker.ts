import type { OutgoingMessage } from '../protocol/message.js';

/**
 * The broker: topics that many consumer groups read independently. This is the whole contract
 * every adapter (embedded, kafka, redis) keeps; test/brokers/conformance.ts checks it.
 */

export interface Delivery {
  readonly topic: string;
  /** Opaque position of the message in its topic, stable across redeliveries. */
  readonly position: string;
  readonly key: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly value: string;
  /** 1 on the first delivery to this group; one more each time it is delivered again. */
  readonly attempt: number;
  /** When the broker accepted the message (epoch ms). */
  readonly publishedAt: number;
  /** Done: the group never sees this message again. */
  ack(): Promise<void>;
  /** Not done: deliver it again to this group (attempt + 1), no sooner than `delayMs` from now. */
  nack(delayMs?: number): Promise<void>;
}

export interface SubscribeOptions {
  readonly topic: string;
  readonly group: string;
  /** Where a group that has never read this topic starts. Default `earliest`. */
  readonly from?: 'earliest' | 'latest';
  /**
   * How long a taken message stays leased to this subscriber after its process stops renewing
   * it (a crash). Past that it is delivered again to the group. Adapter default when omitted.
   */
  readonly leaseMs?: number;
  /** The group belongs to this subscriber alone and is removed when it closes (or dies). */
  readonly ephemeral?: boolean;
  /**
   * One subscriber at a time reads this group, or several whose handling is idempotent (an
   * analytics tap, the store writer, the callback dispatcher). An adapter may then keep its
   * leases in memory and save its position only now and then, so reading writes nothing serving
   * waits on; a restart takes again what came after the last saved position, with attempt 1.
   * Two live subscribers of such a group may both see a message.
   */
  readonly soleReader?: boolean;
}

export interface TakeOptions {
  /** Give up and return [] after this long without a message. Default: wait until one comes. */
  readonly timeoutMs?: number;
  /** Aborting returns [] at once; nothing is taken. */
  readonly signal?: AbortSignal;
}

export interface Subscription {
  /**
   * Lease up to `max` messages. Resolves as soon as at least one is available, with as many as
   * are available at that moment (at most `max`). A subscriber that only calls take() when it
   * has free capacity therefore never holds more work than it can run.
   */
  take(max: number, options?: TakeOptions): Promise<Delivery[]>;
  /**
   * Stop; messages leased and not acked go back to the group. A take waiting then returns [];
   * a take begun afterwards rejects with SubscriptionClosedError, so a reader loop that outlives
   * its subscription backs off on an error instead of spinning on empty takes.
   */
  close(): Promise<void>;
}

export class SubscriptionClosedError extends Error {
  constructor() {
    super('subscription closed');
    this.name = 'SubscriptionClosedError';
  }
}

export interface TopicOptions {
  /**
   * Messages older than this may be dropped even if a group has not read them. For streams whose
   * old entries lose their meaning (heartbeats); request topics keep the default: until read.
   * Messages younger than this are kept even once every group has read them, so a subscriber that
   * joins later `from: 'earliest'` sees them (the control topic relies on it).
   */
  readonly retentionMs?: number;
}

/**
 * A group's queue on one topic, as an autoscaler reads it. Figures are the broker's own, so they
 * hold for the whole deployment, not for the process that asks.
 */
export interface QueueStats {
  /**
   * Messages the group has not acked and nobody holds: never taken, nacked, or left by a
   * subscriber whose lease ran out. Where `leased` is null this is everything not acked.
   */
  readonly waiting: number;
  /** Taken by a live subscriber and not acked yet; null where the broker cannot tell taken from waiting. */
  readonly leased: number | null;
  /** When the broker accepted the oldest message counted in `waiting` (epoch ms); null if none. */
  readonly oldestWaitingPublishedAt: number | null;
}

/** Where one message stands in its group's queue, as `Broker.positionOf` finds it. */
export interface QueuePlace {
  /** Messages of the group waiting to be taken that were published before this one: 0 is next. */
  readonly ahead: number;
  /** True when `ahead` is the broker's own count at one instant; false when it is an estimate. */
  readonly exact: boolean;
}

export interface Broker {
  /** The largest message value (UTF-8 bytes) the broker accepts; larger ones must not be published. */
  readonly maxMessageBytes: number;
  /** Creates the topic with these settings if it does not exist; idempotent. */
  ensureTopic(topic: string, options?: TopicOptions): Promise<void>;
  /**
   * Resolves only once every message is durably stored by the broker; rejects otherwise. It
   * resolves with each message's position, in order, as its Delivery will show it (undefined for
   * one the adapter could not learn), so a publisher can later ask `positionOf` about it.
   */
  publish(topic: string, messages: readonly OutgoingMessage[]): Promise<readonly (string | undefined)[]>;
  /**
   * A worker's hand-off: publishes `messages` (its results) and acks `deliveries` (the requests
   * they answer, taken from this broker). Resolves once both are durable. Where the adapter can,
   * they commit as one, so either both happen or neither: a crash can then never leave a result
   * published and its request to be run again. Elsewhere it publishes, then acks (a crash in
   * between runs the request again, which at-least-once processing allows).
   */
  publishAndAck(topic: string, messages: readonly OutgoingMessage[], deliveries: readonly Delivery[]): Promise<void>;
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  /** Messages of `topic` the group has not acked yet: waiting plus leased. */
  backlog(topic: string, group: string): Promise<number>;
  /** The same backlog split into waiting and leased, with the oldest waiting message's age. */
  queueStats(topic: string, group: string): Promise<QueueStats>;
  /**
   * How many messages wait ahead of the one at `position` for `group`: those published before it
   * that the group has neither acked nor has a live subscriber holding. Null once the message is
   * taken (held or acked) or when the broker does not know it. Messages a group takes back (nacked,
   * or left by a dead subscriber) count as waiting again.
   */
  positionOf(topic: string, group: string, position: string): Promise<QueuePlace | null>;
  /** Cheap reachability check for readiness probes; rejects when the broker is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** `publishAndAck` for an adapter that cannot commit the two as one: the publish, then the acks. */
export async function publishThenAck(broker: Broker, topic: string, messages: readonly OutgoingMessage[], deliveries: readonly Delivery[]): Promise<void> {
  if (messages.length > 0) await broker.publish(topic, messages);
  await Promise.all(deliveries.map((d) => d.ack()));
}
