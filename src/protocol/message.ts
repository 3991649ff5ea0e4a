/**
 * A message as Spillway publishes it, whatever the broker. It lives here rather than beside the
 * broker interface so that protocol, which builds every message, depends on no other layer.
 */
export interface OutgoingMessage {
  /** Routing key: on partitioned brokers, messages with the same key stay in order. */
  readonly key?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly value: string;
}
