import { randomUUID } from 'node:crypto';

/**
 * Where every stream lives and who reads it (docs/architecture.md, "Topics"). Gateways, workers,
 * the store writer and the callback dispatcher all agree on these names, so they are part of
 * the protocol rather than of any one of them.
 */
export interface Topics {
  /** Where a request for `model` is queued: its tenant's own lane if it has one, else the model's shared lane. */
  requests(model: string, tenant?: string): string;
  /** Every lane of a model's requests, the shared one first: workers read them all, and the model's backlog is their sum. */
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
  /** Requests taken from this lane per turn while other lanes wait too. */
  readonly weight: number;
}

/** The tenants that have a lane of their own, with their weights (empty: one lane per model). */
export type LaneWeights = ReadonlyMap<string, number>;

export function topicsFor(prefix: string, laneWeights: LaneWeights = new Map()): Topics {
  const shared = (model: string) => `${prefix}.requests.${model}`;
  // Model names have no dots, so a lane's topic can never be another model's.
  const own = (model: string, tenant: string) => `${shared(model)}.lane.${tenant}`;
  return {
    requests: (model, tenant) => (tenant !== undefined && laneWeights.has(tenant) ? own(model, tenant) : shared(model)),
    lanes: (model) => [
      { topic: shared(model), tenant: undefined, weight: 1 },
      ...[...laneWeights].map(([tenant, weight]) => ({ topic: own(model, tenant), tenant, weight })),
    ],
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
