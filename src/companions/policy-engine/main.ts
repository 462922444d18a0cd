/**
 * Entry point of the policy engine: reads `POLICY_ENGINE_*`, loads the rules,
 * listens, and closes on SIGTERM/SIGINT.
 */
import { collectDefaultMetrics } from "prom-client";
import { createLogger } from "../../shared/logger.js";
import { ConfigError, loadPolicyEngineConfig } from "../../config.js";
import { serveUntilSignalled } from "../http-server.js";
import { createPolicyEngineServer } from "./server.js";

const logger = createLogger("somagent-policy-engine");

try {
  const config = loadPolicyEngineConfig();
  const server = createPolicyEngineServer({ logger, ...(config.rulesFile === undefined ? {} : { rulesFile: config.rulesFile }) });
  // Process metrics belong to the process, not to a server instance (tests start many in one process).
  collectDefaultMetrics({ register: server.registry });
  await serveUntilSignalled(server, config, logger, { rulesFile: config.rulesFile ?? "(shipped default-policies.json, edits in memory)" });
} catch (error) {
  logger.error(error instanceof ConfigError ? "invalid configuration" : "failed to start", {
    error: error instanceof Error ? error.message : String(error),
  });
  process.exit(1);
}
