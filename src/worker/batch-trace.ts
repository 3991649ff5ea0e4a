import type { Delivery } from '../brokers/broker.js';
import { SpanKind, endSpan, startChild, traceparentOf, type Span, type Tracer } from '../observability/tracing.js';
import type { RequestEnvelope } from '../protocol/envelope.js';
import type { ErrorBody } from '../protocol/errors.js';

/**
 * The worker's spans of one batch, one set per request, each below the span whose traceparent
 * the request carried (the gateway's publish, or the previous pipeline step's run): `queue`
 * from the publish to the take, `run` from the take until the request is settled, and `publish`
 * around its result's durable publish.
 */
export class BatchTrace {
  private readonly runs = new Map<string, Span>();

  constructor(
    private readonly tracer: Tracer,
    model: string,
    jobs: readonly { readonly delivery: Delivery; readonly request: RequestEnvelope }[],
    startedAt: number,
  ) {
    for (const { delivery, request } of jobs) {
      const attributes = { 'spillway.model': model, 'spillway.prediction_id': request.id, 'spillway.attempt': delivery.attempt };
      const queued = startChild(tracer, `queue ${model}`, request.traceparent, { kind: SpanKind.CONSUMER, attributes, startTime: delivery.publishedAt });
      queued.end(startedAt);
      this.runs.set(request.id, startChild(tracer, `run ${model}`, request.traceparent, { kind: SpanKind.CONSUMER, attributes, startTime: startedAt }));
    }
  }

  /** What the next pipeline step's request carries, so that step's spans hang below this one's run. */
  traceparentFor(id: string): string | undefined {
    const run = this.runs.get(id);
    return run === undefined ? undefined : traceparentOf(run);
  }

  /** Starts a publish span below each request's run; the returned function ends them. */
  publishing(ids: readonly string[], topic: string): () => void {
    const spans = ids.flatMap((id) => {
      const run = this.runs.get(id);
      return run === undefined ? [] : [startChild(this.tracer, `publish ${topic}`, run, { kind: SpanKind.PRODUCER, attributes: { 'spillway.prediction_id': id } })];
    });
    return () => {
      for (const span of spans) span.end();
    };
  }

  /** Ends every run span, as failed for the requests that failed. */
  ended(errors: ReadonlyMap<string, ErrorBody>): void {
    for (const [id, run] of this.runs) {
      const error = errors.get(id);
      endSpan(run, error === undefined ? undefined : { code: error.code, message: error.message });
    }
    this.runs.clear();
  }
}
