import type { Delivery, TakeOptions } from '../brokers/broker.js';
import type { LazySubscription } from '../brokers/lazy-subscription.js';

/** Where a model's slots take their work from: one topic, or several lanes taken in turns. */
export interface WorkSource {
  /** Up to `max` requests, as soon as there is one (Subscription.take's contract). */
  take(max: number, options?: TakeOptions): Promise<Delivery[]>;
  /** Stop; requests taken and not acked go back to the queue. */
  close(): Promise<void>;
}

/** A model with a single lane: its slots take straight from the topic. */
export function singleLane(subscription: LazySubscription): WorkSource {
  return {
    take: async (max, options) => (await subscription.get()).take(max, options),
    close: () => subscription.close(),
  };
}

export interface LaneSource {
  /** For logs: the tenant, or "shared". */
  readonly name: string;
  readonly weight: number;
  readonly subscription: LazySubscription;
  /** Its priority tier: a take serves tier 0 first, then 1, … (default 0: one tier, plain fair queuing). */
  readonly tier?: number;
}

export interface FairLanesOptions {
  /**
   * Aging (docs/priorities.md): after this many takes in a row that filled up before reaching a
   * lower tier, the next take serves that tier first, with up to half of what it takes. Default 8.
   */
  readonly agingTakes?: number;
}

interface Lane extends LaneSource {
  /** Requests a watcher took while every lane was empty, kept for the next take (not nacked: that would count as an attempt). */
  readonly ready: Delivery[];
  /** Requests this lane may still give in its current turn (deficit round-robin). */
  credit: number;
  watched: boolean;
}

/** The lanes of one priority tier, taken from in weighted turns among themselves. */
interface Tier {
  readonly lanes: readonly Lane[];
  cursor: number;
  /** Takes in a row that filled up before they looked at this tier. */
  passedOver: number;
}

/**
 * A model's lanes, taken from in weighted turns (deficit round-robin): while several lanes hold
 * requests, each turn gives a lane as many requests as its weight, so a tenant that floods its
 * lane takes its share of the slots and no more, and gets every slot the others leave free.
 *
 * Lanes may be in priority tiers (a model with priorities has a tier per class): a take serves
 * the highest tier that has work, in turns within it, and fills the rest of the batch from the
 * tiers below. So that a lower tier is never starved, a tier that `agingTakes` takes in a row
 * have filled up before reaching is served first by the next take, with up to half of it (the
 * rest still goes in order, so an urgent request is not held back by a whole aged batch).
 *
 * Takes look at the lanes without waiting. Only when every lane is empty does a take wait, and
 * then one watcher per lane waits for a single request, shared by every waiting slot: at most one
 * request per lane is taken ahead of a free slot, and it is handed to the next take.
 */
export class FairLanes implements WorkSource {
  private readonly lanes: Lane[];
  /** Highest first. */
  private readonly tiers: Tier[];
  private readonly agingTakes: number;
  /** Sweeps run one at a time: the turn state is shared by every slot. */
  private sweeping: Promise<unknown> = Promise.resolve();
  private readonly waiting: (() => void)[] = [];
  private watching: AbortController | undefined;
  private readonly closing = new AbortController();

  constructor(lanes: readonly LaneSource[], options: FairLanesOptions = {}) {
    if (lanes.length === 0) throw new RangeError('FairLanes needs at least one lane');
    this.lanes = lanes.map((l) => ({ ...l, ready: [], credit: 0, watched: false }));
    const tierOf = (lane: Lane) => lane.tier ?? 0;
    this.tiers = [...new Set(this.lanes.map(tierOf))]
      .sort((a, b) => a - b)
      .map((tier) => ({ lanes: this.lanes.filter((lane) => tierOf(lane) === tier), cursor: 0, passedOver: 0 }));
    this.agingTakes = options.agingTakes ?? 8;
  }

