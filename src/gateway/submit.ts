import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { secretsFor, validateCallback } from '../callbacks/callback-settings.js';
import type { ModelSpec } from '../models/model-config.js';
import type { PipelineSpec } from '../pipelines/pipeline-spec.js';
import { firstStepRoute } from '../pipelines/step-route.js';
import type { OutgoingMessage } from '../protocol/message.js';
import { requestEnvelope, requestMessage, type RequestEnvelope } from '../protocol/envelope.js';
import { SpillwayError } from '../protocol/errors.js';
import type { CallbackRequest, PredictionRecord, QueueSlot } from '../protocol/prediction.js';
import { queuedRecord } from '../protocol/prediction-records.js';
import { priorityClassOf } from '../protocol/priority.js';
import { markAccepted } from './accepted.js';
import { Admission } from './admission.js';
import type { GatewayContext } from './context.js';
import { resolveDeadline } from './deadline.js';
import { expireIfOverdue, expiryGraceMs } from './expire-overdue.js';
import { idempotencyKeyHeader, replayPrediction } from './idempotency.js';
import { heldWaitS } from './prefer.js';
import { runSync } from './run-sync.js';
import { SubmitTrace } from './submit-trace.js';
import { callerOf } from './tenancy/auth-hook.js';
import { recordTenant, type Caller } from './tenancy/authenticator.js';
import type { Waiter } from './waiters.js';
import type { PredictionRequestBody } from './schemas.js';

export type SubmitRequest = FastifyRequest<{ Params: { model: string }; Body: PredictionRequestBody }>;

/**
 * POST /v1/models/{model}/predictions, as a sequence of steps. Each step passes or throws a
 * SpillwayError, which the gateway answers as problem+json. The checks before `Admission.claim`
 * hold nothing; from there on the admission holds the Idempotency-Key, the queue slot and the
 * waiter, and its one `release()` gives back whatever the queue did not accept.
 *
 * The caller was authenticated before the body was read (tenancy/auth-hook.ts); its rate is
 * checked first, its other limits are places the admission holds. A new check goes among the
 * checks; a new place to send the request replaces `publish`.
 */
export async function submitPrediction(ctx: GatewayContext, request: SubmitRequest, reply: FastifyReply): Promise<FastifyReply> {
  if (ctx.tracer === undefined) return submitSteps(ctx, request, reply, undefined);
  const incoming = request.headers['traceparent'];
  const trace = new SubmitTrace(ctx.tracer, typeof incoming === 'string' ? incoming : undefined, request.params.model);
  try {
    const answered = await submitSteps(ctx, request, reply, trace);
    trace.ended(reply);
    return answered;
  } catch (error) {
    trace.ended(reply, error);
    throw error;
  }
}

async function submitSteps(ctx: GatewayContext, request: SubmitRequest, reply: FastifyReply, trace: SubmitTrace | undefined): Promise<FastifyReply> {
  const caller = callerOf(request);
  const limited = ctx.limits.appliesTo(caller);
  const { spec, pipeline } = findModel(ctx, request.params.model);
  refuseWhileClosing(ctx);
  if (limited) await limitRate(ctx, caller, request.params.model, reply);
  checkInput(ctx, spec, request);
  const callback = await checkCallback(ctx, caller, request.body);
  const envelope = newEnvelope(ctx, caller, spec, pipeline, request, callback, trace?.traceparent);
  const queued = queuedRecord(envelope);
  const waitS = heldWaitS(request.headers.prefer, ctx.maxWaitS);

  const keyHeaders = request.raw.headersDistinct[idempotencyKeyHeader];
  const admission = await Admission.claim(ctx, envelope, { keyHeaders, body: request.body, log: request.log });
  if (admission.original !== undefined) return answerReplay(ctx, reply, admission.original, request);
  let slot: QueueSlot | undefined;
  try {
    if (spec.config.dispatch === 'sync') {
      const ran = await runSync(ctx, envelope, request.log);
      admission.accepted();
      markAccepted(request, queued);
      return reply.code(200).send(ran);
    }
    const message = checkMessageSize(ctx, requestMessage(envelope));
    await admission.takeSlot();
    if (limited) {
      await admission.takeTenantPlace(caller);
      await admission.holdCappedWaiter(caller, waitS);
    } else admission.holdWaiter(waitS);
    slot = await publish(ctx, envelope, message);
    trace?.published(envelope.id);
    admission.accepted();
  } finally {
    await admission.release();
  }
  markAccepted(request, queued);
  if (!limited) return answerQueued(ctx, request, reply, queued, slot, admission.waiter, waitS);
  try {
    return await answerQueued(ctx, request, reply, queued, slot, admission.waiter, waitS);
  } finally {
    await admission.waitEnded();
  }
}

