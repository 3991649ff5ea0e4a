import type { Logger } from 'pino';
import type { Broker, QueueStats } from '../../brokers/broker.js';
import { workersToCatchUp } from '../../plan/fluid.js';
import { workerGroup, type Topics } from '../../protocol/topics.js';
import type { ScalingFigures } from '../schemas.js';
import type { WorkerSighting } from '../worker-registry.js';
import { BusyTime } from './busy-time.js';
import { CompletionMeter } from './completion-meter.js';

export interface ScalingSignalsOptions {
  readonly broker: Broker;
  readonly topics: Topics;
  readonly models: () => Iterable<string>;
  /** Slots per worker from the model's config, for models no worker has reported yet. */
  readonly configuredSlots: (model: string) => number | undefined;
  readonly workersFor: (model: string) => readonly WorkerSighting[];
  readonly logger: Logger;
  /** How far back rates are measured. Default 30 s. */
  readonly windowMs?: number;
  /** How often each model is sampled once the signals are in use. Default 1 s. */
  readonly sampleEveryMs?: number;
  readonly now?: () => number;
}

/** Callers asking often (many scrapes) add samples too; this bounds the ring regardless. */
const maxSamples = 256;

interface Sample {
  readonly at: number;
  /** Waiting plus in flight. */
  readonly queued: number;
  readonly completed: number;
  /** Slot-ms spent by the model's workers, summed since the first sample. */
  readonly busyMs: number;
}

interface ModelState {
  readonly samples: Sample[];
  readonly busy: BusyTime;
  /** The last measured completions per busy slot-second; kept through idle spells. */
  perSlotRate: number | null;
}

interface QueueReading {
  readonly waiting: number;
  readonly inFlight: number;
  readonly oldestAt: number | null;
}

/**
 * The signals an autoscaler needs, for the deployment as a whole: queue figures from the broker
 * (summed over a model's lanes), completions from the response stream, workers and their busy
 * time from heartbeats. Nothing here is one gateway's own traffic. It starts on first use, so a
 * gateway nobody asks pays nothing; rates then cover the time since, up to the window.
 */
