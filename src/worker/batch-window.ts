/**
 * The adaptive batch window, `batch_wait_ms: auto` (docs/models.md, "The adaptive window").
 *
 * It learns what a batch costs the slot, t(n) = a + b·n (a: the fixed cost of a batch, whatever
 * its size: the broker's take, publish and ack, the runtime's call; b: the cost of one more
 * request in it), from the batches the slot has run, and how fast requests arrive, λ.
 *
 * The rule. Holding k requests, waiting δ for one more costs the slot δ and saves it the fixed
 * cost of the batch that request would otherwise need: the slot time per request falls, from
 * t(k)/k to (δ + t(k+1))/(k+1), exactly when δ < a/k. Slot time saved is worth latency only
 * when someone would have waited for the slot, and a request finds the slot busy with the
 * probability u, the fraction of recent time it was busy; so the saving counts as u·a. The
 * window waits for the next request only while the expected time until it comes (1/λ) is below
 * u·a/k, and for it at most u·a/k (past that, even if it came, waiting would not have paid). As
 * k grows the bound shrinks and the window closes; when requests are rare (1/λ ≥ a) or the slot
 * mostly idle, it never opens, so a lightly loaded model adds no wait.
 * The time until the next request is not only 1/λ: a slot learns of a request only when its broker
 * wakes it (on the embedded queue, a poll every few ms when the gateway is another thread or
 * process), so what one more request costs is measured too, as the time the window's waits took
 * per request they brought (WaitCost), and the larger of the two counts. Without it, the window
 * at 70% load believed each request a fraction of a millisecond away and waited milliseconds for
 * each (docs/benchmarks.md, section 16).
 * Two bounds hold whatever the estimates say: the whole window is at most one full batch's
 * time, t(max_batch_size), and it ends before the earliest deadline of the requests it holds
 * by the time the batch is expected to take, so no request is held past its deadline.
 *
 * BentoML's adaptive dispatcher and Triton's dynamic batcher were the references for the idea
 * (learn the batch time, weigh the wait against it); the rule and the code are ours.
 */

export interface BatchWindowOptions {
  readonly maxBatchSize: number;
  /** `batch_wait_ms`: a fixed window in ms (0: none), or `auto`. */
  readonly waitMs: number | 'auto';
  /** Epoch milliseconds (injected in tests). */
  readonly now?: () => number;
  /** Weight of a new batch time in its size's average (default 0.2). */
  readonly alpha?: number;
  /** How many recent arrivals the rate is measured over (default 64). */
  readonly arrivals?: number;
  /** Slots sharing the window (default 1): their busy time is shared out among them. */
  readonly slots?: number;
}

/** A batch time per batch size, each an exponentially weighted average, and the line through them. */
export class BatchCostModel {
  private readonly mean: Float64Array;
  private readonly seen: Uint32Array;
  private fit: { a: number; b: number } | undefined;

  constructor(
    private readonly maxBatchSize: number,
    private readonly alpha = 0.2,
  ) {
    this.mean = new Float64Array(maxBatchSize + 1);
    this.seen = new Uint32Array(maxBatchSize + 1);
  }

  observe(size: number, ms: number): void {
    if (!(size >= 1 && size <= this.maxBatchSize) || !(ms >= 0)) return;
    const n = Math.floor(size);
    this.mean[n] = this.seen[n] === 0 ? ms : (this.mean[n] ?? 0) + this.alpha * (ms - (this.mean[n] ?? 0));
    this.seen[n] = (this.seen[n] ?? 0) + 1;
    this.fit = this.refit();
  }

  /** The fixed cost a and the cost per request b, in ms; undefined before the first batch. */
  get line(): { readonly a: number; readonly b: number } | undefined {
    return this.fit;
  }

  /** Expected time of a batch of `size`; undefined before the first batch. */
  estimate(size: number): number | undefined {
    return this.fit === undefined ? undefined : this.fit.a + this.fit.b * size;
  }

  /**
   * Weighted least squares over the sizes seen (a size seen more often weighs more, up to 8
   * batches' worth, so one common size does not drown the others). With one size only, the
   * whole time counts as fixed: waiting then looks worth more than it is, which is what makes
   * the window open under load and so see the other sizes it needs.
   */
  private refit(): { a: number; b: number } | undefined {
    let w = 0, wn = 0, wt = 0, wnn = 0, wnt = 0;
    for (let n = 1; n <= this.maxBatchSize; n++) {
      const count = this.seen[n] ?? 0;
      if (count === 0) continue;
      const weight = Math.min(count, 8);
      const t = this.mean[n] ?? 0;
      w += weight; wn += weight * n; wt += weight * t; wnn += weight * n * n; wnt += weight * n * t;
    }
    if (w === 0) return undefined;
    const variance = wnn / w - (wn / w) ** 2;
    if (variance < 1e-9) return { a: wt / w, b: 0 };
    const b = (wnt / w - (wn / w) * (wt / w)) / variance;
    const a = wt / w - b * (wn / w);
    if (b < 0) return { a: wt / w, b: 0 };
    if (a < 0) return { a: 0, b: wnt / wnn };
    return { a, b };
  }
}

