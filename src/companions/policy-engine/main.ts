/**
 * Entry point of the policy engine: reads `POLICY_ENGINE_*`, loads the rules,
 * listens, and closes on SIGTERM/SIGINT.
 */
import { serveUntilSignalled } from "../../shared/http/json-service.js";
import { createProcessLogger } from "../../shared/logger.js";
import { createMetricsRegistry } from "../../shared/metrics.js";
import { companionTracer } from "../tracing.js";
import { ConfigError, loadLogLevel, loadPolicyEngineConfig } from "../../config.js";
import { createPolicyEngineServer } from "./server.js";

const logger = createProcessLogger("somagent-policy-engine", loadLogLevel);

try {
  const config = loadPolicyEngineConfig();
  const server = createPolicyEngineServer({
    logger,
    tracer: companionTracer(config.telemetry),
    registry: createMetricsRegistry(),
    adminToken: config.adminToken,
    maxTenants: config.maxTenants,
    allowedHosts: config.allowedHosts,
    ...(config.rulesFile === undefined ? {} : { rulesFile: config.rulesFile }),
  });
  if (config.adminToken === undefined) logger.info("admin API off: set POLICY_ENGINE_ADMIN_TOKEN to read and replace rules over HTTP");
  await serveUntilSignalled(server, config, logger, {
    rulesFile: config.rulesFile ?? "(shipped default-policies.json, edits in memory)",
    adminApi: config.adminToken === undefined ? "off" : "on",
    maxTenants: config.maxTenants,
    allowedHosts: config.allowedHosts,
  });
} catch (error) {
  logger.error(error instanceof ConfigError ? "invalid configuration" : "failed to start", {
    error: error instanceof Error ? error.message : String(error),
  });
  process.exit(1);
}
