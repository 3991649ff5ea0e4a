import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SpillwayError } from '../../protocol/errors.js';
import type { PredictionRecord } from '../../protocol/prediction.js';
import type { GatewayContext } from '../context.js';
import { parseJsonBody } from '../json-body.js';
import { submitPrediction, type SubmitRequest } from '../submit.js';
import { inferAnswer } from './infer-answer.js';
import { readInferRequest, type InferCall } from './infer-request.js';
import { answerOipError, answerOipNotFound } from './oip-error.js';
import { findSignature, modelMetadata, type OipSignature } from './signature.js';

type ModelRequest = FastifyRequest<{ Params: { model: string; version?: string } }>;

/** The binary tensor data extension's header: the JSON part's length, binary tensors after it. */
const binaryHeader = 'inference-header-content-length';

const serverMetadata = {
  name: 'spillway',
  version: (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version,
  // None of the protocol's optional extensions (binary data, classification, shared memory, ...).
  extensions: [] as string[],
};

/**
 * The Open Inference Protocol v2 REST endpoints (docs/oip-v2.md), in a scope of their own so
 * that every error on /v2, auth and limits included, answers `{"error": ...}`. Inference goes
 * through the same submit path as /v1; only the body in and the answer out are translated.
 */
export function oipRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  void app.register(
    (v2, _options, done) => {
      v2.setErrorHandler(answerOipError);
      v2.setNotFoundHandler(answerOipNotFound);
      // tritonclient sends its JSON with no Content-Type at all.
      v2.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, parsed) => {
        try {
          parsed(null, parseJsonBody(body as Buffer));
        } catch (error) {
          parsed(error as Error, undefined);
        }
      });
      // The /v1 OpenAPI document describes /v1; the protocol has its own specification.
      const hide = { schema: { hide: true } };
      v2.get('/health/live', hide, async () => ({ live: true }));
      v2.get('/health/ready', hide, async () => {
        await checkGatewayReady(ctx);
        return { ready: true };
      });
      v2.get('/', { ...hide, config: { scope: 'any' } }, async () => serverMetadata);
      for (const base of ['/models/:model', '/models/:model/versions/:version']) {
        v2.get(base, { ...hide, config: { scope: 'any' } }, async (request: ModelRequest) =>
          modelMetadata(findSignature(ctx, request.params.model, request.params.version)),
        );
        v2.get(`${base}/ready`, { ...hide, config: { scope: 'any' } }, async (request: ModelRequest) => {
          const signature = findSignature(ctx, request.params.model, request.params.version);
          checkModelReady(ctx, signature);
          return { name: signature.name, ready: true };
        });
        v2.post(
          `${base}/infer`,
          { ...hide, config: { scope: 'predict' }, preParsing: refuseBinaryData, preSerialization: translateRecord },
          (request: ModelRequest, reply) => infer(ctx, request, reply),
        );
      }
      done();
    },
    { prefix: '/v2' },
  );
}

/** The calls being answered, for the answer's translation. */
const calls = new WeakMap<FastifyRequest, InferCall>();

/**
 * Checks and translates the v2 request, then hands it to the submit path as the /v1 request it
 * stands for: held for the result as long as the gateway allows unless the client says otherwise
 * (Prefer) or asks for `spillway_async`.
 */
async function infer(ctx: GatewayContext, request: ModelRequest, reply: FastifyReply): Promise<FastifyReply> {
  const call = readInferRequest(findSignature(ctx, request.params.model, request.params.version), request.body);
  calls.set(request, call);
  const submit = request as unknown as SubmitRequest;
  submit.body = call.body;
  if (call.async) submit.headers.prefer = 'respond-async';
  else submit.headers.prefer ??= `wait=${ctx.maxWaitS}`;
  return submitPrediction(ctx, submit, reply);
}

/** Route hook, before the body is read: a binary body would otherwise fail as malformed JSON, saying nothing useful. */
async function refuseBinaryData(request: FastifyRequest): Promise<void> {
  if (request.headers[binaryHeader] !== undefined) {
    throw new SpillwayError(
      'SPILLWAY_INVALID_REQUEST',
      'the binary tensor data extension is not supported: send tensors as JSON (tritonclient: binary_data=False on inputs and requested outputs)',
    );
  }
}

/** Route hook: the record the submit path answers with becomes the protocol's answer. */
function translateRecord(request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (error: null, payload: unknown) => void): void {
  const call = calls.get(request);
  if (call === undefined || !isRecord(payload)) return done(null, payload);
  const answer = inferAnswer(call, payload);
  reply.code(answer.status);
  done(null, answer.body);
}

const isRecord = (payload: unknown): payload is PredictionRecord =>
  typeof payload === 'object' && payload !== null && typeof (payload as Partial<PredictionRecord>).id === 'string' && typeof (payload as Partial<PredictionRecord>).created_at === 'string';

/** Ready as /readyz is: open, and the queue and the result store answer. */
async function checkGatewayReady(ctx: GatewayContext): Promise<void> {
  if (ctx.isClosing()) throw new SpillwayError('SPILLWAY_SHUTTING_DOWN');
  const [broker, store] = await Promise.allSettled([ctx.broker.ping(), ctx.store.ping()]);
  if (broker.status === 'rejected') throw new SpillwayError('SPILLWAY_BROKER_UNAVAILABLE', 'the queue does not answer', { cause: broker.reason });
  if (store.status === 'rejected') throw new SpillwayError('SPILLWAY_STORE_UNAVAILABLE', 'the result store does not answer', { cause: store.reason });
}

/**
 * A model is ready when the gateway would take a request for it: an async model's queue takes
 * requests before any worker is there (they wait for one), unless every worker seen failed to
 * load it; a sync model needs a ready worker now.
 */
function checkModelReady(ctx: GatewayContext, signature: OipSignature): void {
  if (ctx.isClosing()) throw new SpillwayError('SPILLWAY_SHUTTING_DOWN');
  const { model } = signature;
  const workers = ctx.registry.workersFor(model.name);
  const serving = workers.filter((w) => w.state === 'ready' && !w.draining);
  if (model.config.dispatch === 'sync' && serving.length === 0) throw new SpillwayError('SPILLWAY_NO_WORKERS', `no worker is serving model ${model.name}`);
  if (workers.length > 0 && workers.every((w) => w.state === 'failed')) {
    throw new SpillwayError('SPILLWAY_MODEL_LOAD_FAILED', `every worker failed to load model ${model.name}: ${workers[0]?.error ?? 'no reason given'}`);
  }
}