/** The model a request goes to: the one named, or a pipeline's first step (whose input it must fit). */
function findModel(ctx: GatewayContext, name: string): { spec: ModelSpec; pipeline?: PipelineSpec } {
  const spec = ctx.repository.models.get(name);
  if (spec !== undefined) return { spec };
  const pipeline = ctx.repository.pipelines.get(name);
  const first = pipeline === undefined ? undefined : ctx.repository.models.get(pipeline.steps[0] ?? '');
  if (pipeline !== undefined && first !== undefined) return { spec: first, pipeline };
  const failure = ctx.repository.failures.find((f) => f.name === name);
  if (failure !== undefined) throw new SpillwayError('SPILLWAY_MODEL_LOAD_FAILED', failure.error.message, { details: failure.error.details });
  throw new SpillwayError('SPILLWAY_MODEL_NOT_FOUND', `no model named "${name}"`);
}

function refuseWhileClosing(ctx: GatewayContext): void {
  if (ctx.isClosing()) throw new SpillwayError('SPILLWAY_SHUTTING_DOWN');
}

/** The caller's request rate (per tenant, and per model where set), counted on every gateway. */
async function limitRate(ctx: GatewayContext, caller: Caller, model: string, reply: FastifyReply): Promise<void> {
  const headers = await ctx.limits.checkRate(caller, model);
  if (headers !== undefined) reply.headers(headers);
}

/** The body fits the model's size limit and its declared inputs. */
function checkInput(ctx: GatewayContext, spec: ModelSpec, request: SubmitRequest): void {
  const size = Number(request.headers['content-length'] ?? 0);
  const limit = spec.config.limits.max_input_bytes;
  if (size > limit) throw new SpillwayError('SPILLWAY_BODY_TOO_LARGE', `model ${spec.name} takes at most ${limit} bytes per request; got ${size}`);
  const problems = ctx.validators.get(spec.name)?.(request.body.input) ?? [];
  if (problems.length > 0) throw new SpillwayError('SPILLWAY_INVALID_INPUT', `the input does not fit model ${spec.name}`, { details: problems });
}

/** A callback is signed with its tenant's own secrets where it has them, else with the deployment's. */
function checkCallback(ctx: GatewayContext, caller: Caller, body: PredictionRequestBody): Promise<CallbackRequest | undefined> {
  if (body.callback === undefined) return Promise.resolve(undefined);
  const c = ctx.callbacks;
  return validateCallback(body.callback, c === undefined ? undefined : { policy: c.policy, secrets: secretsFor(c, recordTenant(caller)) });
}

function newEnvelope(
  ctx: GatewayContext,
  caller: Caller,
  spec: ModelSpec,
  pipeline: PipelineSpec | undefined,
  request: SubmitRequest,
  callback: CallbackRequest | undefined,
  /** The gateway's publish span when tracing; else the caller's traceparent travels as it came. */
  traced: string | undefined,
): RequestEnvelope {
  const now = Date.now();
  const traceparent = traced ?? request.headers['traceparent'];
  const createdAt = new Date(now).toISOString();
  return requestEnvelope({
    id: randomUUID(),
    model: spec.name,
    input: request.body.input,
    metadata: request.body.metadata ?? {},
    created_at: createdAt,
    reply_to: ctx.gatewayId,
    traceparent: typeof traceparent === 'string' ? traceparent : undefined,
    deadline: resolveDeadline(request.body, spec.config.timeout_ms, now),
    callback,
    pipeline: pipeline === undefined ? undefined : firstStepRoute(pipeline, createdAt),
    tenant: recordTenant(caller),
    api_key: caller.keyId,
    priority: request.body.priority === undefined ? undefined : priorityClassOf(request.body.priority),
  });
}

