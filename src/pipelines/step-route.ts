import { requestEnvelope, type PipelineRoute, type RequestEnvelope } from '../protocol/envelope.js';
import type { PredictionRecord } from '../protocol/prediction.js';
import type { PipelineSpec } from './pipeline-spec.js';

/** The route of a request to `pipeline`, at its first step, queued when the request was created. */
export function firstStepRoute(pipeline: PipelineSpec, createdAt: string): PipelineRoute {
  return { name: pipeline.name, steps: pipeline.steps, step: 0, queued_at: createdAt, done: [] };
}

/** The model of the step after this request's, if it is a pipeline's and not at its last step. */
export function nextStepModel(request: Pick<RequestEnvelope, 'pipeline'>): string | undefined {
  const route = request.pipeline;
  return route === undefined ? undefined : route.steps[route.step + 1];
}

/**
 * The request for the next step: the same prediction (id, metadata, deadline, callback, reply
 * address and trace) with this step's output as its input, queued `now` on the next model's
 * topic. `finished` is the step's succeeded record, whose steps become the route's history.
 */
export function nextStepRequest(request: RequestEnvelope, finished: PredictionRecord, now: number): RequestEnvelope {
  const route = request.pipeline;
  const model = nextStepModel(request);
  if (route === undefined || model === undefined) throw new Error(`request ${request.id} has no next step`);
  return requestEnvelope({
    id: request.id,
    model,
    input: finished.output,
    metadata: request.metadata,
    created_at: request.created_at,
    reply_to: request.reply_to,
    traceparent: request.traceparent,
    deadline: request.deadline,
    replay: request.replay,
    callback: request.callback,
    tenant: request.tenant,
    api_key: request.api_key,
    priority: request.priority,
    pipeline: { ...route, step: route.step + 1, queued_at: new Date(now).toISOString(), done: finished.steps ?? [] },
  });
}
