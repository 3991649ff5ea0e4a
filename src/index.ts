/** The public surface for code that extends Spillway: handler authors and adapter writers. */
export type { HandlerContext, HandlerModule } from './runtimes/handler/handler-module.js';
export type { Broker, Delivery, SubscribeOptions, Subscription, TakeOptions } from './brokers/broker.js';
export type { OutgoingMessage } from './protocol/message.js';
export type {
  CallbackAttemptOutcome,
  CallbackSchedule,
  ClaimedCallback,
  IdempotencyClaimResult,
  IdempotencyKeyClaim,
  IdempotencyKeys,
  NewCallbackDelivery,
  PredictionRecords,
  ResultStore,
  StoreLifecycle,
  StoredNotice,
} from './stores/store.js';
export type { ModelRuntime, Outcome, PredictContext, RuntimeStep, StepTimer } from './runtimes/runtime.js';
export type { PredictionRecord, PredictionStatus } from './protocol/prediction.js';
export type { RequestEnvelope, ResponseEnvelope } from './protocol/envelope.js';
export { SpillwayError, errorCatalogue, type ErrorCode } from './protocol/errors.js';
