import { murmur2, type ProduceResult } from '@platformatic/kafka';

/**
 * Learns where a produce request put each of its records. Kafka answers one base offset per
 * partition written; records of a partition get consecutive offsets in the order they were sent.
 * So the partition of each record is needed: `choose` is the producer's partitioner, doing what
 * the client's default does (murmur2 of the key; round robin without one) while noting the raw
 * choice, which the client then takes modulo the partition count it just fetched.
 */
interface Produced {
  readonly topic: string;
}

export class ProducedPositions {
  private readonly raw = new Map<Produced, number>();

  /** One per send; `roundRobin` (the next partition per topic for keyless records) lives with the producer. */
  constructor(
    private readonly roundRobin: Map<string, number>,
  ) {}

  readonly choose = (message: Produced, key: Buffer | undefined): number => {
    let partition: number;
    if (Buffer.isBuffer(key)) partition = murmur2(key) >>> 0;
    else {
      const topic = message.topic;
      partition = this.roundRobin.get(topic) ?? 0;
      this.roundRobin.set(topic, partition + 1);
    }
    this.raw.set(message, partition);
    return partition;
  };

  /**
   * Each message's `<partition>:<offset>` (a Delivery's position), or undefined where the answer
   * does not say (no partition count known, or no offset for its partition).
   */
  positions(messages: readonly Produced[], result: ProduceResult, partitionsOf: (topic: string) => number | undefined): (string | undefined)[] {
    const base = new Map((result.offsets ?? []).map((o) => [`${o.topic}:${o.partition}`, o.offset]));
    const seen = new Map<string, bigint>();
    return messages.map((m) => {
      const raw = this.raw.get(m);
      const topic = m.topic;
      const count = partitionsOf(topic);
      if (raw === undefined || count === undefined || count <= 0) return undefined;
      const partition = raw % count;
      const at = base.get(`${topic}:${partition}`);
      if (at === undefined) return undefined;
      const nth = seen.get(`${topic}:${partition}`) ?? 0n;
      seen.set(`${topic}:${partition}`, nth + 1n);
      return `${partition}:${at + nth}`;
    });
  }
}
