import { SpillwayError } from '../protocol/errors.js';
import { isTerminal, type PredictionRecord } from '../protocol/prediction.js';
import type { PriorityClass } from '../protocol/priority.js';

export interface BackpressureOptions {
  /** `max_queue_depth` of each model that has one; other models are never refused here. */
  readonly limits: ReadonlyMap<string, number>;
  /**
   * `priority_limits` of each model that has them: the share of its limit the queue may hold
   * when a request of a class is accepted (absent: the whole limit). Refused past it with
   * SPILLWAY_PRIORITY_QUEUE_FULL, so that room stays for more urgent requests.
   */
  readonly priorityShares?: ReadonlyMap<string, Readonly<Partial<Record<PriorityClass, number>>>>;
  /** The broker's backlog of a model's request topic: requests waiting plus running. */
  readonly backlog: (model: string) => Promise<number>;
  /** Workers recently seen serving the model; only used to explain a refusal. */
  readonly workersSeen: (model: string) => number;
  /** Told of each refusal (for metrics). */
  readonly onRefused?: (model: string) => void;
  /** How long one backlog reading is used before the broker is asked again. Default 200 ms. */
  readonly cacheMs?: number;
  /** How far back the drain rate is measured. Default 10 s. */
  readonly windowMs?: number;
  /** Retry-After, in seconds, when nothing is seen to drain. Default 30. */
  readonly idleRetryAfterS?: number;
  /** The longest Retry-After given, in seconds. Default 300. */
  readonly maxRetryAfterS?: number;
  readonly now?: () => number;
}

/** A place in the queue this gateway has granted; settle it exactly once. */
export interface QueueSlot {
  /** The broker committed the publish: the request is part of the backlog now. */
  accepted(): void;
  /** Nothing was queued after all. */
  abandoned(): void;
}

const unlimited: QueueSlot = { accepted: () => undefined, abandoned: () => undefined };
const bucketMs = 250;
const maxSamples = 64;
// Below this much observed time a rate is mostly noise.
const minSpanMs = 1000;

interface Sample {
  readonly at: number;
  readonly backlog: number;
  /** This gateway's publishes counted when the reading was taken. */
  readonly published: number;
}

/**
 * Refuses a request (429 SPILLWAY_QUEUE_FULL) when its model's queue already holds
 * `max_queue_depth` requests, with a Retry-After from the backlog and the measured drain rate.
 *
 * Under load the broker is asked at most once per `cacheMs` per model; in between, the depth is
 * the last reading plus what this gateway has published or is publishing since. So one gateway
 * keeps the limit exactly, give or take a publish that commits while a reading is taken; with
 * several gateways each learns of the others' publishes only at its next reading, and the limit
 * may be passed by what they accept in `cacheMs`.
 *
 * The drain rate is the larger of two lower bounds: completions this process's store writers
 * announce (with several gateway processes, each hears its share), and how fast the backlog
 * fell between readings net of this gateway's own publishes (others' publishes hide some drain).
 * Both only under-estimate, so Retry-After errs long rather than inviting a retry too early.
 *
 * Memory is fixed per limited model: a ring of readings and a ring of completion counts.
 */
export class Backpressure {
  private readonly queues = new Map<string, ModelQueue>();
  private readonly cacheMs: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(private readonly o: BackpressureOptions) {
    this.cacheMs = o.cacheMs ?? 200;
    this.windowMs = o.windowMs ?? 10_000;
    this.now = o.now ?? Date.now;
    // Created up front, so completions are counted before the first request is refused.
    for (const [model, limit] of o.limits) this.queues.set(model, new ModelQueue(limit, this.windowMs));
  }

  /**
   * Grants a place in `model`'s queue to a request of class `priority`, or throws
   * SPILLWAY_QUEUE_FULL (the whole limit reached) or SPILLWAY_PRIORITY_QUEUE_FULL (the share
   * of it that the class may fill).
   */
  async admit(model: string, priority: PriorityClass = 'normal'): Promise<QueueSlot> {
    const q = this.queues.get(model);
    if (q === undefined) return unlimited;
    if (this.now() - q.readAt >= this.cacheMs) await this.refresh(model, q);
    const depth = q.depth();
    const share = this.o.priorityShares?.get(model)?.[priority];
    const limit = share === undefined ? q.limit : Math.max(1, Math.floor(q.limit * share));
    if (depth >= limit) {
      this.o.onRefused?.(model);
      throw this.refusal(model, q, depth, limit === q.limit ? undefined : { priority, limit });
    }
    q.pending += 1;
    let settled = false;
    const settle = (published: boolean) => {
      if (settled) return;
      settled = true;
      q.pending -= 1;
      if (published) q.published += 1;
    };
    return { accepted: () => settle(true), abandoned: () => settle(false) };
  }

  /** Final records the store writers announced: the drain as this process sees it. */
  completed(records: readonly PredictionRecord[]): void {
    const now = this.now();
    for (const record of records) if (isTerminal(record.status)) this.queues.get(record.model)?.completions.add(now);
  }

