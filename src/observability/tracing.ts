import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-node';

export { SpanKind, SpanStatusCode, type Span, type Tracer };

export interface TracingSettings {
  /** OTLP/HTTP traces URL; undefined: tracing off. */
  readonly otlp_endpoint?: string | undefined;
  readonly service_name: string;
  readonly sample_ratio: number;
}

export interface Tracing {
  /** Undefined while tracing is off: every place that would make a span skips it. */
  readonly tracer: Tracer | undefined;
  /** Sends what is buffered and stops. */
  shutdown(): Promise<void>;
}

const off: Tracing = { tracer: undefined, shutdown: async () => undefined };

/**
 * The tracing of one process or thread: a provider per role it runs (a worker thread runs a
 * worker and a dispatcher), shut down together as the last step of stopping, after every part
 * has finished, so the spans of the last requests are sent rather than lost with the buffer.
 */
export class ProcessTracing {
  private readonly started: Tracing[] = [];

  constructor(private readonly settings: TracingSettings) {}

  tracerFor(role: string): Tracer | undefined {
    const tracing = startTracing(this.settings, role);
    this.started.push(tracing);
    return tracing.tracer;
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.started.map((t) => t.shutdown()));
  }
}
const propagator = new W3CTraceContextPropagator();

/**
 * Starts exporting this process's spans (one call per process or thread, with its role), or
 * returns the tracing that is off. Nothing is registered globally: spans are made through the
 * tracer returned here and their parents are passed explicitly, because a request's trace
 * crosses the queue in a message header rather than in an async context.
 */
export function startTracing(settings: TracingSettings, role: string): Tracing {
  if (settings.otlp_endpoint === undefined) return off;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.service_name, 'spillway.role': role }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sample_ratio) }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.otlp_endpoint }))],
  });
  return { tracer: provider.getTracer('spillway'), shutdown: () => provider.shutdown() };
}

/** The context a W3C traceparent names (the root context when there is none or it is malformed). */
export function contextOf(traceparent: string | undefined): Context {
  if (traceparent === undefined) return ROOT_CONTEXT;
  return propagator.extract(ROOT_CONTEXT, { traceparent }, { get: (_carrier: unknown, key: string) => (key === 'traceparent' ? traceparent : undefined), keys: () => ['traceparent'] });
}

/** The W3C traceparent of a span: what a message carries so its consumer's spans join the trace. */
export function traceparentOf(span: Span): string | undefined {
  const carrier: { traceparent?: string } = {};
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, { set: (c, key, value) => ((c as Record<string, string>)[key] = value) });
  return carrier.traceparent;
}

/** A span that is a child of `parent` (a span, or a traceparent from a message). */
export function startChild(
  tracer: Tracer,
  name: string,
  parent: Span | string | undefined,
  options: { kind?: SpanKind; attributes?: Attributes; startTime?: number } = {},
): Span {
  const context = typeof parent === 'object' ? trace.setSpan(ROOT_CONTEXT, parent) : contextOf(parent);
  return tracer.startSpan(name, options, context);
}

/** Ends a span as failed when there is an error, as ok otherwise. */
export function endSpan(span: Span, error?: { code: string; message: string }, endTime?: number): void {
  if (error !== undefined) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    span.setAttribute('spillway.error.code', error.code);
  }
  span.end(endTime);
}
