/**
 * The span of one call to another service: a child of the active span (the
 * activity's, in the worker), whose W3C trace context goes out with the call
 * (HTTP request headers, Kafka record headers), so the callee's spans join the
 * session's trace. Without a registered tracer provider the span records
 * nothing and no header is written.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes } from "@opentelemetry/api";

const tracer = trace.getTracer("somagent-orchestrator-outbound");

/** What the span is: `client` for a request awaiting its answer, `producer` for a message sent. */
export interface OutboundSpanOptions {
  kind: "client" | "producer";
  attributes?: Attributes;
}

/**
 * Runs `call` inside a new span named `name`, handing it the trace context
 * headers (`traceparent`, `tracestate`) to send along. The span ends when
 * `call` settles; a rejection marks it as an error and is rethrown as is.
 */
export async function withOutboundSpan<T>(
  name: string,
  options: OutboundSpanOptions,
  call: (traceHeaders: Record<string, string>) => Promise<T>,
): Promise<T> {
  const kind = options.kind === "producer" ? SpanKind.PRODUCER : SpanKind.CLIENT;
  return tracer.startActiveSpan(name, { kind, ...(options.attributes ? { attributes: options.attributes } : {}) }, async (span) => {
    const traceHeaders: Record<string, string> = {};
    propagation.inject(context.active(), traceHeaders);
    try {
      return await call(traceHeaders);
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      span.setAttribute("error.type", error instanceof Error ? error.name : "unknown");
      throw error;
    } finally {
      span.end();
    }
  });
}
