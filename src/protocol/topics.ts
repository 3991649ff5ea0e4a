import { randomUUID } from 'node:crypto';
import type { PriorityClass } from './priority.js';

/**
 * Where every stream lives and who reads it (docs/architecture.md, "Topics"). Gateways, workers,
 * the store writer and the callback dispatcher all agree on these names, so they are part of
 * the protocol rather than of any one of them.
 */
export interface Topics {
  /**
   * Where a request for `model` is queued: its tenant's own lane if it has one, else the model's
   * shared lane; on a model with priorities, a `high` or `low` request in that lane's topic of its class.
   */
  requests(model: string, tenant?: string, priority?: PriorityClass): string;
  /**
   * Every lane of a model's requests, by tier (high, normal, low; only normal unless the model
   * has priorities), the shared one first within each: workers read them all, and the model's
   * backlog is their sum.
   */
  lanes(model: string): readonly Lane[];
  readonly responses: string;
  readonly dlq: string;
  readonly workers: string;
  /** Cancel notices for workers (see control.ts). */
  readonly control: string;
}

/**
 * One line of a model's requests (docs/tenants.md, "Fair queuing"). With `queuing: fair` every
 * tenant listed in the config has a lane of its own, and workers take from the lanes in weighted
 * turns; everyone else shares the model's lane, which is the model's one topic when there are no
 * lanes at all.
 */
export interface Lane {
  readonly topic: string;
  /** Whose lane it is; undefined for the model's shared lane. */
  readonly tenant: string | undefined;
  /** Requests taken from this lane per turn while other lanes of its tier wait too. */
  readonly weight: number;
  /** The class of the requests it holds: a take serves the highest tier with work (docs/priorities.md). */
  readonly priority: PriorityClass;
}

/** The tenants that have a lane of their own, with their weights (empty: one lane per model). */
export type LaneWeights = ReadonlyMap<string, number>;

/**
 * The topic names. `prioritized` names the models with `priorities: true`: only they have
 * topics for `high` and `low`, so a model without them reads exactly the topics it always did.
 */
export function topicsFor(prefix: string, laneWeights: LaneWeights = new Map(), prioritized: ReadonlySet<string> = new Set()): Topics {
  const shared = (model: string) => `${prefix}.requests.${model}`;
  // Model names and tenant names have no dots, so a lane's topic can never be another model's,
  // and a class suffix never another lane's.
  const own = (model: string, tenant: string) => `${shared(model)}.lane.${tenant}`;
  const laneTopic = (model: string, tenant: string | undefined) => (tenant !== undefined && laneWeights.has(tenant) ? own(model, tenant) : shared(model));
  const inClass = (topic: string, priority: PriorityClass) => (priority === 'normal' ? topic : `${topic}.${priority}`);
  const tiers = (model: string): readonly PriorityClass[] => (prioritized.has(model) ? ['high', 'normal', 'low'] : ['normal']);
  return {
    requests: (model, tenant, priority) => {
      const topic = laneTopic(model, tenant);
      return priority === undefined || !prioritized.has(model) ? topic : inClass(topic, priority);
    },
    lanes: (model) =>
      tiers(model).flatMap((priority) => [
        { topic: inClass(shared(model), priority), tenant: undefined, weight: 1, priority },
        ...[...laneWeights].map(([tenant, weight]) => ({ topic: inClass(own(model, tenant), priority), tenant, weight, priority })),
      ]),
    responses: `${prefix}.responses`,
    dlq: `${prefix}.dlq`,
    workers: `${prefix}.workers`,
    control: `${prefix}.control`,
  };
}

/** The consumer group every worker of every deployment joins on a model's request topic. */
export const workerGroup = 'workers';

/** The consumer group that copies the response stream into the result store. */
export const storeWriterGroup = 'store';

/** The consumer group that turns response records into owed webhooks. */
export const callbackGroup = 'callbacks';

/** The consumer group of the analytics tap named `name` (`spillway tap --tap-name`), on the response and request topics. */
export const tapGroup = (name: string) => `tap.${name}`;

// Ephemeral groups belong to one reader, which sees the whole stream. The random part keeps a
// restarted process (same gateway or worker id) out of the group its predecessor left behind.

/** A gateway's own view of the response stream. */
export const gatewayResponsesGroup = (gatewayId: string) => `gateway.${gatewayId}.${randomUUID().slice(0, 8)}`;

/** A gateway's reader of worker heartbeats. */
export const workerRegistryGroup = () => `registry.${randomUUID()}`;

/** A worker's reader of cancel notices. */
export const workerControlGroup = (workerId: string) => `worker.${workerId}.${randomUUID().slice(0, 8)}`;

/** `spillway dlq` reading a topic from its start. */
export const dlqToolGroup = () => `dlq-tool.${randomUUID()}`;