  /** Drain rate of `model` in requests per second; 0 when none is measurable. */
  drainRate(model: string): number {
    const q = this.queues.get(model);
    return q === undefined ? 0 : Math.max(q.completions.perSecond(this.now()), q.backlogDrain(this.now()));
  }

  private refresh(model: string, q: ModelQueue): Promise<void> {
    // One query per model at a time: everyone arriving meanwhile waits for the same reading.
    if (q.refreshing === undefined) {
      q.refreshing = this.read(model, q).finally(() => {
        q.refreshing = undefined;
      });
    }
    return q.refreshing;
  }

  private async read(model: string, q: ModelQueue): Promise<void> {
    const at = this.now();
    const published = q.published;
    try {
      q.record({ at, backlog: await this.o.backlog(model), published });
    } catch {
      // Keep the last reading: if the broker is down the publish fails and says so; if only the
      // count failed, refusing work for it would be worse than a limit briefly unchecked.
      q.readAt = at;
    }
  }

  private refusal(model: string, q: ModelQueue, depth: number, byClass?: { priority: PriorityClass; limit: number }): SpillwayError {
    const rate = this.drainRate(model);
    const maxS = this.o.maxRetryAfterS ?? 300;
    const limit = byClass?.limit ?? q.limit;
    const code = byClass === undefined ? 'SPILLWAY_QUEUE_FULL' : 'SPILLWAY_PRIORITY_QUEUE_FULL';
    const what =
      byClass === undefined
        ? `model ${model}'s queue is full: about ${depth} requests waiting or running, limit ${q.limit}`
        : `model ${model}'s queue is too full for a ${byClass.priority} request: about ${depth} requests waiting or running, ` +
          `and ${byClass.priority} requests are accepted below ${limit} (its priority_limits share of ${q.limit})`;
    if (rate > 0) {
      // Until enough has drained for one more request to fit.
      const retryAfterS = Math.min(maxS, Math.max(1, (depth - limit + 1) / rate));
      return new SpillwayError(
        code,
        `${what}; it drains at about ${rate.toFixed(1)} per second, so there should be room in ${Math.ceil(retryAfterS)} s`,
        { retryAfterS },
      );
    }
    const why =
      this.o.workersSeen(model) === 0
        ? 'no worker serving it has been seen, so nothing drains it'
        : `nothing has drained from it in the last ${Math.round(this.windowMs / 1000)} s`;
    return new SpillwayError(code, `${what}; ${why}, and Retry-After is a guess`, {
      retryAfterS: Math.min(maxS, this.o.idleRetryAfterS ?? 30),
    });
  }
}

class ModelQueue {
  reading = 0;
  readAt = Number.NEGATIVE_INFINITY;
  refreshing: Promise<void> | undefined;
  /** Publishes by this gateway committed so far, and the count when `reading` was taken. */
  published = 0;
  publishedAtRead = 0;
  /** Admitted, publish not settled yet. */
  pending = 0;
  readonly completions: RateMeter;
  private readonly samples: Sample[] = [];

  constructor(
    readonly limit: number,
    private readonly windowMs: number,
  ) {
    this.completions = new RateMeter(Math.ceil(windowMs / bucketMs));
  }

  depth(): number {
    return this.reading + (this.published - this.publishedAtRead) + this.pending;
  }

  record(sample: Sample): void {
    this.reading = sample.backlog;
    this.publishedAtRead = sample.published;
    this.readAt = sample.at;
    this.samples.push(sample);
    if (this.samples.length > maxSamples) this.samples.shift();
  }

  /** How fast the backlog fell over the window, adding back what this gateway published. */
  backlogDrain(now: number): number {
    while (this.samples.length > 0 && this.samples[0]!.at < now - this.windowMs) this.samples.shift();
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (first === undefined || last === undefined || last.at - first.at < minSpanMs) return 0;
    const drained = first.backlog + (last.published - first.published) - last.backlog;
    return Math.max(0, drained) / ((last.at - first.at) / 1000);
  }
}

/** Events per second over a sliding window, counted in fixed buckets. */
class RateMeter {
  private readonly counts: number[];
  private readonly slots: number[];

  constructor(buckets: number) {
    this.counts = new Array<number>(buckets).fill(0);
    this.slots = new Array<number>(buckets).fill(-1);
  }

  add(now: number): void {
    const slot = Math.floor(now / bucketMs);
    const i = slot % this.counts.length;
    if (this.slots[i] !== slot) {
      this.slots[i] = slot;
      this.counts[i] = 0;
    }
    this.counts[i] = (this.counts[i] ?? 0) + 1;
  }

  /**
   * Over the time since the oldest bucket in the window that saw an event: a model that was idle
   * before a burst is measured on the burst, not diluted by the quiet before it.
   */
  perSecond(now: number): number {
    const current = Math.floor(now / bucketMs);
    let total = 0;
    let oldest = current;
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i]!;
      const count = this.counts[i]!;
      if (count === 0 || slot <= current - this.slots.length || slot > current) continue;
      total += count;
      oldest = Math.min(oldest, slot);
    }
    if (total === 0) return 0;
    return total / (Math.max(minSpanMs, now - oldest * bucketMs) / 1000);
  }
}
