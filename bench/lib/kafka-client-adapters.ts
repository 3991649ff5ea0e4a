/**
 * The two Node Kafka clients of bench/kafka-clients.ts behind one small interface, each used
 * the way its documentation shows, with the settings Spillway needs: an idempotent producer
 * with acks=all, and a consumer group that commits by hand after each batch it has read.
 */
import { performance } from 'node:perf_hooks';
import { inspect } from 'node:util';
import { Admin, Consumer, Producer, ProduceAcks, stringDeserializers, stringSerializers, type Message } from '@platformatic/kafka';
import { Kafka, Partitioners, logLevel, type LogEntry } from 'kafkajs';

export const clients = ['platformatic', 'kafkajs'] as const;
export type Client = (typeof clients)[number];

export interface BenchMessage {
  readonly key: string;
  readonly value: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface BenchProducer {
  /** Resolves once the broker has acknowledged every message (acks=all). */
  send(topic: string, messages: readonly BenchMessage[]): Promise<void>;
  close(): Promise<void>;
}

export interface ConsumeOptions {
  readonly bootstrap: readonly string[];
  readonly topic: string;
  readonly groupId: string;
  /** Stop once this many distinct keys have been read and their offsets committed. */
  readonly expected: number;
  readonly timeoutMs: number;
  /** Longest time the broker may hold a fetch open waiting for data. */
  readonly maxWaitMs: number;
  /** Called once the last offset is committed, before the consumer is closed. */
  readonly onDone?: () => void;
}

export interface ConsumeOutcome {
  /** performance.now() when the consumer was created, had joined its group, got its first message, and committed the last. */
  readonly startedAt: number;
  readonly joinedAt: number;
  readonly firstAt: number;
  readonly doneAt: number;
  /** Messages handed to the application, duplicates included. */
  readonly read: number;
  readonly uniqueKeys: number;
  readonly batches: number;
  readonly commits: number;
  readonly error?: string;
}

export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : inspect(error);
}

/** kafkajs logs through console by default: keep stdout for the tables. */
const kafkajsLog = () => (entry: LogEntry) => {
  process.stderr.write(`kafkajs ${entry.namespace} ${entry.label}: ${entry.log.message}\n`);
};

function kafkajs(bootstrap: readonly string[], clientId: string): Kafka {
  return new Kafka({ clientId, brokers: [...bootstrap], logLevel: logLevel.WARN, logCreator: kafkajsLog });
}

/**
 * `serialize` (platformatic only) lets one send reach the producer at a time, the others
 * waiting in FIFO order. @platformatic/kafka 1.x reads an idempotent partition's sequence
 * number when it builds a request but advances it only when the response comes, so sends that
 * overlap reuse sequence numbers: the broker takes the later ones for retries of the first and
 * acknowledges them without writing them, or rejects them as out of order (platformatic/kafka
 * issue #326; 2.x reserves the numbers up front). kafkajs takes a lock per broker itself.
 */
export async function openProducer(client: Client, bootstrap: readonly string[], clientId: string, { serialize = true } = {}): Promise<BenchProducer> {
  if (client === 'platformatic') {
    const producer = new Producer({
      clientId,
      bootstrapBrokers: [...bootstrap],
      serializers: stringSerializers,
      idempotent: true,
      acks: ProduceAcks.ALL,
      autocreateTopics: false,
    });
    const send = async (topic: string, messages: readonly BenchMessage[]) => {
      await producer.send({ messages: messages.map((m) => ({ topic, key: m.key, value: m.value, headers: m.headers })) });
    };
    if (!serialize) return { send, close: () => producer.close() };
    let tail: Promise<unknown> = Promise.resolve();
    return {
      send: (topic, messages) => {
        const mine = tail.then(() => send(topic, messages));
        tail = mine.catch(() => undefined);
        return mine;
      },
      close: async () => {
        await tail;
        await producer.close();
      },
    };
  }
  const producer = kafkajs(bootstrap, clientId).producer({
    idempotent: true,
    allowAutoTopicCreation: false,
    // The Java client's murmur2 partitioner, like @platformatic/kafka's default.
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  return {
    send: async (topic, messages) => {
      await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ key: m.key, value: m.value, headers: { ...m.headers } })) });
    },
    close: () => producer.disconnect(),
  };
}

/**
 * Spillway's way of publishing (src/brokers/tick-batcher.ts, as in the working tree when this
 * was written): sends wait one event-loop turn, then go out together, one request in flight at
 * a time; whatever is submitted meanwhile goes into the next request (up to `maxItems`).
 */