export class ScalingSignals {
  private readonly meter: CompletionMeter;
  private readonly states = new Map<string, ModelState>();
  private readonly windowMs: number;
  private readonly now: () => number;
  private started: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: ScalingSignalsOptions) {
    this.windowMs = o.windowMs ?? 30_000;
    this.now = o.now ?? Date.now;
    this.meter = new CompletionMeter(o.broker, o.topics.responses, o.logger);
  }

  start(): Promise<void> {
    this.started ??= (async () => {
      await this.meter.start();
      // Stopped while the meter joined its group: no sampling may begin after stop.
      if (this.stopped) return;
      this.timer = setInterval(() => void this.sampleAll(), this.o.sampleEveryMs ?? 1000);
      this.timer.unref();
      await this.sampleAll();
    })().catch((error: unknown) => {
      this.started = undefined;
      throw error;
    });
    return this.started;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.meter.stop();
  }

  /** The model's figures now, with the workers that would catch up within `targetS`. */
  async figures(model: string, targetS: number): Promise<ScalingFigures> {
    await this.start();
    const completed = this.meter.total(model);
    const queue = await this.read(model);
    const state = this.sample(model, queue, completed);
    const first = state.samples[0]!;
    const last = state.samples.at(-1)!;
    const spanS = (last.at - first.at) / 1000;
    const done = last.completed - first.completed;
    const drain = spanS > 0 ? done / spanS : 0;
    const arrival = spanS > 0 ? Math.max(0, drain + (last.queued - first.queued) / spanS) : 0;
    const perSlot = perSlotRate(state.samples);
    if (perSlot !== null) state.perSlotRate = perSlot;
    const workers = this.ready(model);
    const reported = workers.map((w) => w.concurrency).filter((c): c is number => c !== undefined);
    const slots = reported.length > 0 ? reported.reduce((a, b) => a + b, 0) / reported.length : (this.o.configuredSlots(model) ?? 1);
    const perWorker = state.perSlotRate === null ? null : state.perSlotRate * slots;
    const queued = queue.waiting + queue.inFlight;
    const desired =
      perWorker === null
        ? // Nothing measured yet: one worker to measure with while anything is asked of the model.
          queued > 0 || arrival > 0 ? Math.max(1, workers.length) : 0
        : workersToCatchUp(queued, arrival, perWorker, targetS);
    return {
      model,
      backlog: queue.waiting,
      in_flight: queue.inFlight,
      oldest_age_s: queue.oldestAt === null ? 0 : Math.max(0, (this.now() - queue.oldestAt) / 1000),
      drain_rate_per_s: drain,
      arrival_rate_per_s: arrival,
      workers_seen: workers.length,
      slots_per_worker: slots,
      per_worker_rate_per_s: perWorker,
      target_s: targetS,
      desired_workers: desired,
      window_s: spanS,
    };
  }

  private ready(model: string): WorkerSighting[] {
    return this.o.workersFor(model).filter((w) => w.state === 'ready' && !w.draining);
  }

  private async sampleAll(): Promise<void> {
    for (const model of this.o.models()) {
      try {
        const completed = this.meter.total(model);
        this.sample(model, await this.read(model), completed);
      } catch (error) {
        this.o.logger.debug({ err: error, model }, 'could not sample the queue for scaling');
      }
    }
  }

  /**
   * Summed over the lanes; the oldest is the oldest of all. Where the broker cannot tell leased
   * from waiting (Kafka), in flight is what the workers' heartbeats report, and the rest waits.
   */
  private async read(model: string): Promise<QueueReading> {
    const lanes = await Promise.all(this.o.topics.lanes(model).map((lane) => this.o.broker.queueStats(lane.topic, workerGroup)));
    const sum = (pick: (s: QueueStats) => number) => lanes.reduce((total, s) => total + pick(s), 0);
    const waiting = sum((s) => s.waiting);
    const oldest = lanes.map((s) => s.oldestWaitingPublishedAt).filter((t): t is number => t !== null);
    const oldestAt = oldest.length === 0 ? null : Math.min(...oldest);
    if (lanes.every((s) => s.leased !== null)) return { waiting, inFlight: sum((s) => s.leased ?? 0), oldestAt };
    // Draining workers still finish what they hold.
    const holding = this.o.workersFor(model).filter((w) => w.state === 'ready');
    const running = Math.min(waiting, holding.reduce((total, w) => total + w.in_flight, 0));
    return { waiting: waiting - running, inFlight: running, oldestAt };
  }

  /** Completions are read before the queue, so a skew between the two errs towards fewer arrivals. */
  private sample(model: string, queue: QueueReading, completed: number): ModelState {
    let state = this.states.get(model);
    if (state === undefined) {
      state = { samples: [], busy: new BusyTime(), perSlotRate: null };
      this.states.set(model, state);
    }
    const busyMs = state.busy.update(this.o.workersFor(model));
    const at = this.now();
    state.samples.push({ at, queued: queue.waiting + queue.inFlight, completed, busyMs });
    while (state.samples.length > maxSamples || (state.samples.length > 1 && state.samples[0]!.at < at - this.windowMs)) state.samples.shift();
    return state;
  }
}

/** Less busy time than this in the window says too little about a worker's speed. */
const minBusyMsForRate = 1000;

/**
 * Completions per busy slot-second. Busy time arrives in steps, with each heartbeat, while
 * completions arrive one by one; so the span measured runs between the first and last samples
 * at which a heartbeat had just brought news, and the completions are counted over the same span.
 */
function perSlotRate(samples: readonly Sample[]): number | null {
  const steps = samples.filter((s, i) => i > 0 && s.busyMs > samples[i - 1]!.busyMs);
  const from = steps[0];
  const to = steps.at(-1);
  if (from === undefined || to === undefined || to.busyMs - from.busyMs < minBusyMsForRate) return null;
  const done = to.completed - from.completed;
  return done > 0 ? done / ((to.busyMs - from.busyMs) / 1000) : null;
}
