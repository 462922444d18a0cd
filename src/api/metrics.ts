/**
 * The API's Prometheus metrics, registered on the registry the entry point
 * creates and injects (see `shared/metrics.ts`); the same registry holds the
 * session port's Temporal-call metrics and Node's process metrics.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The series every call of every protocol is measured by. */
export interface ApiMetrics {
  /** Calls by method (`Service/Method`), protocol (connect, grpc, grpc-web, rest) and canonical code. */
  requestsTotal: Counter<"method" | "protocol" | "code">;
  /** Latency of calls; for streams, the time until the stream ended. */
  requestDuration: Histogram<"method" | "protocol">;
  /** Server streams open right now. */
  streamsInFlight: Gauge<"method" | "protocol">;
}

/**
 * Registers the API's metrics on `registry`. Throws when they are already
 * registered there: one API server per registry.
 */
export function createApiMetrics(registry: Registry): ApiMetrics {
  return {
    requestsTotal: new Counter({
      name: "somagent_api_requests_total",
      help: "RPCs handled by the API, by method, protocol and code.",
      labelNames: ["method", "protocol", "code"] as const,
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: "somagent_api_request_duration_seconds",
      help: "Duration of RPCs handled by the API (streams: until they end), by method and protocol.",
      labelNames: ["method", "protocol"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    streamsInFlight: new Gauge({
      name: "somagent_api_streams_in_flight",
      help: "Server streams (Watch, health Watch, reflection) currently open, by method and protocol.",
      labelNames: ["method", "protocol"] as const,
      registers: [registry],
    }),
  };
}
