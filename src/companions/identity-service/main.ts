/**
 * Entry point of the identity service: reads `IDENTITY_SERVICE_*` and
 * `IDENTITY_TOKEN_TTL_SECONDS`, loads (or creates) the signing key and the
 * users, listens, and closes on SIGTERM/SIGINT.
 */
import { serveUntilSignalled } from "../../shared/http/json-service.js";
import { createLogger } from "../../shared/logger.js";
import { createMetricsRegistry } from "../../shared/metrics.js";
import { ConfigError, loadIdentityServiceConfig } from "../../config.js";
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
    registry: createMetricsRegistry(),
    logger,
    ...(config.usersFile === undefined ? {} : { usersFile: config.usersFile }),
  });
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
