import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { ModelSpec } from '../../models/model-config.js';
import type { PipelineSpec } from '../../pipelines/pipeline-spec.js';
import { SpillwayError } from '../../protocol/errors.js';
import { withoutUndefined } from '../../protocol/without-undefined.js';
import type { GatewayContext } from '../context.js';
import { authCodes, jsonResponse, pathParamCodes, problemResponses } from '../responses.js';
import { modelParamsSchema } from '../schemas.js';

const summary = Type.Unsafe<unknown>({ $ref: 'ModelSummary#' });

export function modelRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  const describe = async (spec: ModelSpec) => {
    const c = spec.config;
    return withoutUndefined({
      name: spec.name,
      kind: 'model' as const,
      state: 'ready' as const,
      description: c.description,
      runtime: c.runtime,
      inputs: c.inputs,
      outputs: c.outputs,
      features: c.features,
      labels: c.classification?.labels,
      max_batch_size: c.max_batch_size,
      concurrency: c.concurrency,
      max_attempts: c.max_attempts,
      dispatch: c.dispatch,
      queue_depth: await ctx.queueDepth(spec.name),
      workers: ctx.registry.workersFor(spec.name),
    });
  };
  // Its workers are those of its steps' models, listed under each model.
  const describePipeline = (pipeline: PipelineSpec) =>
    withoutUndefined({ name: pipeline.name, kind: 'pipeline' as const, state: 'ready' as const, description: pipeline.description, steps: [...pipeline.steps], workers: [] });
  const describeFailure = (name: string) => {
    const failure = ctx.repository.failures.find((f) => f.name === name);
    return failure === undefined
      ? undefined
      : { name, kind: failure.kind, state: 'failed' as const, error: failure.error.message, workers: ctx.registry.workersFor(name) };
  };

  app.get(
    '/v1/models',
    {
      config: { scope: 'any' },
      schema: {
        summary: 'List models',
        tags: ['models'],
        response: {
          200: jsonResponse('Every model of the repository', Type.Object({ models: Type.Array(summary) }, { additionalProperties: false })),
          ...problemResponses(authCodes),
        },
      },
    },
    async () => ({
      models: [
        ...(await Promise.all([...ctx.repository.models.values()].map(describe))),
        ...[...ctx.repository.pipelines.values()].map(describePipeline),
        ...ctx.repository.failures.map((f) => describeFailure(f.name)),
      ],
    }),
  );

  app.get<{ Params: { model: string } }>(
    '/v1/models/:model',
    {
      config: { scope: 'any' },
      schema: {
        summary: 'Describe a model: config, queue depth, recent workers',
        tags: ['models'],
        params: modelParamsSchema,
        response: { 200: jsonResponse('The model', summary), ...problemResponses(pathParamCodes, authCodes, ['SPILLWAY_MODEL_NOT_FOUND']) },
      },
    },
    async (request) => {
      const spec = ctx.repository.models.get(request.params.model);
      if (spec !== undefined) return describe(spec);
      const pipeline = ctx.repository.pipelines.get(request.params.model);
      if (pipeline !== undefined) return describePipeline(pipeline);
      const failed = describeFailure(request.params.model);
      if (failed !== undefined) return failed;
      throw new SpillwayError('SPILLWAY_MODEL_NOT_FOUND', `no model named "${request.params.model}"`);
    },
  );
}
