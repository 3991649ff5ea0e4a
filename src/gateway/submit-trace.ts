import type { FastifyReply } from 'fastify';
import { SpanKind, endSpan, startChild, traceparentOf, type Span, type Tracer } from '../observability/tracing.js';
import { SpillwayError } from '../protocol/errors.js';

/**
 * The gateway's spans of one submission: `receive` (the whole HTTP exchange, a child of the
 * caller's traceparent), `publish` inside it (its traceparent goes into the request envelope, so
 * the worker's spans hang below it), and `answer` from the durable publish to the reply, which
 * covers a held wait for the result.
 */
export class SubmitTrace {
  private readonly receive: Span;
  private readonly publishing: Span;
  private answering: Span | undefined;
  /** What the request envelope carries for the worker. */
  readonly traceparent: string | undefined;

  constructor(
    private readonly tracer: Tracer,
    incoming: string | undefined,
    model: string,
  ) {
    this.receive = startChild(tracer, 'POST /v1/models/{model}/predictions', incoming, {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': 'POST', 'http.route': '/v1/models/{model}/predictions', 'spillway.model': model },
    });
    this.publishing = startChild(tracer, `publish ${model}`, this.receive, { kind: SpanKind.PRODUCER, attributes: { 'spillway.model': model } });
    this.traceparent = traceparentOf(this.publishing);
  }

  /** The request is durably queued under `id`; the wait for its answer begins. */
  published(id: string): void {
    this.receive.setAttribute('spillway.prediction_id', id);
    this.publishing.setAttribute('spillway.prediction_id', id);
    this.publishing.end();
    this.answering = startChild(this.tracer, 'answer', this.receive, { attributes: { 'spillway.prediction_id': id } });
  }

  /** The reply went out (or the submission failed with `error`). */
  ended(reply: FastifyReply, error?: unknown): void {
    const failure = error === undefined ? undefined : error instanceof SpillwayError ? { code: error.code, message: error.message } : { code: 'SPILLWAY_INTERNAL', message: error instanceof Error ? error.message : 'unknown error' };
    if (this.answering === undefined) endSpan(this.publishing, failure);
    else endSpan(this.answering, failure);
    this.receive.setAttribute('http.response.status_code', error instanceof SpillwayError ? error.status : reply.statusCode);
    endSpan(this.receive, failure);
  }
}
