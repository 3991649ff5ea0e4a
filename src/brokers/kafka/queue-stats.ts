import { Consumer, type Admin } from '@platformatic/kafka';
import type { QueuePlace, QueueStats } from '../broker.js';
import { kafkaGroupId, type KafkaBrokerOptions } from './kafka-options.js';

/** Enough for the record batch holding one offset: Kafka returns the first batch whole regardless. */
const fetchMaxBytes = 64 * 1024;

interface PartitionLag {
  readonly partition: number;
  /** The group's committed offset, or the log start when it has none. */
  readonly from: bigint;
  readonly end: bigint;
}

/**
 * Queue figures from committed offsets, as KEDA's Kafka scaler reads them. Kafka keeps no record
 * of what a consumer has fetched and not committed, so `leased` is null and `waiting` is the lag:
 * everything after the committed offsets. The oldest age is the timestamp of the record at each
 * lagging partition's committed offset (one small fetch per such partition): the oldest request
 * not yet finished, which may be running.
 */
export class KafkaQueueStats {
  // Never joins a group: it is here for its fetch, which reads a partition at a given offset.
  private reader: Consumer | undefined;

  constructor(
    private readonly admin: Admin,
    private readonly o: KafkaBrokerOptions,
  ) {}

  async read(topic: string, group: string): Promise<QueueStats> {
    const info = await this.topicInfo(topic);
    if (info === undefined) return { waiting: 0, leased: null, oldestWaitingPublishedAt: null };
    const lags = await this.lags(topic, group, info.partitionsCount);
    let waiting = 0n;
    let oldest: number | null = null;
    for (const lag of lags) {
      if (lag.end <= lag.from) continue;
      waiting += lag.end - lag.from;
      const leader = info.partitions[lag.partition];
      if (leader === undefined) continue;
      const at = await this.timestampAt(info.id, leader.leader, leader.leaderEpoch, lag.partition, lag.from);
      if (at !== null && (oldest === null || at < oldest)) oldest = at;
    }
    return { waiting: Number(waiting), leased: null, oldestWaitingPublishedAt: oldest };
  }

  /**
   * Where the record at `offset` of `partition` stands: an estimate. Kafka keeps only committed
   * offsets, so every record from the group's committed offset on counts as ahead, including
   * those a worker has fetched and is running. And partitions are read in parallel, with no
   * order between them: a record's turn comes once its own partition has drained to it, while
   * the other partitions drain about as much meanwhile. So the records ahead are the depth in its
   * own partition, plus from each other partition that many or its whole lag if smaller.
   */
  async place(topic: string, group: string, partition: number, offset: bigint): Promise<QueuePlace | null> {
    const info = await this.topicInfo(topic);
    if (info === undefined) return null;
    const lags = await this.lags(topic, group, info.partitionsCount);
    const own = lags.find((lag) => lag.partition === partition);
    if (own === undefined || offset < own.from || offset >= own.end) return null;
    const depth = offset - own.from;
    let ahead = depth;
    for (const lag of lags) {
      if (lag.partition === partition || lag.end <= lag.from) continue;
      const behind = lag.end - lag.from;
      ahead += behind < depth ? behind : depth;
    }
    return { ahead: Number(ahead), exact: false };
  }

  async close(): Promise<void> {
    await this.reader?.close();
  }

  private topicInfo(topic: string) {
    return this.admin.metadata({ topics: [topic] }).then(
      (metadata) => metadata.topics.get(topic),
      (error: unknown) => {
        // The client reports a topic Kafka does not know by this message alone, with no code.
        if (error instanceof Error && error.message.startsWith('Unknown topic ')) return undefined;
        throw error;
      },
    );
  }

  private async lags(topic: string, group: string, partitions: number): Promise<PartitionLag[]> {
    const offsetsAt = async (timestamp: bigint) => {
      const [result] = await this.admin.listOffsets({
        topics: [{ name: topic, partitions: Array.from({ length: partitions }, (_, partitionIndex) => ({ partitionIndex, timestamp })) }],
      });
      return new Map((result?.partitions ?? []).map((p) => [p.partitionIndex, p.offset]));
    };
    const [ends, starts] = await Promise.all([offsetsAt(-1n), offsetsAt(-2n)]);
    const [committed] = await this.admin.listConsumerGroupOffsets({ groups: [kafkaGroupId(group, topic)] });
    const done = new Map<number, bigint>();
    for (const p of committed?.topics.find((t) => t.name === topic)?.partitions ?? []) {
      if (p.committedOffset >= 0n) done.set(p.partitionIndex, p.committedOffset);
    }
    return Array.from({ length: partitions }, (_, partition) => {
      const start = starts.get(partition) ?? 0n;
      const from = done.get(partition) ?? start;
      // A committed offset below the log start (retention dropped what it pointed at) reads from the start.
      return { partition, from: from < start ? start : from, end: ends.get(partition) ?? 0n };
    });
  }

  private async timestampAt(topicId: string, node: number, leaderEpoch: number, partition: number, offset: bigint): Promise<number | null> {
    this.reader ??= new Consumer({
      clientId: `${this.o.clientId}-stats`,
      bootstrapBrokers: [...this.o.bootstrap],
      groupId: `${this.o.clientId}-stats`,
      retries: 1,
    });
    const response = await this.reader.fetch({
      node,
      maxWaitTime: 0,
      minBytes: 1,
      maxBytes: fetchMaxBytes,
      topics: [{ topicId, partitions: [{ partition, currentLeaderEpoch: leaderEpoch, fetchOffset: offset, lastFetchedEpoch: -1, partitionMaxBytes: fetchMaxBytes }] }],
    });
    for (const batch of response.responses[0]?.partitions[0]?.records ?? []) {
      for (const record of batch.records) {
        if (batch.firstOffset + BigInt(record.offsetDelta) >= offset) return Number(batch.firstTimestamp + record.timestampDelta);
      }
    }
    return null;
  }
}
