import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { Broker } from '../brokers/broker.js';
import { clientRecord, type PredictionRecord, type QueuePlaceView, type QueueSlot } from '../protocol/prediction.js';
import { priorityTier } from '../protocol/priority.js';
import { workerGroup, type Lane } from '../protocol/topics.js';
import type { ScalingFigures } from './schemas.js';

export interface QueuePlacesOptions {
  readonly broker: Pick<Broker, 'positionOf' | 'queueStats'>;
  /** Every lane of a model (Topics.lanes): with more than one, the ETA counts what the others start first. */
  readonly lanes?: (model: string) => readonly Lane[];
  /** How many of the model's queued requests start per second across the deployment ({@link startRate}); 0 or null when unknown. */
  readonly startRate: (model: string) => Promise<number | null>;
  readonly logger: Pick<FastifyBaseLogger, 'debug'>;
  /** How long one reading of a place (or a drain rate) serves every read of it. Default 1 s. */
  readonly cacheMs?: number;
  /** Requests remembered at most; the oldest are forgotten first. Default 100,000. */
  readonly maxTracked?: number;
  readonly now?: () => number;
}

/** How long a read waits for a rate that is not known yet. */
const rateWaitMs = 100;

interface Reading<T> {
  readonly at: number;
  readonly value: Promise<T>;
}

/**
 * Where each queued request stands in line, and when it should start. The broker's position of a
 * request is known to the gateway that published it: it remembers it here (bounded, dropped once
 * the request leaves `queued`) for the requests it holds, and stores it with the queued record
 * it answers 202 with (`queue_slot`), from which any gateway reads it. Readings are cached for
 * `cacheMs`, so many polls of one id cost one broker query a second, and any failure only leaves
 * the place out.
 *
 * ETA: a request with s requests starting before it starts at the (s + 1)th start from now.
 * Starts come at {@link startRate}, the model's across all its lanes, and the next one is on
 * average half an interval away, so it is expected (s + 0.5) / rate from now. With one lane s is
 * the requests ahead of it; with several, {@link startsBefore} adds the other lanes' share.
 */
export class QueuePlaces {
  private readonly published = new Map<string, QueueSlot>();
  private readonly places = new Map<string, Reading<QueuePlaceView | undefined>>();
  private readonly rates = new Map<string, Reading<number | null>>();
  private readonly laneDepths = new Map<string, Reading<readonly LaneDepth[]>>();
  private readonly cacheMs: number;
  private readonly maxTracked: number;
  private readonly now: () => number;

  constructor(private readonly o: QueuePlacesOptions) {
    this.cacheMs = o.cacheMs ?? 1000;
    this.maxTracked = o.maxTracked ?? 100_000;
    this.now = o.now ?? Date.now;
  }

  /** Notes where a request this gateway published waits. */
  remember(id: string, slot: QueueSlot): void {
    this.published.set(id, slot);
    if (this.published.size > this.maxTracked) this.forget(this.published.keys().next().value!);
  }

  /** The record as a client should see it now: while queued, with its place in line if known. */
  async withPlace(record: PredictionRecord): Promise<PredictionRecord> {
    if (record.status !== 'queued') {
      this.forget(record.id);
      return clientRecord(record);
    }
    const queue = await this.placeOf(record);
    const shown = clientRecord(record);
    return queue === undefined ? shown : { ...shown, queue };
  }

  private placeOf(record: PredictionRecord): Promise<QueuePlaceView | undefined> {
    const published = this.published.get(record.id) ?? record.queue_slot;
    if (published === undefined) return Promise.resolve(undefined);
    return this.cached(this.places, record.id, () => this.read(record.model, published));
  }

