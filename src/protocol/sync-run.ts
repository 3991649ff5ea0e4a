import { Type, type Static } from '@sinclair/typebox';
import type { ErrorBody } from './errors.js';
import type { StepTimings } from './prediction.js';

/**
 * The wire contract of `dispatch: sync` between a gateway and a worker's sync endpoint
 * (docs/architecture.md, "Synchronous dispatch"). Both sides build on it, neither owns it.
 */

/** The route as the worker's HTTP server declares it. */
export const syncRunRoute = '/v1/internal/models/:model/run';

/** The same route for one model, as the gateway calls it. */
export const syncRunPath = (model: string) => `/v1/internal/models/${encodeURIComponent(model)}/run`;

/**
 * Every call carries the deployment's shared secret (`worker.sync_secret`) in this header; the
 * worker answers a missing or wrong one with 401 SPILLWAY_SYNC_UNAUTHORIZED and runs nothing.
 */
export const syncAuthorization = (secret: string) => `Bearer ${secret}`;

export const syncRunRequestSchema = Type.Object(
  { id: Type.String({ maxLength: 128 }), input: Type.Unknown() },
  { additionalProperties: false },
);
export type SyncRunRequest = Static<typeof syncRunRequestSchema>;

/** The worker's answer: the outcome of one run, timed on the worker. */
export type SyncRunResult = {
  readonly started_at: string;
  readonly completed_at: string;
  /** The whole run on the worker: the gateway's estimate of the model's service time. */
  readonly inference_ms: number;
  /** The run's steps, as a record carries them (absent from workers older than step timing). */
  readonly timings?: StepTimings;
} & ({ readonly ok: true; readonly output: unknown } | { readonly ok: false; readonly error: ErrorBody });
