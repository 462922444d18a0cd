/**
 * Tracing of a companion: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, each request
 * is a server span that continues the worker's `traceparent` (so it joins the
 * session's trace), exported like the API's and the worker's spans.
 */
import type { Tracer } from "@opentelemetry/api";
import type { TelemetryConfig } from "../config.js";
import { createTelemetry } from "../shared/telemetry.js";

/**
 * Sets up the process's exporter and returns the tracer for its server's
 * `tracer` option; undefined when the endpoint is unset (nothing is traced).
 * Spans still batched when the process exits are lost (at most the batch delay's worth).
 */
export function companionTracer(config: TelemetryConfig): Tracer | undefined {
  const telemetry = createTelemetry(config);
  return telemetry.spans && telemetry.tracer;
}
