/**
 * Starts the real companion servers on loopback port 0 for tests, with their
 * logs kept in memory, and removes what they leave behind.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsonService } from "../../src/shared/http/json-service.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { createIdentityServiceServer, type IdentityServiceServerOptions } from "../../src/companions/identity-service/server.js";
import { loadOrCreateSigningKey } from "../../src/companions/identity-service/signing-key.js";
import { createPolicyEngineServer, type PolicyEngineServerOptions } from "../../src/companions/policy-engine/server.js";

/** A listening companion. */
export interface StartedCompanion {
  server: JsonService;
  /** Base URL, e.g. `http://127.0.0.1:41234/`. */
  url: URL;
  /** JSON log lines the server wrote. */
  logs: string[];
  close(): Promise<void>;
}

async function start(build: (logs: string[]) => JsonService, port: number): Promise<StartedCompanion> {
  const logs: string[] = [];
  const server = build(logs);
  const url = await server.listen(port, "127.0.0.1");
  return { server, url, logs, close: () => server.close() };
}

/** Starts a policy engine (the shipped rules unless `rulesFile` is given). */
export function startPolicyEngine(options: Omit<PolicyEngineServerOptions, "logger" | "registry"> = {}): Promise<StartedCompanion> {
  return start(
    (logs) =>
      createPolicyEngineServer({
        ...options,
        registry: createMetricsRegistry({ processMetrics: false }),
        logger: createLogger("policy-engine-test", (line) => logs.push(line)),
      }),
    0,
  );
}

/**
 * Starts an identity service whose signing key lives in `keyDir` (the shipped
 * users unless `usersFile` is given), on `port` (default: a free one).
 */
export function startIdentityService(
  keyDir: string,
  options: Partial<Omit<IdentityServiceServerOptions, "logger" | "signingKey" | "registry">> = {},
  port = 0,
): Promise<StartedCompanion> {
  return start((logs) =>
    createIdentityServiceServer({
      issuer: "somagent-identity-test",
      tokenTtlSeconds: 900,
      ...options,
      signingKey: loadOrCreateSigningKey(keyDir),
      registry: createMetricsRegistry({ processMetrics: false }),
      logger: createLogger("identity-service-test", (line) => logs.push(line)),
    }),
    port,
  );
}

/** A fresh temporary directory and its removal. */
export function temporaryDirectory(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** POSTs `body` as JSON (or a raw string as given) and returns status, headers and parsed body. */
export async function postJson(
  url: URL | string,
  body: unknown,
  init: { method?: string; contentType?: string } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(url, {
    method: init.method ?? "POST",
    headers: { "content-type": init.contentType ?? "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) };
}

/** GETs `url` and returns status, headers and parsed JSON body. */
export async function getJson(url: URL | string, method = "GET"): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(url, { method });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) };
}
