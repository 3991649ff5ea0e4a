import { Admin, Producer, ProduceAcks, stringSerializers } from '@platformatic/kafka';
import type { OutgoingMessage } from '../../protocol/message.js';
import { publishThenAck, type Broker, type Delivery, type QueuePlace, type QueueStats, type SubscribeOptions, type Subscription, type TopicOptions } from '../broker.js';
import { ProducedPositions } from './produced-positions.js';
import { TickBatcher } from '../tick-batcher.js';
// Before any client is made: fixes to the client that keep a broker restart from ending the process.
import './kafka-client-fixes.js';
import { KafkaSubscription } from './kafka-subscription.js';
import { kafkaGroupId, type KafkaBrokerOptions } from './kafka-options.js';
import { KafkaQueueStats } from './queue-stats.js';

/** Longest a produce request may go unanswered before it is given up (and retried by the caller). */
const sendTimeoutMs = 10_000;

type ProducedMessage = { topic: string; key?: string; value: string; headers?: Record<string, string> };

const topicAlreadyExists = 36;

/**
 * Spillway on Apache Kafka. Requests and results are ordinary Kafka records (JSON values,
 * id headers), so any Kafka client can read or write the topics.
 *
 * - Publishing uses an idempotent producer with acks=all, and one produce request carries
 *   everything published in the same event-loop turn.
 * - Each subscription is a consumer in the group; Kafka's partition assignment stands in for
 *   leases, and in-order commits for acks (see KafkaSubscription).
 * - Topics are created explicitly, with the configured partitions and replication.
 */
export class KafkaBroker implements Broker {
  private readonly admin: Admin;
  private producer: Producer<string, string, string, string>;
  private readonly batcher: TickBatcher<ProducedMessage, string | undefined>;
  private readonly roundRobin = new Map<string, number>();
  private readonly known = new Map<string, Promise<void>>();
  private readonly subscriptions = new Set<KafkaSubscription>();
  private readonly stats: KafkaQueueStats;
  private closed = false;

  constructor(private readonly o: KafkaBrokerOptions) {
    this.admin = new Admin(this.clientOptions());
    this.producer = this.newProducer();
    this.batcher = new TickBatcher((messages) => this.send(messages));
    this.stats = new KafkaQueueStats(this.admin, o);
  }

  private clientOptions() {
    return { clientId: this.o.clientId, bootstrapBrokers: [...this.o.bootstrap], retries: 3, retryDelay: 250 };
  }

  private newProducer(): Producer<string, string, string, string> {
    return new Producer({
      ...this.clientOptions(),
      serializers: stringSerializers,
      idempotent: true,
      acks: ProduceAcks.ALL,
      autocreateTopics: false,
    });
  }