export function coalescing(producer: BenchProducer, maxItems = 1000): BenchProducer {
  interface Pending {
    readonly topic: string;
    readonly messages: readonly BenchMessage[];
    readonly resolve: () => void;
    readonly reject: (error: unknown) => void;
  }
  let pending: Pending[] = [];
  let flushing = false;
  const drain = async () => {
    while (pending.length > 0) {
      const topic = pending[0]!.topic;
      const batch: Pending[] = [];
      let count = 0;
      const rest: Pending[] = [];
      for (const p of pending) {
        if (p.topic === topic && (batch.length === 0 || count + p.messages.length <= maxItems)) {
          batch.push(p);
          count += p.messages.length;
        } else rest.push(p);
      }
      pending = rest;
      try {
        await producer.send(topic, batch.flatMap((p) => p.messages));
        for (const p of batch) p.resolve();
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    flushing = false;
  };
  return {
    send: (topic, messages) =>
      new Promise<void>((resolve, reject) => {
        pending.push({ topic, messages, resolve, reject });
        if (!flushing) {
          flushing = true;
          setImmediate(() => void drain());
        }
      }),
    close: () => producer.close(),
  };
}

/**
 * Reads `topic` from the beginning in a fresh consumer group until `expected` distinct keys
 * have come, committing after each batch (the batch's last offset + 1 per partition) before
 * taking the next one, as a worker that acknowledges in order would.
 */
export function consumeAll(client: Client, o: ConsumeOptions): Promise<ConsumeOutcome> {
  return client === 'platformatic' ? consumePlatformatic(o) : consumeKafkajs(o);
}

class Tally {
  readonly startedAt = performance.now();
  joinedAt = Number.NaN;
  firstAt = Number.NaN;
  doneAt = Number.NaN;
  read = 0;
  batches = 0;
  commits = 0;
  readonly keys = new Set<string>();

  add(key: string): void {
    if (this.read === 0) this.firstAt = performance.now();
    this.read += 1;
    this.keys.add(key);
  }

  /** Every key has been read and committed: stop the clock before closing the consumer. */
  done(onDone?: () => void): void {
    if (!Number.isNaN(this.doneAt)) return;
    this.doneAt = performance.now();
    onDone?.();
  }

  outcome(error?: unknown): ConsumeOutcome {
    return {
      startedAt: this.startedAt,
      joinedAt: this.joinedAt,
      firstAt: this.firstAt,
      doneAt: Number.isNaN(this.doneAt) ? performance.now() : this.doneAt,
      read: this.read,
      uniqueKeys: this.keys.size,
      batches: this.batches,
      commits: this.commits,
      ...(error === undefined ? {} : { error: describeError(error) }),
    };
  }
}

async function consumePlatformatic(o: ConsumeOptions): Promise<ConsumeOutcome> {
  const tally = new Tally();
  const consumer = new Consumer({
    clientId: `${o.groupId}-consumer`,
    bootstrapBrokers: [...o.bootstrap],
    groupId: o.groupId,
    deserializers: stringDeserializers,
    autocommit: false,
    maxWaitTime: o.maxWaitMs,
    maxBytesPerPartition: 1_048_576,
  });
  consumer.on('consumer:group:join', () => {
    if (Number.isNaN(tally.joinedAt)) tally.joinedAt = performance.now();
  });
  let error: unknown;
  try {
    const stream = await consumer.consume({ topics: [o.topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false });
    if (Number.isNaN(tally.joinedAt)) tally.joinedAt = performance.now();
    // One lasting 'readable' listener, as Spillway's subscription has: with events.once() the
    // listener comes and goes between batches, and the stream stopped waking us after ~16k
    // messages (1.35.0, Node 20).
    let wake: () => void = () => undefined;
    let stop: Error | undefined;
    const halt = (error: unknown) => {
      stop ??= error instanceof Error ? error : new Error(describeError(error));
      wake();
    };
    const onReadable = () => wake();
    stream.on('readable', onReadable);
    stream.on('error', halt);
    const timer = setTimeout(() => halt(new Error(`timed out after ${o.timeoutMs} ms`)), o.timeoutMs);
    try {
      // Paused mode: a batch is whatever the stream holds when we come to read it.
      while (tally.keys.size < o.expected) {
        if (stop !== undefined) throw stop;
        const last = new Map<number, bigint>();
        for (let m = stream.read() as Message<string, string, string, string> | null; m !== null; m = stream.read() as typeof m) {
          tally.add(m.key);
          last.set(m.partition, m.offset);
        }
        if (last.size === 0) {
          // Nothing can emit between the last read() and here: no await in between.
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          continue;
        }
        tally.batches += 1;
        const offsets = [...last].map(([partition, offset]) => ({ topic: o.topic, partition, offset: offset + 1n, leaderEpoch: -1 }));
        await consumer.commit({ offsets });
        tally.commits += 1;
      }
      tally.done(o.onDone);
    } finally {
      clearTimeout(timer);
      stream.off('readable', onReadable);
      stream.off('error', halt);
      await stream.close();
    }
  } catch (e) {
    error = e;
  } finally {
    await consumer.close().catch(() => undefined);
  }
  return tally.outcome(error);
}

async function consumeKafkajs(o: ConsumeOptions): Promise<ConsumeOutcome> {
  const tally = new Tally();
  const consumer = kafkajs(o.bootstrap, `${o.groupId}-consumer`).consumer({
    groupId: o.groupId,
    maxWaitTimeInMs: o.maxWaitMs,
    maxBytesPerPartition: 1_048_576,
  });
  consumer.on(consumer.events.GROUP_JOIN, () => {
    if (Number.isNaN(tally.joinedAt)) tally.joinedAt = performance.now();
  });
  let finish: () => void = () => undefined;
  let fail: (e: unknown) => void = () => undefined;
  const finished = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  finished.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
  consumer.on(consumer.events.CRASH, (event) => fail(event.payload.error));
  const timer = setTimeout(() => fail(new Error(`timed out after ${o.timeoutMs} ms`)), o.timeoutMs);
  let error: unknown;
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [o.topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async (payload) => {
        const { batch } = payload;
        if (batch.isEmpty() || !payload.isRunning() || payload.isStale()) return;
        for (const m of batch.messages) tally.add(m.key?.toString() ?? '');
        tally.batches += 1;
        const next = (BigInt(batch.lastOffset()) + 1n).toString();
        await payload.commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }] });
        tally.commits += 1;
        await payload.heartbeat();
        if (tally.keys.size >= o.expected) {
          tally.done(o.onDone);
          finish();
        }
      },
    });
    await finished;
  } catch (e) {
    error = e;
  } finally {
    clearTimeout(timer);
  }
  const outcome = tally.outcome(error);
  await consumer.disconnect().catch(() => undefined);
  return outcome;
}

