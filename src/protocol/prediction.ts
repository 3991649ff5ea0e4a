import type { ErrorBody } from './errors.js';

export const predictionStatuses = ['queued', 'running', 'succeeded', 'failed', 'expired', 'canceled'] as const;
export type PredictionStatus = (typeof predictionStatuses)[number];

export interface PredictionMetrics {
  /** From acceptance to the start of the attempt that produced this record. */
  readonly queue_ms?: number;
  /** Time inside the model runtime for the batch that held this prediction. */
  readonly inference_ms?: number;
  /** From acceptance to completion. */
  readonly total_ms?: number;
}

/**
 * What a client reads from GET /v1/predictions/{id}, and what the response stream carries: each
 * event on that stream is the whole record at one moment, so any reader can rebuild state.
 */
export interface PredictionRecord {
  readonly id: string;
  readonly model: string;
  readonly status: PredictionStatus;
  readonly output?: unknown;
  readonly error?: ErrorBody;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly created_at: string;
  readonly started_at?: string;
  readonly completed_at?: string;
  /** How many times a worker has started this prediction. */
  readonly attempts: number;
  readonly worker?: string;
  /** When the client stops wanting the result: no worker starts the prediction after it. */
  readonly deadline?: string;
  /** Replay generation: a record of a later replay supersedes any of an earlier one. */
  readonly replay?: number;
  /** Where to POST status changes; the delivery state is added by the store on read. */
  readonly callback?: CallbackRequest & { readonly deliveries?: readonly CallbackDeliveryView[] };
  readonly metrics: PredictionMetrics;
}

/** The events a client may ask to be called back for. */
export const callbackEventNames = ['running', 'completed'] as const;
export type CallbackEventName = (typeof callbackEventNames)[number];

/** A client's callback request, as it travels with the prediction. */
export interface CallbackRequest {
  readonly url: string;
  readonly events: readonly CallbackEventName[];
}

/** One owed webhook of a prediction, as GET /v1/predictions/{id} shows it. */
export interface CallbackDeliveryView {
  readonly event: CallbackEventName;
  readonly webhook_id: string;
  readonly state: 'pending' | 'delivered' | 'gone' | 'dead';
  readonly attempts: number;
  readonly last_status?: number;
  readonly last_error?: string;
  readonly delivered_at?: string;
  readonly next_attempt_at?: string;
}

export function isTerminal(status: PredictionStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'expired' || status === 'canceled';
}

/**
 * Status only moves forward, and the first terminal status recorded wins: a redelivered request
 * that runs twice cannot change what a client has already been told.
 */
export function statusRank(status: PredictionStatus): number {
  switch (status) {
    case 'queued':
      return 0;
    case 'running':
      return 1;
    case 'succeeded':
    case 'failed':
    case 'expired':
    case 'canceled':
      return 2;
  }
}

/**
 * Order of records for one id across replays: a dead-lettered request that an operator replays
 * starts a new generation, whose records (even `queued`) supersede the old terminal one.
 */
export function storeRank(record: Pick<PredictionRecord, 'status' | 'replay'>): number {
  return (record.replay ?? 0) * 3 + statusRank(record.status);
}

export function supersedes(next: PredictionRecord, current: PredictionRecord | undefined): boolean {
  if (current === undefined) return true;
  const rankNext = storeRank(next);
  const rankCurrent = storeRank(current);
  if (rankNext !== rankCurrent) return rankNext > rankCurrent;
  // A later attempt's "running" replaces an earlier one; terminal records are never replaced.
  return next.status === 'running' && next.attempts > current.attempts;
}