  /**
   * One produce request, bounded in time. After any failure the producer is replaced: a new
   * idempotent session cannot inherit sequence numbers left inconsistent by a request that died
   * with its broker, and a request the client never answers cannot hold every later publish.
   */
  private async send(messages: readonly ProducedMessage[]): Promise<(string | undefined)[]> {
    const producer = this.producer;
    const positions = new ProducedPositions(this.roundRobin);
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        producer.send({ messages: [...messages], partitioner: positions.choose }),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer to a produce request within ${sendTimeoutMs} ms`)), sendTimeoutMs);
        }),
      ]);
      // The client fetched the topics' metadata for this very request: its partition counts are the ones it used.
      return positions.positions(messages, result, (topic) => producer.currentMetadata?.topics.get(topic)?.partitionsCount);
    } catch (error) {
      if (this.producer === producer && !this.closed) {
        this.producer = this.newProducer();
        producer.close().catch(() => undefined);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kafka's default message.max.bytes, less room for the record overhead. */
  readonly maxMessageBytes = 1_000_000;

  ensureTopic(topic: string, options: TopicOptions = {}): Promise<void> {
    let created = this.known.get(topic);
    if (created === undefined) {
      created = this.createTopic(topic, options);
      // A failure (broker down) must not be remembered: the next call tries again.
      created.catch(() => this.known.delete(topic));
      this.known.set(topic, created);
    }
    return created;
  }

  /** Offsets commit apart from produces here (Kafka's transactions are not used): publish, then ack. */
  publishAndAck(topic: string, messages: readonly OutgoingMessage[], deliveries: readonly Delivery[]): Promise<void> {
    return publishThenAck(this, topic, messages, deliveries);
  }

  async publish(topic: string, messages: readonly OutgoingMessage[]): Promise<readonly (string | undefined)[]> {
    if (this.closed) throw new Error('broker is closed');
    await this.ensureTopic(topic);
    return this.batcher.submit(
      messages.map((m) => ({
        topic,
        value: m.value,
        ...(m.key === undefined ? {} : { key: m.key }),
        ...(m.headers === undefined ? {} : { headers: { ...m.headers } }),
      })),
    );
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new Error('broker is closed');
    await this.ensureTopic(options.topic);
    const subscription = new KafkaSubscription(this.o, options, (m) => this.publishRaw(m), () => this.subscriptions.delete(subscription));
    await subscription.start();
    this.subscriptions.add(subscription);
    return subscription;
  }

  async backlog(topic: string, group: string): Promise<number> {
    const [ends] = await this.admin.listOffsets({ topics: [{ name: topic, partitions: await this.latestRequests(topic) }] });
    const [committed] = await this.admin.listConsumerGroupOffsets({ groups: [kafkaGroupId(group, topic)] });
    const done = new Map<number, bigint>();
    for (const p of committed?.topics.find((t) => t.name === topic)?.partitions ?? []) {
      if (p.committedOffset >= 0n) done.set(p.partitionIndex, p.committedOffset);
    }
    let total = 0n;
    for (const p of ends?.partitions ?? []) {
      const from = done.get(p.partitionIndex) ?? (await this.earliest(topic, p.partitionIndex));
      if (p.offset > from) total += p.offset - from;
    }
    return Number(total);
  }

  queueStats(topic: string, group: string): Promise<QueueStats> {
    return this.stats.read(topic, group);
  }

  /** An estimate: see KafkaQueueStats.place. */
  positionOf(topic: string, group: string, position: string): Promise<QueuePlace | null> {
    const match = /^(\d+):(\d+)$/.exec(position);
    if (match === null) return Promise.resolve(null);
    return this.stats.place(topic, group, Number(match[1]), BigInt(match[2]!));
  }

  async ping(): Promise<void> {
    await this.admin.metadata({ topics: [] });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    await this.producer.close();
    await this.stats.close();
    await this.admin.close();
  }

  private async publishRaw(message: ProducedMessage): Promise<void> {
    await this.batcher.submit([message]);
  }

  private async createTopic(topic: string, options: TopicOptions): Promise<void> {
    try {
      await this.admin.createTopics({
        topics: [topic],
        partitions: this.o.partitions,
        replicas: this.o.replicationFactor,
        configs: options.retentionMs === undefined ? [] : [{ name: 'retention.ms', value: String(options.retentionMs) }],
      });
    } catch (error) {
      if (!hasErrorCode(error, topicAlreadyExists)) throw error;
    }
  }

  private async latestRequests(topic: string): Promise<{ partitionIndex: number; timestamp: bigint }[]> {
    const metadata = await this.admin.metadata({ topics: [topic] });
    const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
    return Array.from({ length: count }, (_, partitionIndex) => ({ partitionIndex, timestamp: -1n }));
  }

  private async earliest(topic: string, partitionIndex: number): Promise<bigint> {
    const [result] = await this.admin.listOffsets({ topics: [{ name: topic, partitions: [{ partitionIndex, timestamp: -2n }] }] });
    return result?.partitions[0]?.offset ?? 0n;
  }
}

/** True if the error, or any error it aggregates, carries this Kafka protocol error code. */
function hasErrorCode(error: unknown, code: number): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { apiCode?: unknown; errors?: unknown; response?: unknown };
  if (e.apiCode === code) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => hasErrorCode(inner, code))) return true;
  return JSON.stringify(e.response ?? null, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)).includes(`"errorCode":${code}`);
}
