import type { Logger } from 'pino';
import type { Broker } from '../../brokers/broker.js';
import type { ModelRepository } from '../../models/model-repository.js';
import type { Topics } from '../../protocol/topics.js';
import { withoutUndefined } from '../../protocol/without-undefined.js';
import type { ScalingSignals } from '../scaling/scaling-signals.js';
import { defaultScalingTargetS } from '../schemas.js';
import type { WorkerRegistry } from '../worker-registry.js';
import type { DashboardSnapshot, ModelDashboard } from './dashboard-schema.js';
import { DeadLetterTally } from './dead-letter-tally.js';
import { RecentOutcomes } from './recent-outcomes.js';
import { SlotUtilisation } from './slot-utilisation.js';

export interface DashboardStateOptions {
  readonly broker: Broker;
  readonly topics: Topics;
  readonly repository: ModelRepository;
  readonly registry: WorkerRegistry;
  /** Scaling signals of the dashboard's own, on {@link dashboardRateWindowMs}; stopped with it. */
  readonly scaling: ScalingSignals;
  readonly logger: Logger;
  readonly now?: () => number;
}

const predictionHref = (id: string) => `/v1/predictions/${encodeURIComponent(id)}`;

/**
 * How far back the dashboard's rates look. The scaling route's 30 s steadies an autoscaler; a
 * person watching a burst wants to see it end within seconds.
 */
export const dashboardRateWindowMs = 5_000;

/**
 * What the dashboard shows, for the deployment as a whole. Every figure comes from state all
 * gateways share, never from this process's own traffic: the queue (through scaling signals of
 * its own, on a shorter window, which also read completions off the response stream), the
 * workers' heartbeats, the response stream again for latency and failures, and the dead-letter
 * topic. So two gateways of one deployment show the same numbers, whichever took the requests.
 *
 * Its readers start with the first snapshot asked for: a gateway nobody watches pays nothing.
 */
export class DashboardState {
  private readonly outcomes: RecentOutcomes;
  private readonly deadLetters: DeadLetterTally;
  private readonly utilisation: SlotUtilisation;
  private readonly now: () => number;
  private countingSince: number | undefined;

  constructor(private readonly o: DashboardStateOptions) {
    this.now = o.now ?? Date.now;
    this.outcomes = new RecentOutcomes({ broker: o.broker, responsesTopic: o.topics.responses, logger: o.logger, now: this.now });
    this.deadLetters = new DeadLetterTally({ broker: o.broker, dlqTopic: o.topics.dlq, logger: o.logger });
    this.utilisation = new SlotUtilisation(this.now);
  }

  async snapshot(windowS: number): Promise<DashboardSnapshot> {
    await Promise.all([this.outcomes.start(), this.deadLetters.start()]);
    this.countingSince ??= this.now();
    const models = await Promise.all([...this.o.repository.models.keys()].map((model) => this.model(model, windowS)));
    return {
      at: new Date(this.now()).toISOString(),
      counting_since: new Date(this.countingSince).toISOString(),
      callback_dead_letters: this.deadLetters.callbacks(),
      models,
    };
  }

  async stop(): Promise<void> {
    await Promise.all([this.outcomes.stop(), this.deadLetters.stop(), this.o.scaling.stop()]);
  }

  private async model(model: string, windowS: number): Promise<ModelDashboard> {
    const figures = await this.o.scaling.figures(model, defaultScalingTargetS);
    const list = this.o.registry.workersFor(model);
    const serving = list.filter((w) => w.state === 'ready' && !w.draining);
    const slots = serving.reduce((total, w) => total + (w.concurrency ?? figures.slots_per_worker), 0);
    const outcomes = this.outcomes.summary(model, windowS);
    const letters = this.deadLetters.forModel(model);
    return {
      model,
      dispatch: this.o.repository.models.get(model)?.config.dispatch ?? 'async',
      backlog: figures.backlog,
      in_flight: figures.in_flight,
      oldest_age_s: figures.oldest_age_s,
      arrival_rate_per_s: figures.arrival_rate_per_s,
      completion_rate_per_s: figures.drain_rate_per_s,
      rate_window_s: figures.window_s,
      completed: outcomes.total,
      by_status: outcomes.by_status,
      latency: { window_s: windowS, queue_ms: outcomes.queue_ms, inference_ms: outcomes.inference_ms, total_ms: outcomes.total_ms },
      workers: {
        seen: figures.workers_seen,
        slots: Math.round(slots),
        slots_per_worker: figures.slots_per_worker,
        utilisation: this.utilisation.sample(model, serving, slots),
        list,
      },
      dead_letters: {
        total: letters.total,
        recent: letters.recent.flatMap((l) =>
          l.id === undefined ? [] : [{ id: l.id, href: predictionHref(l.id), ...withoutUndefined({ code: l.code, failed_at: l.failed_at }) }],
        ),
      },
      failures: outcomes.failures.map((f) => ({
        id: f.id,
        href: predictionHref(f.id),
        status: f.status === 'expired' ? ('expired' as const) : ('failed' as const),
        ...withoutUndefined({ code: f.code, message: f.message, completed_at: f.completed_at }),
      })),
    };
  }
}

