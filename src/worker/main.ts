/**
 * Entry point of the worker process (`npm run worker`, the seed's
 * `python -m services.orchestrator.app.worker`): reads the configuration,
 * wires the real policy engine, identity service and Ray Serve clients into
 * the session worker, exposes the Temporal SDK's own metrics for Prometheus,
 * and shuts down gracefully on SIGTERM/SIGINT.
 */
import { makeTelemetryFilterString, Runtime } from "@temporalio/worker";
import { createProcessLogger } from "../shared/logger.js";
import { ConfigError, loadLogLevel, loadWorkerConfig } from "../config.js";
import { createMetricsRegistry } from "../shared/metrics.js";
import { createTelemetry } from "../shared/telemetry.js";
import { createWorkerDependencies } from "./dependencies.js";
import { createSdkLogger } from "./sdk-logger.js";
import { createSessionWorker } from "./session-worker.js";

const logger = createProcessLogger("somagent-orchestrator-worker", loadLogLevel);

async function main(): Promise<void> {
  const config = loadWorkerConfig();
  const telemetry = createTelemetry(config.telemetry);
  Runtime.install({
    // The SDK's and its native core's lines in our one format, at our level.
    logger: createSdkLogger(logger),
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: "WARN" }) },
      metrics: { prometheus: { bindAddress: `${config.metricsHost}:${config.sdkMetricsPort}` } },
    },
  });
  const registry = createMetricsRegistry();
  const dependencies = createWorkerDependencies(config, registry, logger);
  const worker = await createSessionWorker(config, {
    ...dependencies,
    logger,
    registry,
    workflowBundlePath: config.workflowBundlePath,
    spans: telemetry.spans,
  });

  const stop = (signal: string) => {
    logger.info("shutting down", { signal });
    void worker.stop();
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  await worker.done;
  await dependencies.close();
  await telemetry.shutdown();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    logger.error(error instanceof ConfigError ? "invalid configuration" : "worker failed", {
      error: error instanceof Error ? error.message : String(error),
    });
    process.exit(1);
  },
);
