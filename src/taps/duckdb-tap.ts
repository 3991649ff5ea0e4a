import type { Logger } from 'pino';
import type { Broker, Delivery } from '../brokers/broker.js';
import { LazySubscription } from '../brokers/lazy-subscription.js';
import { StreamReader } from '../brokers/stream-reader.js';
import { decodeRequest } from '../protocol/decode.js';
import { decodeRecord } from '../protocol/decode-record.js';
import type { PredictionRecord } from '../protocol/prediction.js';
import { tapGroup, topicsFor, type LaneWeights } from '../protocol/topics.js';
import { AnalyticsDb, type QueryRow } from './analytics-db.js';
import { latestPerId, recordRow, requestRow, type RequestRow } from './tap-rows.js';

export interface DuckDbTapOptions {
  readonly broker: Broker;
  readonly prefix: string;
  /** Tenants with a queue lane of their own: their lanes are read too. */
  readonly laneWeights?: LaneWeights;
  /** Models with priorities: their high and low topics are read too. */
  readonly prioritized?: ReadonlySet<string>;
  /** Models whose request topics the tap reads (for input sizes); the response stream has them all. */
  readonly models: readonly string[];
  /** The tap's name: its consumer group is `tap.<name>`, so taps of different names never share work. */
  readonly name: string;
  /** The DuckDB file; created with its table if missing. */
  readonly dbPath: string;
  /** Metadata fields kept as columns `meta_<field>`. */
  readonly metadataFields: readonly string[];
  readonly batchSize: number;
  /** Wait after a batch that was not full (default 0): fewer, fuller takes cost serving less. */
  readonly lingerMs?: number;
  readonly logger: Logger;
}

/**
 * An analytics subscriber: one row per prediction in a DuckDB file, from the response stream
 * (status, timings, output size) and the request topics (input size). Each taken batch is
 * written in one transaction and acked only after it committed, and every write is an upsert
 * by id, so a crash at any point redelivers what was not yet acked and the rewrite is harmless:
 * nothing lost, nothing doubled. Its groups have one reader (one process per tap name).
 */
export class DuckDbTap {
  private readers: StreamReader[] = [];

  private constructor(
    private readonly o: DuckDbTapOptions,
    private readonly db: AnalyticsDb,
  ) {}

  static async start(o: DuckDbTapOptions): Promise<DuckDbTap> {
    const db = await AnalyticsDb.open(o.dbPath, o.metadataFields);
    const tap = new DuckDbTap(o, db);
    tap.startReaders();
    return tap;
  }

  get dbPath(): string {
    return this.db.path;
  }

  /** Reads the tap's database while it runs (another process cannot: DuckDB locks the file). */
  query(sql: string): Promise<QueryRow[]> {
    return this.db.query(sql);
  }

  /** Finishes the batch in hand, acks it, and closes the file. */
  async stop(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.stop()));
    await this.db.close();
  }

  private startReaders(): void {
    const topics = topicsFor(this.o.prefix, this.o.laneWeights, this.o.prioritized);
    const group = tapGroup(this.o.name);
    const reader = (topic: string, handle: (deliveries: readonly Delivery[]) => Promise<void>) =>
      new StreamReader({
        name: `tap ${this.o.name} (${topic})`,
        // From the earliest message the broker still holds: a new tap starts with history.
        // A sole reader: on the embedded broker its reads take no lock on the queue file, so a
        // tap that lags, or is frozen, never makes serving wait.
        subscription: new LazySubscription(this.o.broker, { topic, group, from: 'earliest', soleReader: true }),
        batchSize: this.o.batchSize,
        lingerMs: this.o.lingerMs ?? 0,
        logger: this.o.logger,
        handle,
      }).start();
    this.readers = [
      reader(topics.responses, (d) => this.writeRecords(d)),
      ...this.o.models.flatMap((model) => topics.lanes(model).map((lane) => reader(lane.topic, (d) => this.writeRequests(d)))),
    ];
  }

  private async writeRecords(deliveries: readonly Delivery[]): Promise<void> {
    const records: PredictionRecord[] = [];
    for (const d of deliveries) {
      const record = decodeRecord(d.value);
      if (record === undefined) this.skip(d, 'not a prediction record');
      else records.push(record);
    }
    const rows = latestPerId(records).map((r) => recordRow(r, this.o.metadataFields));
    await this.db.write(rows, []);
    await ackAll(deliveries);
    this.o.logger.debug({ tap: this.o.name, messages: deliveries.length, rows: rows.length }, 'tap wrote records');
  }

  private async writeRequests(deliveries: readonly Delivery[]): Promise<void> {
    const rows = new Map<string, RequestRow>();
    for (const d of deliveries) {
      const decoded = decodeRequest(d.value);
      if (!decoded.ok) this.skip(d, decoded.reason);
      // A later step of a pipeline carries the step before's output, not what the client sent.
      else if ((decoded.value.pipeline?.step ?? 0) > 0) continue;
      // The first copy of an id is as good as any: a request's size and creation never change.
      else if (!rows.has(decoded.value.id)) rows.set(decoded.value.id, requestRow(decoded.value, this.o.metadataFields));
    }
    await this.db.write([], [...rows.values()]);
    await ackAll(deliveries);
  }

  /** A message no tap can read is acked with the rest: redelivering it would never help. */
  private skip(d: Delivery, reason: string): void {
    this.o.logger.warn({ tap: this.o.name, topic: d.topic, position: d.position, reason }, 'tap skipped an unreadable message');
  }
}

async function ackAll(deliveries: readonly Delivery[]): Promise<void> {
  await Promise.all(deliveries.map((d) => d.ack()));
}
