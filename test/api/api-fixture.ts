/**
 * The API wired to a real Temporal dev server of its own, listening on a free
 * loopback port: what every API test file starts once, with {@link useApiFixture}.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import { createServer, type ApiServer, type ApiServerDeps } from "../../src/api/server.js";
import type { ApiAuthConfig } from "../../src/config.js";
import { createRayServeDeployment } from "../../src/clients/ray-serve-deployment.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetricsRegistry, type Registry } from "../../src/shared/metrics.js";
import { createTemporalConnection, type TemporalConnection } from "../../src/temporal/connection.js";
import { createTemporalSessionPort, type SessionPort } from "../../src/temporal/session-port.js";
import { createWorkerDependencies } from "../../src/worker/dependencies.js";
import { createSessionWorker, type SessionWorker } from "../../src/worker/session-worker.js";
import { infra } from "../support/infra.js";
import { waitFor } from "../support/wait-for.js";
import { testWorkerConfig } from "../worker/worker-config.js";
import { startTemporalDevServer, type TemporalDevServer } from "./temporal-dev-server.js";

/** A running API and the infrastructure behind it. */
export interface ApiFixture {
  temporal: TemporalDevServer;
  connection: TemporalConnection;
  sessions: SessionPort;
  /** The payload codec keys the API encrypts with, as `PAYLOAD_CODEC_KEYS` writes them (for a worker on the same queue). */
  codecKeys: string;
  /** The registry the port and the server measure on, with process metrics: what `/metrics` serves. */
  registry: Registry;
  server: ApiServer;
  /** `http://127.0.0.1:port` */
  baseUrl: string;
  port: number;
  /** Log lines the server wrote. */
  logs: string[];
  /** Shuts the server down, closes the connection and stops Temporal. */
  close(): Promise<void>;
}

/** Starts Temporal (a plain dev server unless `startTemporal` says otherwise), the API on port 0 and waits until the API is ready. */
export async function startApiFixture(
  options: Partial<ApiServerDeps> = {},
  startTemporal: () => Promise<TemporalDevServer> = startTemporalDevServer,
): Promise<ApiFixture> {
  const temporal = await startTemporal();
  const [host, port] = temporal.address.split(":") as [string, string];
  const codecKey = { id: "test", key: randomBytes(32) };
  const connection = createTemporalConnection({
    address: { host, port: Number(port) },
    namespace: "default",
    taskQueue: `api-test-${randomBytes(4).toString("hex")}`,
    codecKeys: [codecKey],
  });
  const registry = createMetricsRegistry();
  const sessions = createTemporalSessionPort(connection, registry);
  const logs: string[] = [];
  const server = createServer({
    sessions,
    registry,
    corsAllowedOrigins: ["http://app.example"],
    shutdownGraceMs: 5_000,
    logger: createLogger("api-test", (line) => logs.push(line)),
    readinessIntervalMs: 250,
    codecEndpoint: { codec: connection.codec, namespace: connection.namespace, allowedOrigins: ["http://127.0.0.1:8233"] },
    ...options,
  });
  const close = async () => {
    await server.shutdown();
    await connection.close();
    await temporal.stop();
  };
  let address;
  try {
    address = await server.listen(0);
    await waitFor("the API ready", () => server.readiness.refresh(), 30_000);
  } catch (error) {
    // A fixture that fails to start leaves nothing running behind.
    await close();
    throw error;
  }
  return {
    temporal,
    connection,
    sessions,
    codecKeys: `${codecKey.id}:${codecKey.key.toString("base64")}`,
    registry,
    server,
    baseUrl: `http://127.0.0.1:${address.port}`,
    port: address.port,
    logs,
    close,
  };
}

/**
 * Starts one API fixture for the test file (in `beforeAll`, closed in
 * `afterAll`) and returns its accessor, which throws when called before the
 * fixture started (outside a test, or after a failed start).
 */
export function useApiFixture(options: Partial<ApiServerDeps> = {}): () => ApiFixture {
  let fixture: ApiFixture | undefined;
  beforeAll(async () => {
    fixture = await startApiFixture(options);
  }, 60_000);
  afterAll(() => fixture?.close(), 30_000);
  return () => {
    if (!fixture) throw new Error("the API fixture is not running: use it inside a test of the file that called useApiFixture()");
    return fixture;
  };
}

/**
 * Another API server on the fixture's session port, quiet and on a free port,
 * for tests that shut a server down or give it other limits. The caller shuts it down.
 */
export async function startExtraServer(
  fixture: ApiFixture,
  options: Partial<ApiServerDeps> = {},
): Promise<{ server: ApiServer; baseUrl: string; port: number }> {
  const server = createServer({
    sessions: fixture.sessions,
    registry: createMetricsRegistry({ processMetrics: false }),
    corsAllowedOrigins: [],
    shutdownGraceMs: 5_000,
    logger: createLogger("api-test-extra", () => {}),
    ...options,
  });
  const { port } = await server.listen(0);
  return { server, baseUrl: `http://127.0.0.1:${port}`, port };
}

/** A real session worker behind a fixture: {@link startFixtureWorker}. */
export interface FixtureWorker {
  worker: SessionWorker;
  /** The worker's own audit topic on the run's Kafka. */
  auditTopic: string;
  /** Stops the worker, then its clients and the Ray deployment keeper. */
  close(): Promise<void>;
}

/**
 * A real session worker on the fixture's task queue and codec keys, calling the
 * given companions, the run's Ray (its Serve application deployed before this
 * resolves) and Kafka (a topic of its own); its logs are silenced.
 */
export async function startFixtureWorker(
  fixture: ApiFixture,
  companions: { policyEngine: URL; identityService: URL },
  name: string,
): Promise<FixtureWorker> {
  const { ray } = infra();
  const auditTopic = `agent.audit.${name}-${randomUUID()}`;
  const config = testWorkerConfig({
    temporalAddress: fixture.temporal.address,
    taskQueue: fixture.connection.taskQueue,
    codecKeys: fixture.codecKeys,
    ...companions,
    auditTopic,
    ray: { dashboardUrl: ray.dashboardUrl, serveUrl: ray.serveUrl, authToken: ray.authToken },
  });
  const logger = createLogger(`${name}-worker`, () => {});
  const deployer = createRayServeDeployment(config.ray, { registry: createMetricsRegistry({ processMetrics: false }), logger });
  const registry = createMetricsRegistry({ processMetrics: false });
  const dependencies = createWorkerDependencies(config, registry, logger);
  try {
    await deployer.ensureDeployed();
    const worker = await createSessionWorker(config, { ...dependencies, logger, registry });
    return {
      worker,
      auditTopic,
      async close() {
        await worker.stop();
        await Promise.all([dependencies.close(), deployer.close()]);
      },
    };
  } catch (error) {
    await Promise.all([dependencies.close(), deployer.close()]);
    throw error;
  }
}

/**
 * Bearer verification against the JWKS of the identity service at `identityService`
 * (tokens from `issuer` for `audience`), with the limits the tests use unless `limits` says otherwise.
 */
export function identityServiceAuth(identityService: string | URL, issuer: string, audience: string, limits: Partial<ApiAuthConfig> = {}): ApiAuthConfig {
  return {
    jwksUrl: new URL("/.well-known/jwks.json", identityService),
    issuer,
    audience,
    clockSkewSeconds: 5,
    jwksTimeoutMs: 5_000,
    jwksCooldownMs: 30_000,
    ...limits,
  };
}