/** Checked here, so an oversized request is refused, not lost inside the broker's client. */
function checkMessageSize(ctx: GatewayContext, message: OutgoingMessage): OutgoingMessage {
  const max = ctx.broker.maxMessageBytes;
  if (message.value.length > max / 3 && Buffer.byteLength(message.value) > max) {
    throw new SpillwayError('SPILLWAY_BODY_TOO_LARGE', `the request is over the queue's message limit of ${max} bytes`);
  }
  return message;
}

/** Where the broker put it, when it says (the queued record keeps that for every gateway). */
async function publish(ctx: GatewayContext, envelope: RequestEnvelope, message: OutgoingMessage): Promise<QueueSlot | undefined> {
  const topic = ctx.topics.requests(envelope.model, envelope.tenant, envelope.priority);
  let positions: readonly (string | undefined)[];
  try {
    positions = await ctx.broker.publish(topic, [message]);
  } catch (error) {
    throw new SpillwayError('SPILLWAY_BROKER_UNAVAILABLE', 'the queue did not accept the request; nothing was queued', { cause: error });
  }
  const position = positions[0];
  if (position === undefined) return undefined;
  const slot = { topic, position };
  ctx.queuePlaces.remember(envelope.id, slot);
  return slot;
}

async function answerReplay(ctx: GatewayContext, reply: FastifyReply, original: PredictionRecord, request: SubmitRequest): Promise<FastifyReply> {
  const replay = await replayPrediction(ctx, original, request.headers.prefer);
  return reply.code(replay.status).headers(replay.headers).send(replay.record);
}

/**
 * The request is queued: hold the connection for the result if the client asked to wait, else
 * answer 202. The client learns the id only from this answer, so the queued record is stored
 * only when that answer is a 202 it will poll with; a 200 carries the stored final record. If
 * the write fails, the store writer records the prediction from the response stream when it
 * completes.
 */
async function answerQueued(
  ctx: GatewayContext,
  request: SubmitRequest,
  reply: FastifyReply,
  queued: PredictionRecord,
  /** Where the broker put it: stored with the record, for the other gateways to read its place. */
  slot: QueueSlot | undefined,
  waiter: Waiter | undefined,
  waitS: number,
): Promise<FastifyReply> {
  const { id, model } = queued;
  reply.header('location', `/v1/predictions/${id}`);
  if (waiter !== undefined) {
    reply.header('preference-applied', `wait=${waitS}`);
    // A held client learns of an expiry when it happens, not only when a worker reaches the request.
    const expiresInMs = queued.deadline === undefined ? Infinity : Date.parse(queued.deadline) - Date.now() + expiryGraceMs;
    const expiry = expiresInMs < waitS * 1000 ? setTimeout(() => void expireIfOverdue(ctx, queued, request.log), expiresInMs) : undefined;
    const done = await waiter.wait(waitS * 1000);
    clearTimeout(expiry);
    if (done !== undefined) {
      ctx.metrics.requestAnswered(model, 200);
      return reply.code(200).send(done);
    }
  }
  const stored = slot === undefined ? queued : { ...queued, queue_slot: slot };
  await ctx.store.put([stored]).catch((error: unknown) => request.log.warn({ err: error, id }, 'could not store queued record'));
  ctx.metrics.requestAnswered(model, 202);
  const current = waiter === undefined ? queued : ((await ctx.store.get(id).catch(() => undefined)) ?? queued);
  return reply.code(202).send(current);
}
