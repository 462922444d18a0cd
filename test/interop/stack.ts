/**
 * The service as its callers see it: the policy engine, identity service,
 * worker and API started as child processes from their entry points (the way
 * `npm start` starts them) on free loopback ports, against the run's real
 * Temporal, Kafka and Ray, on a task queue of their own.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServices } from "../../local/services.js";
import { infraEndpoints } from "../support/infra.js";

/** A running stack. */
export interface InteropStack {
  /** `127.0.0.1:port`, for gRPC clients. */
  address: string;
  /** `http://127.0.0.1:port`, for HTTP clients. */
  baseUrl: string;
  /** Output of the started processes, for failure messages. */
  readonly logs: string[];
  close(): Promise<void>;
}

/** Options of {@link startInteropStack}. */
export interface InteropStackOptions {
  /** Origins the API allows cross-origin calls from. */
  corsAllowedOrigins?: string[];
}

/** Starts the services and resolves once each answers its health check. */
export async function startInteropStack(options: InteropStackOptions = {}): Promise<InteropStack> {
  const stateDir = await mkdtemp(path.join(tmpdir(), "somagent-interop-"));
  const services = await startServices(
    infraEndpoints(),
    {
      stateDir,
      codecKeys: `interop:${randomBytes(32).toString("base64")}`,
      taskQueue: `interop-${randomBytes(4).toString("hex")}`,
      env: { CORS_ALLOWED_ORIGINS: (options.corsAllowedOrigins ?? []).join(",") },
    },
  ).catch(async (error: unknown) => {
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  });
  const { url } = services.api;
  const logFiles = [services.api, services.worker, services.policyEngine, services.identityService].map((s) => s.daemon.logFile);
  return {
    address: url.host,
    baseUrl: url.origin,
    get logs() {
      return logFiles.map((file) => `[${path.basename(file)}]\n${readFileSync(file, "utf8")}`);
    },
    async close() {
      await services.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
