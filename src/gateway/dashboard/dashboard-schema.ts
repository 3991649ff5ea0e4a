import { Type, type Static } from '@sinclair/typebox';
import { stringEnum } from '../../protocol/string-enum.js';
import { workerSightingSchema } from '../schemas.js';
import { maxOutcomeWindowS } from './recent-outcomes.js';

/** The dashboard's data (GET /v1/dashboard): one snapshot of the whole deployment, polled by the page. */

const closed = { additionalProperties: false } as const;
const rate = (description: string) => Type.Number({ minimum: 0, description });
const count = (description: string) => Type.Integer({ minimum: 0, description });
const timestamp = (description: string) => Type.String({ format: 'date-time', description });
const link = Type.String({ description: 'Where the prediction record is read: /v1/predictions/{id}' });

/** The latency window when none is asked for. */
export const defaultDashboardWindowS = 60;

// Open, as every route's query is: a parameter the API does not know is ignored.
export const dashboardQuerySchema = Type.Object({
  window_s: Type.Optional(
    Type.String({
      pattern: '^[0-9]{1,6}$',
      description: `Seconds of final records the latency quantiles cover (1 to ${maxOutcomeWindowS}); default ${defaultDashboardWindowS}`,
    }),
  ),
});

const quantilesSchema = (what: string) =>
  Type.Object(
    {
      count: count(`Final records in the window that carry ${what}`),
      p50: Type.Union([rate('Median, ms (nearest rank)'), Type.Null()]),
      p99: Type.Union([rate('99th percentile, ms (nearest rank)'), Type.Null()]),
    },
    closed,
  );

const predictionLinkSchema = {
  id: Type.String(),
  href: link,
};

const modelDashboardSchema = Type.Object(
  {
    model: Type.String(),
    dispatch: stringEnum(['async', 'sync'] as const),
    backlog: count('Requests waiting for a worker, every lane (as GET /v1/models/{model}/scaling)'),
    in_flight: count('Requests a worker holds (as the scaling route)'),
    oldest_age_s: rate('Age of the oldest waiting request, s'),
    arrival_rate_per_s: rate('Requests queued per second: completions plus the growth of backlog + in flight, over rate_window_s'),
    completion_rate_per_s: rate('Final records per second from the response stream, over rate_window_s'),
    rate_window_s: rate('The span the two rates cover: up to the last 5 s (the scaling route looks back 30 s)'),
    completed: count('Final records of the model on the response stream since counting_since'),
    by_status: Type.Record(Type.String(), count('Final records with that status (succeeded, failed, expired, canceled) since counting_since')),
    latency: Type.Object(
      {
        window_s: rate('The span of final records the quantiles cover'),
        queue_ms: quantilesSchema('a queue wait (acceptance to the start of the attempt that finished it)'),
        inference_ms: quantilesSchema('an inference time (the model running on its batch)'),
        total_ms: quantilesSchema('a total (acceptance to completion)'),
      },
      closed,
    ),
    workers: Type.Object(
      {
        seen: count('Workers serving the model with fresh heartbeats, ready and not draining'),
        slots: count('Their slots together: batches the model can run at once'),
        slots_per_worker: rate('Slots of one worker (its concurrency; the model config until one reports)'),
        utilisation: Type.Union([Type.Number({ minimum: 0, maximum: 1, description: 'Busy slot-time over available slot-time, from heartbeats, over the last 10 s' }), Type.Null()]),
        list: Type.Array(workerSightingSchema, { description: 'Every worker seen recently for the model, whatever its state' }),
      },
      closed,
    ),
    dead_letters: Type.Object(
      {
        total: count('Request letters of the model on <prefix>.dlq (replayed ones too)'),
        recent: Type.Array(
          Type.Object({ ...predictionLinkSchema, code: Type.Optional(Type.String()), failed_at: Type.Optional(Type.String()) }, closed),
          { description: 'The newest letters, newest first' },
        ),
      },
      closed,
    ),
    failures: Type.Array(
      Type.Object(
        {
          ...predictionLinkSchema,
          status: stringEnum(['failed', 'expired'] as const),
          code: Type.Optional(Type.String()),
          message: Type.Optional(Type.String()),
          completed_at: Type.Optional(Type.String()),
        },
        closed,
      ),
      { description: 'The newest predictions that ended failed or expired, newest first' },
    ),
  },
  closed,
);

export const dashboardSchema = Type.Object(
  {
    at: timestamp('When the snapshot was taken'),
    counting_since: timestamp('When this gateway began reading the response stream and the dead letters for the dashboard'),
    callback_dead_letters: count('Webhooks the dispatcher gave up on (letters on <prefix>.dlq), every model'),
    models: Type.Array(modelDashboardSchema),
  },
  { $id: 'Dashboard', description: 'The state of the whole deployment, per model (docs/dashboard.md)', ...closed },
);
export type DashboardSnapshot = Static<typeof dashboardSchema>;
export type ModelDashboard = Static<typeof modelDashboardSchema>;
