import type { Tracer } from '../observability/tracing.js';
import type { CallbackSettings } from '../callbacks/callback-settings.js';
import type { Broker } from '../brokers/broker.js';
import type { InputValidator } from '../models/input-validator.js';
import type { ModelRepository } from '../models/model-repository.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Topics } from '../protocol/topics.js';
import type { ApiKeys, CallbackSchedule, IdempotencyKeys, LimitState, PredictionRecords, StoreLifecycle } from '../stores/store.js';
import type { PredictionRecord } from '../protocol/prediction.js';
import type { Backpressure } from './backpressure.js';
import type { TenantLimits } from './tenancy/tenant-limits.js';
import type { QueuePlaces } from './queue-places.js';
import type { RecordListeners } from './record-listeners.js';
import type { ScalingSignals } from './scaling/scaling-signals.js';
import type { SyncDispatcher } from './sync-dispatcher.js';
import type { Waiters } from './waiters.js';
import type { WorkerRegistry } from './worker-registry.js';

/**
 * The parts of the result store a gateway uses: records (and their notices), idempotency keys,
 * the webhooks owed for a prediction (shown on its record), API keys and tenant limits, and
 * ping for readiness. Scheduling
 * and sending webhooks is the dispatcher's.
 */
export type GatewayStore = PredictionRecords &
  IdempotencyKeys &
  Pick<CallbackSchedule, 'callbackDeliveries'> &
  Pick<ApiKeys, 'getApiKey' | 'hasApiKeys'> &
  LimitState &
  Pick<StoreLifecycle, 'ping'>;

/** What the routes share: built once by createGateway, read-only to them. */
export interface GatewayContext {
  readonly gatewayId: string;
  /** Checks submitted callbacks; absent: callbacks are refused. */
  readonly callbacks?: Pick<CallbackSettings, 'policy' | 'secrets' | 'tenantSecrets'>;
  readonly broker: Broker;
  readonly store: GatewayStore;
  readonly topics: Topics;
  /** Makes the gateway's spans; undefined while tracing is off. */
  readonly tracer?: Tracer | undefined;
  /** Requests of a model waiting or leased, across all its lanes. */
  readonly queueDepth: (model: string) => Promise<number>;
  readonly repository: ModelRepository;
  readonly validators: ReadonlyMap<string, InputValidator>;
  readonly waiters: Waiters;
  /** Event streams waiting for records of an id. */
  readonly listeners: RecordListeners;
  readonly registry: WorkerRegistry;
  readonly syncDispatcher: SyncDispatcher;
  /** Refuses requests to a model whose queue is at its max_queue_depth. */
  readonly backpressure: Backpressure;
  /** Per-tenant rate, open predictions and held connections, counted in the shared store. */
  readonly limits: TenantLimits;
  /**
   * Final records this process stored (its store writer's, its cancels and expiries): each is
   * counted once in the metrics and gives back its tenant's place.
   */
  readonly finished: (records: readonly PredictionRecord[]) => void;
  readonly metrics: GatewayMetrics;
  /** What an autoscaler reads, for the deployment as a whole (GET /v1/models/{model}/scaling). */
  readonly scaling: ScalingSignals;
  /** Where the requests this gateway published stand in line, shown on their queued records. */
  readonly queuePlaces: QueuePlaces;
  /** Cap on Prefer: wait, in seconds. */
  readonly maxWaitS: number;
  readonly isClosing: () => boolean;
  /** Aborted when the gateway starts closing: long-lived answers (event streams) end then. */
  readonly shutdown: AbortSignal;
}
