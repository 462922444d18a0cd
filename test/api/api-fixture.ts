/**
 * The API wired to a real Temporal dev server of its own, listening on a free
 * loopback port: what every API test file starts in `beforeAll`.
 */
import { randomBytes } from "node:crypto";
import { register } from "prom-client";
import { createServer, type ApiServer, type ApiServerDeps } from "../../src/api/server.js";
import { createLogger } from "../../src/shared/logger.js";
import { createTemporalConnection, type TemporalConnection } from "../../src/temporal/connection.js";
import { createTemporalSessionPort, type SessionPort } from "../../src/temporal/session-port.js";
import { startTemporalDevServer, type TemporalDevServer } from "./temporal-dev-server.js";

/** A running API and the infrastructure behind it. */
export interface ApiFixture {
  temporal: TemporalDevServer;
  connection: TemporalConnection;
  sessions: SessionPort;
  server: ApiServer;
  /** `http://127.0.0.1:port` */
  baseUrl: string;
  port: number;
  /** Log lines the server wrote. */
  logs: string[];
  /** Shuts the server down, closes the connection and stops Temporal. */
  close(): Promise<void>;
}

/** Polls `check` every 100 ms until it returns true; throws after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts Temporal, the API on port 0 and waits until the API is ready. */
export async function startApiFixture(options: Partial<ApiServerDeps> = {}): Promise<ApiFixture> {
  const temporal = await startTemporalDevServer();
  const [host, port] = temporal.address.split(":") as [string, string];
  const connection = createTemporalConnection({
    address: { host, port: Number(port) },
    namespace: "default",
    taskQueue: `api-test-${randomBytes(4).toString("hex")}`,
    codecKeys: [{ id: "test", key: randomBytes(32) }],
  });
  const sessions = createTemporalSessionPort(connection);
  const logs: string[] = [];
  const server = createServer({
    sessions,
    corsAllowedOrigins: ["http://app.example"],
    shutdownGraceMs: 5_000,
    logger: createLogger("api-test", (line) => logs.push(line)),
    readinessIntervalMs: 250,
    // As src/api/main.ts: the API's series still register on prom-client's default registry (issue 11, finding 2).
    registry: register,
    ...options,
  });
  const address = await server.listen(0);
  await waitFor(() => server.readiness.refresh(), 30_000);
  return {
    temporal,
    connection,
    sessions,
    server,
    baseUrl: `http://127.0.0.1:${address.port}`,
    port: address.port,
    logs,
    async close() {
      await server.shutdown();
      await connection.close();
      await temporal.stop();
    },
  };
}
