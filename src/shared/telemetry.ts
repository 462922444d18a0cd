/**
 * OpenTelemetry tracing for the API and the worker. With
 * `OTEL_EXPORTER_OTLP_ENDPOINT` set, a global tracer provider exports spans
 * over OTLP/HTTP to `{endpoint}/v1/traces`, W3C `traceparent` propagates and
 * the active span follows async calls; without it nothing is registered, the
 * tracer records nothing and callers leave their tracing interceptors out.
 */
import { trace, type Tracer } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider, type ReadableSpan, type SpanProcessor } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { TelemetryConfig } from "../config.js";

/** Where finished spans go, for spans made outside the process's tracer (the workflow sandbox's). */
export interface SpanSink {
  processor: SpanProcessor;
  resource: Resource;
}

/** The process's tracer and how to flush it on exit. */
export interface Telemetry {
  tracer: Tracer;
  /** Set only when spans are exported: tracing interceptors are wired only then. */
  spans: SpanSink | undefined;
  /** Flushes pending spans and stops exporting; never throws. */
  shutdown(): Promise<void>;
}

/** How long one OTLP export may take before it is dropped (the batch processor's own timeout is 30 s). */
const EXPORT_TIMEOUT_MS = 10_000;

/** Sets up tracing from the configuration; registers the global provider, propagator and context manager when exporting. */
export function createTelemetry(config: TelemetryConfig): Telemetry {
  if (!config.otlpEndpoint) {
    return { tracer: trace.getTracer(config.serviceName), spans: undefined, shutdown: async () => {} };
  }
  const url = new URL("v1/traces", config.otlpEndpoint.href.endsWith("/") ? config.otlpEndpoint : `${config.otlpEndpoint.href}/`);
  const resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName });
  const processor = new BatchSpanProcessor(new OTLPTraceExporter({ url: url.href, timeoutMillis: EXPORT_TIMEOUT_MS }), {
    exportTimeoutMillis: EXPORT_TIMEOUT_MS,
  });
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  provider.register();
  return {
    tracer: provider.getTracer(config.serviceName),
    spans: { processor: acceptingSdkV1Spans(processor), resource },
    shutdown: () => provider.shutdown().catch(() => undefined),
  };
}

/** A finished span as OpenTelemetry JS SDK 1.x shapes it. */
type SdkV1Span = ReadableSpan & { parentSpanId?: string; instrumentationLibrary?: ReadableSpan["instrumentationScope"] };

/**
 * `processor`, also taking spans shaped by the OpenTelemetry JS SDK 1.x, which
 * `@temporalio/interceptors-opentelemetry` 1.24 runs in the workflow sandbox:
 * they name their parent by `parentSpanId` and their scope `instrumentationLibrary`,
 * where SDK 2's exporter reads `parentSpanContext` and `instrumentationScope`
 * (without this, workflow spans lose their parent and the export throws).
 */
function acceptingSdkV1Spans(processor: SpanProcessor): SpanProcessor {
  return {
    onStart: (span, parentContext) => processor.onStart(span, parentContext),
    onEnd(span: SdkV1Span) {
      const { parentSpanId, instrumentationLibrary } = span;
      if (span.parentSpanContext === undefined && parentSpanId) {
        span = { ...span, parentSpanContext: { traceId: span.spanContext().traceId, spanId: parentSpanId, traceFlags: span.spanContext().traceFlags } };
      }
      if (span.instrumentationScope === undefined && instrumentationLibrary) span = { ...span, instrumentationScope: instrumentationLibrary };
      processor.onEnd(span);
    },
    forceFlush: () => processor.forceFlush(),
    shutdown: () => processor.shutdown(),
  };
}
