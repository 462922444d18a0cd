/**
 * Entry point of the API process: reads the configuration, connects to
 * Temporal (lazily), listens on `HOST:PORT` and drains on SIGTERM/SIGINT.
 */
import { ConfigError, loadLogLevel, loadApiConfig, type ApiConfig } from "../config.js";
import { createTemporalConnection } from "../temporal/connection.js";
import { createTemporalSessionPort } from "../temporal/session-port.js";
import { createTelemetry } from "../shared/telemetry.js";
import { createProcessLogger } from "../shared/logger.js";
import { createMetricsRegistry } from "../shared/metrics.js";
import { ConsoleNotBuiltError, readConsoleFiles, type ConsoleFiles } from "./console-route.js";
import { createServer } from "./server.js";

const logger = createProcessLogger("somagent-orchestrator-api", loadLogLevel);

async function main(): Promise<void> {
  const config = loadApiConfig();
  const telemetry = createTelemetry(config.telemetry);
  const temporal = createTemporalConnection(config.temporal, { traced: telemetry.spans !== undefined });
  const registry = createMetricsRegistry();
  const server = createServer({
    sessions: createTemporalSessionPort(temporal, registry),
    registry,
    corsAllowedOrigins: config.corsAllowedOrigins,
    codecEndpoint: { codec: temporal.codec, namespace: temporal.namespace, allowedOrigins: config.codecAllowedOrigins },
    shutdownGraceMs: config.shutdownGraceMs,
    limits: config.limits,
    ...(config.auth && { auth: config.auth }),
    consoleFiles: consoleFiles(config.console),
    logger,
    tracer: telemetry.tracer,
  });
  const address = await server.listen(config.port, config.host);
  logger.info("listening", {
    address: `${address.address}:${address.port}`,
    temporal: `${config.temporal.address.host}:${config.temporal.address.port}`,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    restRoutes: server.restRoutes,
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal, graceMs: config.shutdownGraceMs });
    // A second timer so a stuck close never outlives the grace period by much.
    setTimeout(() => process.exit(1), config.shutdownGraceMs + 5_000).unref();
    void server
      .shutdown()
      .then(() => temporal.close())
      .then(() => telemetry.shutdown())
      .then(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

/**
 * The built console; without one in the default directory (not built yet) the
 * API serves none and says so, while a directory named by API_CONSOLE_DIR must hold one.
 */
function consoleFiles(settings: ApiConfig["console"]): ConsoleFiles | undefined {
  try {
    return readConsoleFiles(settings.dir);
  } catch (error) {
    if (!(error instanceof ConsoleNotBuiltError)) throw error;
    if (settings.required) throw new ConfigError("API_CONSOLE_DIR", "a directory holding the built session console (npm run build:console)", settings.dir);
    logger.warn("the session console is not served: it is not built", { dir: settings.dir, fix: "npm run build:console" });
    return undefined;
  }
}

main().catch((error: unknown) => {
  logger.error(error instanceof ConfigError ? "invalid configuration" : "failed to start", {
    error: error instanceof Error ? error.message : String(error),
  });
  process.exit(1);
});
