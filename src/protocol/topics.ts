import { randomUUID } from 'node:crypto';

/**
 * Where every stream lives and who reads it (docs/architecture.md, "Topics"). Gateways, workers,
 * the store writer and the callback dispatcher all agree on these names, so they are part of
 * the protocol rather than of any one of them.
 */
export interface Topics {
  requests(model: string): string;
  readonly responses: string;
  readonly dlq: string;
  readonly workers: string;
  /** Cancel notices for workers (see control.ts). */
  readonly control: string;
}

export function topicsFor(prefix: string): Topics {
  return {
    requests: (model) => `${prefix}.requests.${model}`,
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
