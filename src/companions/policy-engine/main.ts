/**
 * Entry point of the policy engine: reads `POLICY_ENGINE_*`, loads the rules,
 * listens, and closes on SIGTERM/SIGINT.
 */
import { serveUntilSignalled } from "../../shared/http/json-service.js";
import { createLogger } from "../../shared/logger.js";
import { createMetricsRegistry } from "../../shared/metrics.js";
import { ConfigError, loadPolicyEngineConfig } from "../../config.js";
import { createPolicyEngineServer } from "./server.js";

const logger = createLogger("somagent-policy-engine");

try {
  const config = loadPolicyEngineConfig();
  const server = createPolicyEngineServer({ logger, registry: createMetricsRegistry(), ...(config.rulesFile === undefined ? {} : { rulesFile: config.rulesFile }) });
  await serveUntilSignalled(server, config, logger, { rulesFile: config.rulesFile ?? "(shipped default-policies.json, edits in memory)" });
} catch (error) {
  logger.error(error instanceof ConfigError ? "invalid configuration" : "failed to start", {
    error: error instanceof Error ? error.message : String(error),
  });
  process.exit(1);
}
