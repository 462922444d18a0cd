/**
 * The routes every process of the project serves beside its own work:
 * liveness on `GET /health` and Prometheus text on `GET /metrics` from the
 * registry the entry point injected. One definition for the fastify services
 * and the API's hand-routed port.
 */
import type { Registry } from "prom-client";
import type { Reply } from "./reply.js";

/** A GET route that needs nothing from the request. */
export interface SideRoute {
  path: string;
  answer(): Reply | Promise<Reply>;
}

/** `GET /health`: 200 `{status: "ok"}`, or 503 `{status: "unavailable"}` while `healthy()` is false. */
export function healthRoute(healthy: () => boolean = () => true): SideRoute {
  return {
    path: "/health",
    answer: () => (healthy() ? { json: { status: "ok" } } : { status: 503, json: { status: "unavailable" } }),
  };
}

/** `GET /metrics`: the Prometheus text exposition of `registry`. */
export function metricsRoute(registry: Registry): SideRoute {
  return {
    path: "/metrics",
    answer: async () => ({ text: await registry.metrics(), contentType: registry.contentType }),
  };
}
