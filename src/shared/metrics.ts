/**
 * Prometheus metrics on a registry that each entry point creates and injects
 * into the factories that measure something: nothing registers at import
 * time, so two servers in one process (as in tests) never share or collide,
 * and each `/metrics` shows exactly its own process's series.
 */
import { Registry, collectDefaultMetrics } from "prom-client";

/** A fresh registry, with Node's process metrics unless `processMetrics` is false. */
export function createMetricsRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

export type { Registry };
