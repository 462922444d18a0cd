/**
 * Entry point of the identity service: reads `IDENTITY_SERVICE_*` and
 * `IDENTITY_TOKEN_TTL_SECONDS`, loads (or creates) the signing key and the
 * users, listens, and closes on SIGTERM/SIGINT.
 */
import { collectDefaultMetrics } from "prom-client";
import { createLogger } from "../../shared/logger.js";
import { ConfigError, loadIdentityServiceConfig } from "../../config.js";
import { serveUntilSignalled } from "../http-server.js";
import { createIdentityServiceServer } from "./server.js";
import { loadOrCreateSigningKey } from "./signing-key.js";

const logger = createLogger("somagent-identity-service");

try {
  const config = loadIdentityServiceConfig();
  const signingKey = loadOrCreateSigningKey(config.keyDir);
  const server = createIdentityServiceServer({
    signingKey,
    issuer: config.issuer,
    tokenTtlSeconds: config.tokenTtlSeconds,
    logger,
    ...(config.usersFile === undefined ? {} : { usersFile: config.usersFile }),
  });
  // Process metrics belong to the process, not to a server instance (tests start many in one process).
  collectDefaultMetrics({ register: server.registry });
  await serveUntilSignalled(server, config, logger, {
    kid: signingKey.kid,
    keyDir: config.keyDir,
    usersFile: config.usersFile ?? "(shipped default-users.json)",
    issuer: config.issuer,
  });
} catch (error) {
  logger.error(error instanceof ConfigError ? "invalid configuration" : "failed to start", {
    error: error instanceof Error ? error.message : String(error),
  });
  process.exit(1);
}