/** The platformatic admin client does the set-up and the checks for both clients alike. */
export class KafkaAdmin {
  private readonly admin: Admin;

  constructor(bootstrap: readonly string[]) {
    this.admin = new Admin({ clientId: 'spillway-bench-admin', bootstrapBrokers: [...bootstrap] });
  }

  async createTopic(topic: string, partitions: number): Promise<void> {
    await this.admin.createTopics({ topics: [topic], partitions, replicas: 1 });
    // Wait until every partition's leader answers for it: the metadata names a leader a moment
    // before that broker acts as one, and a produce in between gets NOT_LEADER_OR_FOLLOWER
    // (which kafkajs' idempotent producer does not survive with concurrent sends).
    let last: unknown;
    for (let i = 0; i < 100; i++) {
      try {
        const metadata = await this.admin.metadata({ topics: [topic], forceUpdate: true });
        const t = metadata.topics.get(topic);
        if (t !== undefined && t.partitionsCount === partitions && t.partitions.every((p) => p.leader >= 0)) {
          const ends = await this.endOffsets(topic, partitions);
          if (ends.every((offset) => offset === 0)) return;
        }
      } catch (error) {
        last = error;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`topic ${topic} has no ready leader for every partition: ${describeError(last)}`);
  }

  async deleteTopic(topic: string): Promise<void> {
    await this.admin.deleteTopics({ topics: [topic] });
  }

  async deleteGroup(groupId: string): Promise<void> {
    await this.admin.deleteGroups({ groups: [groupId] });
  }

  /** The end offset of each partition (= messages written, for a fresh topic). */
  async endOffsets(topic: string, partitions: number): Promise<number[]> {
    const [result] = await this.admin.listOffsets({
      topics: [{ name: topic, partitions: Array.from({ length: partitions }, (_, partitionIndex) => ({ partitionIndex, timestamp: -1n })) }],
    });
    const out = new Array<number>(partitions).fill(Number.NaN);
    for (const p of result?.partitions ?? []) out[p.partitionIndex] = Number(p.offset);
    return out;
  }

  /** The group's committed offset of each partition (NaN where none). */
  async committedOffsets(groupId: string, topic: string, partitions: number): Promise<number[]> {
    const [group] = await this.admin.listConsumerGroupOffsets({ groups: [groupId] });
    const out = new Array<number>(partitions).fill(Number.NaN);
    for (const p of group?.topics.find((t) => t.name === topic)?.partitions ?? []) {
      if (p.committedOffset >= 0n) out[p.partitionIndex] = Number(p.committedOffset);
    }
    return out;
  }

  close(): Promise<void> {
    return this.admin.close();
  }
}