/** Requests per ms, over the last few arrivals, counting the quiet time since the oldest of them. */
export class ArrivalRate {
  private readonly times: number[] = [];

  constructor(private readonly capacity = 64) {}

  note(count: number, at: number): void {
    for (let i = 0; i < count; i++) this.times.push(at);
    if (this.times.length > this.capacity) this.times.splice(0, this.times.length - this.capacity);
  }

  /** 0 until two arrivals are known; falls as the time since the oldest kept arrival grows. */
  perMs(now: number): number {
    const oldest = this.times[0];
    if (oldest === undefined || this.times.length < 2) return 0;
    return (this.times.length - 1) / Math.max(1, now - oldest);
  }
}

/** The fraction of recent time the slots were busy: run time over the span of the last batches. */
export class Utilisation {
  private readonly batches: { end: number; ms: number }[] = [];

  constructor(
    private readonly slots = 1,
    private readonly capacity = 32,
  ) {}

  note(end: number, ms: number): void {
    this.batches.push({ end, ms });
    if (this.batches.length > this.capacity) this.batches.shift();
  }

  /** 0 before any batch; at most 1; falls while the slots stay idle. */
  at(now: number): number {
    const first = this.batches[0];
    if (first === undefined) return 0;
    const busy = this.batches.reduce((sum, b) => sum + b.ms, 0);
    return Math.min(1, busy / this.slots / Math.max(1, now - (first.end - first.ms)));
  }
}

/**
 * What the window's waits cost per request they brought, ms: the time they took over the requests
 * they gained (at least one), both fading with a half-life of `halfLifeMs`. A cost learnt in
 * other conditions must fade by itself: a window it keeps shut makes no waits to correct it.
 */
export class WaitCost {
  private ms = 0;
  private gained = 0;
  private at = 0;

  constructor(private readonly halfLifeMs = 1000) {}

  note(ms: number, gained: number, now: number): void {
    if (!(ms >= 0) || !(gained >= 0)) return;
    this.fade(now);
    this.ms += ms;
    this.gained += gained;
  }

  /** 0 before any wait; a wait that brought nothing counts its whole time. */
  perRequest(now: number): number {
    this.fade(now);
    return this.ms / Math.max(this.gained, 1);
  }

  private fade(now: number): void {
    const kept = 0.5 ** (Math.max(0, now - this.at) / this.halfLifeMs);
    this.ms *= kept;
    this.gained *= kept;
    this.at = now;
  }
}

/** What a slot asks before it waits for one more request. */
export interface WindowState {
  /** Requests held. */
  readonly held: number;
  /** When the slot took its first request of this batch (epoch ms). */
  readonly openedAt: number;
  /** The earliest deadline among the held requests (epoch ms), if any has one. */
  readonly deadline?: number | undefined;
}

export class BatchWindow {
  readonly cost: BatchCostModel;
  readonly rate: ArrivalRate;
  readonly busy: Utilisation;
  readonly waits = new WaitCost();
  private readonly now: () => number;

  constructor(private readonly o: BatchWindowOptions) {
    this.cost = new BatchCostModel(o.maxBatchSize, o.alpha);
    this.rate = new ArrivalRate(o.arrivals);
    this.busy = new Utilisation(o.slots);
    this.now = o.now ?? Date.now;
  }

  /** Requests just taken from the queue. */
  arrived(count: number): void {
    if (count > 0) this.rate.note(count, this.now());
  }

  /** A batch the slot ran: its size and how long the slot was busy with it. */
  ran(size: number, ms: number): void {
    this.cost.observe(size, ms);
    this.busy.note(this.now(), ms);
  }

  /** A wait of the window: how long it took and how many requests it brought. */
  waited(ms: number, gained: number): void {
    this.waits.note(ms, gained, this.now());
  }

  /** The window adapts (`auto`): a slot must stop waiting as soon as a wait brings nothing. */
  get adaptive(): boolean {
    return this.o.waitMs === 'auto';
  }

  /** How long to wait for more requests now (ms); 0: run what is held. */
  waitMs(state: WindowState): number {
    const { held } = state;
    if (held >= this.o.maxBatchSize) return 0;
    const now = this.now();
    // Whatever the window, the batch should start in time to finish by the earliest deadline.
    const deadlineEnd = state.deadline === undefined ? Infinity : state.deadline - (this.cost.estimate(held + 1) ?? 0);
    if (this.o.waitMs !== 'auto') return positive(Math.min(state.openedAt + this.o.waitMs, deadlineEnd) - now);
    const line = this.cost.line;
    if (line === undefined || line.a <= 0) return 0;
    const breakEven = (this.busy.at(now) * line.a) / held;
    const lambda = this.rate.perMs(now);
    if (lambda <= 0) return 0;
    const nextInMs = Math.max(1 / lambda, this.waits.perRequest(now));
    if (nextInMs >= breakEven) return 0;
    const windowEnd = state.openedAt + line.a + line.b * this.o.maxBatchSize;
    return positive(Math.min(breakEven, windowEnd - now, deadlineEnd - now));
  }
}

/** Waits shorter than a millisecond are not worth a timer. */
function positive(ms: number): number {
  return ms >= 1 ? ms : 0;
}
