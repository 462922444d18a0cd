/**
 * The API's Prometheus metrics, on prom-client's default registry (which also
 * holds the Temporal-call metrics and Node's process metrics).
 */
import { Counter, Gauge, Histogram, collectDefaultMetrics, register } from "prom-client";

collectDefaultMetrics();

/** Calls by method (`Service/Method`), protocol (connect, grpc, grpc-web, rest) and canonical code. */
export const requestsTotal = new Counter({
  name: "somagent_api_requests_total",
  help: "RPCs handled by the API, by method, protocol and code.",
  labelNames: ["method", "protocol", "code"] as const,
});

/** Latency of calls; for streams, the time until the stream ended. */
export const requestDuration = new Histogram({
  name: "somagent_api_request_duration_seconds",
  help: "Duration of RPCs handled by the API (streams: until they end), by method and protocol.",
  labelNames: ["method", "protocol"] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
});

/** Server streams open right now. */
export const streamsInFlight = new Gauge({
  name: "somagent_api_streams_in_flight",
  help: "Server streams (Watch, health Watch, reflection) currently open, by method and protocol.",
  labelNames: ["method", "protocol"] as const,
});

/** The Prometheus text exposition of every metric of the process. */
export function metricsText(): Promise<string> {
  return register.metrics();
}

/** Content type of {@link metricsText}. */
export const METRICS_CONTENT_TYPE = register.contentType;
