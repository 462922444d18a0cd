/**
 * Entry point of the identity service: reads `IDENTITY_SERVICE_*` and
 * `IDENTITY_TOKEN_TTL_SECONDS`, loads (or creates) the signing key, the spent
 * MFA codes and the users, listens, and closes on SIGTERM/SIGINT.
 */
import { serveUntilSignalled } from "../../shared/http/json-service.js";
import { createProcessLogger } from "../../shared/logger.js";
import { createMetricsRegistry } from "../../shared/metrics.js";
import { companionTracer } from "../tracing.js";
import { ConfigError, loadLogLevel, loadIdentityServiceConfig } from "../../config.js";
import { createIdentityServiceServer } from "./server.js";
import { loadOrCreateSigningKey } from "./signing-key.js";

const logger = createProcessLogger("somagent-identity-service", loadLogLevel);

try {
  const config = loadIdentityServiceConfig();
  const signingKey = loadOrCreateSigningKey(config.keyDir);
  const server = createIdentityServiceServer({
    signingKey,
    stateDir: config.keyDir,
    issuer: config.issuer,
    tokenTtlSeconds: config.tokenTtlSeconds,
    client: config.client,
    maxFailedAttempts: config.maxFailedAttempts,
    lockoutSeconds: config.lockoutSeconds,
    allowedHosts: config.allowedHosts,
    registry: createMetricsRegistry(),
    logger,
    tracer: companionTracer(config.telemetry),
    ...(config.usersFile === undefined ? {} : { usersFile: config.usersFile }),
  });
  await serveUntilSignalled(server, config, logger, {
    kid: signingKey.kid,
    keyDir: config.keyDir,
    usersFile: config.usersFile ?? "(shipped default-users.json)",
    issuer: config.issuer,
    clientId: config.client.id,
    allowedHosts: config.allowedHosts,
  });
} catch (error) {
  logger.error(error instanceof ConfigError ? "invalid configuration" : "failed to start", {
    error: error instanceof Error ? error.message : String(error),
  });
  process.exit(1);
}