  async take(max: number, options: TakeOptions = {}): Promise<Delivery[]> {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`take(max) needs a positive integer, got ${max}`);
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    for (;;) {
      if (options.signal?.aborted === true || this.closing.signal.aborted) return [];
      const taken = await this.sweep(max);
      if (taken.length > 0) return taken;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return [];
      await this.waitForWork(remaining, options.signal);
    }
  }

  async close(): Promise<void> {
    this.closing.abort();
    this.stopWatching();
    await this.sweeping;
    // Requests still held (ready, or leased by a watcher) go back with the subscriptions.
    await Promise.all(this.lanes.map((lane) => lane.subscription.close()));
  }

  private sweep(max: number): Promise<Delivery[]> {
    const run = this.sweeping.then(() => this.sweepNow(max));
    this.sweeping = run.catch(() => undefined);
    return run;
  }

  /**
   * Tier by tier, highest first, until the take is full or every lane came up empty; an aged
   * tier first, with up to half of the take. A tier the take looked at is no longer passed over
   * (it had nothing, or it gave something); one it never reached counts one more take.
   */
  private async sweepNow(max: number): Promise<Delivery[]> {
    const sweep: Sweep = { out: [], empty: new Set(), failure: undefined };
    const reached = new Set<Tier>();
    const aged = this.agedTier();
    if (aged !== undefined) {
      reached.add(aged);
      await this.sweepTier(aged, Math.ceil(max / 2), sweep);
    }
    for (const tier of this.tiers) {
      if (sweep.out.length >= max) break;
      reached.add(tier);
      await this.sweepTier(tier, max, sweep);
    }
    for (const tier of this.tiers) tier.passedOver = reached.has(tier) ? 0 : tier.passedOver + 1;
    // A lane that cannot be read must not stop the others; it is reported only when nothing came.
    if (sweep.out.length === 0 && sweep.failure !== undefined) throw sweep.failure;
    return sweep.out;
  }

  /** The tier passed over longest, once that is `agingTakes` takes (ties: the lower one). */
  private agedTier(): Tier | undefined {
    let aged: Tier | undefined;
    for (const tier of this.tiers) if (tier.passedOver >= this.agingTakes && tier.passedOver >= (aged?.passedOver ?? 0)) aged = tier;
    return aged;
  }

  /**
   * Deficit round-robin within `tier` from where its last take stopped, until the take holds
   * `limit` or every lane of the tier came up empty. A lane found empty loses the rest of its
   * turn (an idle tenant saves up no credit) and is not asked again within this take; a lane
   * that filled the take keeps its turn, so the next take goes on with it.
   */
  private async sweepTier(tier: Tier, limit: number, sweep: Sweep): Promise<void> {
    const { out, empty } = sweep;
    const next = () => {
      tier.cursor = (tier.cursor + 1) % tier.lanes.length;
    };
    while (out.length < limit && tier.lanes.some((lane) => !empty.has(lane))) {
      const lane = tier.lanes[tier.cursor] as Lane;
      if (empty.has(lane)) {
        next();
        continue;
      }
      if (lane.credit < 1) lane.credit += lane.weight;
      const want = Math.min(limit - out.length, Math.floor(lane.credit));
      let got: Delivery[] = [];
      try {
        got = await this.takeFrom(lane, want);
      } catch (error) {
        sweep.failure ??= error instanceof Error ? error : new Error(String(error));
      }
      out.push(...got);
      lane.credit -= got.length;
      if (got.length < want) {
        lane.credit = 0;
        empty.add(lane);
      }
      if (lane.credit < 1) next();
    }
  }

  private async takeFrom(lane: Lane, want: number): Promise<Delivery[]> {
    const got = lane.ready.splice(0, want);
    if (got.length < want) {
      const subscription = await lane.subscription.get();
      got.push(...(await subscription.take(want - got.length, { timeoutMs: 0 })));
    }
    return got;
  }

  private waitForWork(ms: number, signal: AbortSignal | undefined): Promise<void> {
    // A watcher may have taken a request since the sweep: then there is nothing to wait for.
    // Nor when the take was aborted or the lanes closed meanwhile: those events have passed.
    if (this.lanes.some((lane) => lane.ready.length > 0) || signal?.aborted === true || this.closing.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.closing.signal.removeEventListener('abort', done);
        const at = this.waiting.indexOf(done);
        if (at >= 0) this.waiting.splice(at, 1);
        // Nobody waits: a watcher would only take requests ahead of a free slot.
        if (this.waiting.length === 0) this.stopWatching();
        resolve();
      };
      // No timeout is Infinity, which setTimeout would clamp to 1 ms: an idle slot would sweep
      // every lane a thousand times a second instead of waiting for the watchers.
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
      signal?.addEventListener('abort', done, { once: true });
      this.closing.signal.addEventListener('abort', done, { once: true });
      this.waiting.push(done);
      this.watch();
    });
  }

  /** One waiting take per lane that has none and holds nothing ready. */
  private watch(): void {
    if (this.closing.signal.aborted) return;
    this.watching ??= new AbortController();
    const { signal } = this.watching;
    for (const lane of this.lanes) {
      if (lane.watched || lane.ready.length > 0) continue;
      lane.watched = true;
      void this.watchLane(lane, signal);
    }
  }

  private async watchLane(lane: Lane, signal: AbortSignal): Promise<void> {
    let failed = false;
    try {
      const subscription = await lane.subscription.get();
      lane.ready.push(...(await subscription.take(1, { signal })));
    } catch {
      // The next sweep reads this lane again and reports why it cannot.
      failed = true;
    } finally {
      lane.watched = false;
    }
    if (lane.ready.length > 0 || failed) this.wakeOne();
    // Stopped while a new wait began: that wait needs this lane watched again.
    else if (this.waiting.length > 0) this.watch();
  }

  private wakeOne(): void {
    this.waiting[0]?.();
  }

  private stopWatching(): void {
    this.watching?.abort();
    this.watching = undefined;
  }
}

/** What one take has gathered so far. */
interface Sweep {
  readonly out: Delivery[];
  /** Lanes found empty in this take: not asked again within it. */
  readonly empty: Set<Lane>;
  failure: Error | undefined;
}