  private async read(model: string, published: QueueSlot): Promise<QueuePlaceView | undefined> {
    try {
      const measuredAt = this.now();
      // A read waits for the rate only briefly: its first reading may start a stream reader (on
      // Kafka, joining a consumer group takes seconds), and until it is known the ETA is left out.
      const rating = this.cached(this.rates, model, async () => this.o.startRate(model));
      const [place, rate, depths] = await Promise.all([
        this.o.broker.positionOf(published.topic, workerGroup, published.position),
        Promise.race([rating, sleep(rateWaitMs, null, { ref: false })]),
        this.depthsOfLanes(model),
      ]);
      // Taken already: the record is about to say `running`.
      if (place === null) return undefined;
      const own = depths.find((d) => d.lane.topic === published.topic)?.lane;
      const before = own === undefined ? place.ahead : startsBefore(place.ahead, own, depths);
      const eta = rate !== null && rate > 0 ? new Date(measuredAt + ((before + 0.5) / rate) * 1000).toISOString() : undefined;
      return {
        position: place.ahead,
        ahead_exact: place.exact,
        ...(eta === undefined ? {} : { eta }),
        measured_at: new Date(measuredAt).toISOString(),
      };
    } catch (error) {
      this.o.logger.debug({ err: error, model }, 'could not read a queue position');
      return undefined;
    }
  }

  /** What waits in each of the model's lanes; none read for a model with one lane. */
  private depthsOfLanes(model: string): Promise<readonly LaneDepth[]> {
    const lanes = this.o.lanes?.(model) ?? [];
    if (lanes.length <= 1) return Promise.resolve([]);
    return this.cached(this.laneDepths, model, async () =>
      Promise.all(lanes.map(async (lane) => ({ lane, waiting: (await this.o.broker.queueStats(lane.topic, workerGroup)).waiting }))),
    );
  }

  private cached<T>(readings: Map<string, Reading<T>>, key: string, read: () => Promise<T>): Promise<T> {
    const now = this.now();
    const hit = readings.get(key);
    if (hit !== undefined && now - hit.at < this.cacheMs) return hit.value;
    const value = read();
    readings.set(key, { at: now, value });
    // Readings of ids nobody polls any more go once they are stale.
    if (readings.size > this.maxTracked) for (const [k, r] of readings) if (now - r.at >= this.cacheMs) readings.delete(k);
    return value;
  }

  private forget(id: string): void {
    this.published.delete(id);
    this.places.delete(id);
  }
}

export interface LaneDepth {
  readonly lane: Lane;
  readonly waiting: number;
}

/**
 * How many requests start before one with `ahead` waiting before it in lane `own`, as workers
 * take from the lanes (src/worker/fair-lanes.ts): every request of a higher priority tier first;
 * within its own tier, turns of each lane's weight, so by the time its lane has given `ahead` + 1
 * (⌈(ahead + 1) ÷ weight⌉ turns), each other lane has given its weight per turn, half a turn for
 * the last one (the turn order puts it before or after), or all it holds if that is less. Lower
 * tiers give nothing meanwhile. Requests that arrive later are not counted (a higher tier's or
 * another lane's make the estimate early), nor aging's share for a lower tier (it makes it late).
 */
export function startsBefore(ahead: number, own: Lane, depths: readonly LaneDepth[]): number {
  const tier = priorityTier(own.priority);
  const turns = Math.ceil((ahead + 1) / own.weight);
  let starts = ahead;
  for (const { lane, waiting } of depths) {
    if (lane.topic === own.topic) continue;
    const laneTier = priorityTier(lane.priority);
    if (laneTier < tier) starts += waiting;
    else if (laneTier === tier) starts += Math.min(waiting, (turns - 0.5) * lane.weight);
  }
  return starts;
}

/**
 * How fast queued requests start: while one is queued, every worker slot is busy (slots take only
 * when free), so they start as fast as the workers finish, their measured speed (per worker
 * × workers ready). The drain rate over the window is only the fallback before that speed is
 * known: it averages in the quiet before a burst, when workers finished what arrived and idled.
 */
export function startRate(figures: Pick<ScalingFigures, 'drain_rate_per_s' | 'per_worker_rate_per_s' | 'workers_seen'>): number {
  const capacity = figures.per_worker_rate_per_s === null ? 0 : figures.per_worker_rate_per_s * figures.workers_seen;
  return capacity > 0 ? capacity : figures.drain_rate_per_s;
}
