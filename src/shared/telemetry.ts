/**
 * OpenTelemetry tracing for the API and the worker. With
 * `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are exported over OTLP/HTTP to
 * `{endpoint}/v1/traces`; without it the tracer records nothing.
 */
import { trace, type Tracer } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { TelemetryConfig } from "../config.js";

/** The process's tracer and how to flush it on exit. */
export interface Telemetry {
  tracer: Tracer;
  /** Flushes pending spans and stops exporting; never throws. */
  shutdown(): Promise<void>;
}

/** Sets up tracing from the configuration; registers the global provider when exporting. */
export function createTelemetry(config: TelemetryConfig): Telemetry {
  if (!config.otlpEndpoint) {
    return { tracer: trace.getTracer(config.serviceName), shutdown: async () => {} };
  }
  const url = new URL("v1/traces", config.otlpEndpoint.href.endsWith("/") ? config.otlpEndpoint : `${config.otlpEndpoint.href}/`);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: url.href, timeoutMillis: 10_000 }))],
  });
  provider.register();
  return {
    tracer: provider.getTracer(config.serviceName),
    shutdown: () => provider.shutdown().catch(() => undefined),
  };
}
