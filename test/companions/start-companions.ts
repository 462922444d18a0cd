/**
 * Starts the real companion servers on loopback port 0 for tests, with their
 * logs kept in memory, and removes what they leave behind; and a recording
 * reverse proxy to put in front of one.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsonService } from "../../src/shared/http/json-service.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { createIdentityServiceServer, type IdentityServiceServerOptions } from "../../src/companions/identity-service/server.js";
import { loadOrCreateSigningKey } from "../../src/companions/identity-service/signing-key.js";
import { createPolicyEngineServer, type PolicyEngineServerOptions } from "../../src/companions/policy-engine/server.js";
import type { ClientCredentials } from "../../src/config.js";
import { basicAuthorization } from "../../src/shared/http/credentials.js";

/** The admin token the test policy engines are configured with (as `POLICY_ENGINE_ADMIN_TOKEN` would). */
export const TEST_ADMIN_TOKEN = "test-admin-token-0123456789abcdef0123456789";
/** `Authorization` for the test policy engines' admin API. */
export const ADMIN_AUTHORIZATION = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

/** The client the test identity services accept (as `IDENTITY_SERVICE_CLIENT_ID`/`_SECRET` would configure). */
export const TEST_CLIENT: ClientCredentials = { id: "somagent-worker-test", secret: "test-client-secret-0123456789abcdef01234567" };
/** `Authorization` of {@link TEST_CLIENT}. */
export const CLIENT_AUTHORIZATION = { authorization: basicAuthorization(TEST_CLIENT.id, TEST_CLIENT.secret) };

/** The names the test companions' Host check accepts, as the configuration's default for a loopback listener. */
const TEST_ALLOWED_HOSTS = ["localhost", "127.0.0.1"];

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

/**
 * Starts a policy engine (the shipped rules unless `rulesFile` is given), its
 * admin API on with {@link TEST_ADMIN_TOKEN} unless `adminToken` says otherwise.
 */
export function startPolicyEngine(options: Partial<Omit<PolicyEngineServerOptions, "logger" | "registry">> = {}): Promise<StartedCompanion> {
  return start(
    (logs) =>
      createPolicyEngineServer({
        adminToken: TEST_ADMIN_TOKEN,
        maxTenants: 1000,
        allowedHosts: TEST_ALLOWED_HOSTS,
        ...options,
        registry: createMetricsRegistry({ processMetrics: false }),
        logger: createLogger("policy-engine-test", (line) => logs.push(line)),
      }),
    0,
  );
}

/**
 * Starts an identity service whose signing key and spent codes live in
 * `keyDir` (the shipped users unless `usersFile` is given), accepting
 * {@link TEST_CLIENT}, on `port` (default: a free one).
 */
export function startIdentityService(
  keyDir: string,
  options: Partial<Omit<IdentityServiceServerOptions, "logger" | "signingKey" | "registry" | "stateDir">> = {},
  port = 0,
): Promise<StartedCompanion> {
  return start((logs) =>
    createIdentityServiceServer({
      issuer: "somagent-identity-test",
      tokenTtlSeconds: 900,
      client: TEST_CLIENT,
      maxFailedAttempts: 5,
      lockoutSeconds: 300,
      allowedHosts: TEST_ALLOWED_HOSTS,
      ...options,
      stateDir: keyDir,
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

/** POSTs `body` as JSON (or a raw string as given), with `headers`, and returns status, headers and parsed body. */
export async function postJson(
  url: URL | string,
  body: unknown,
  init: { method?: string; contentType?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(url, {
    method: init.method ?? "POST",
    headers: { "content-type": init.contentType ?? "application/json", ...init.headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) };
}

/** GETs `url` (with `headers`) and returns status, headers and parsed JSON body. */
export async function getJson(url: URL | string, method = "GET", headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(url, { method, headers });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) };
}

/** A request a {@link RecordingProxy} passed on: what the upstream received. */
export interface ProxiedRequest {
  method: string;
  path: string;
  body: string;
}

/** A reverse proxy in front of a real server that keeps every request it passed on. */
export interface RecordingProxy {
  /** Base URL of the proxy. */
  url: URL;
  /** Requests passed on so far, in order. */
  requests: ProxiedRequest[];
  close(): Promise<void>;
}

/** What a {@link RecordingProxy} does besides passing requests on. */
export interface RecordingProxyOptions {
  /**
   * Requests whose answer is lost: the upstream handles them, then the proxy
   * closes the caller's connection without answering, as a network failure
   * after the server's work would.
   */
  loseAnswerTo?: (request: ProxiedRequest) => boolean;
}

/**
 * Starts a real HTTP reverse proxy on a loopback port that sends every request
 * to `upstream` and its answer back, recording what the upstream received:
 * how a test sees what a companion was sent without changing the companion.
 */
export async function startRecordingProxy(upstream: URL, options: RecordingProxyOptions = {}): Promise<RecordingProxy> {
  const requests: ProxiedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const request = { method: req.method ?? "GET", path: req.url ?? "/", body: body.toString("utf8") };
      requests.push(request);
      const headers: Record<string, string> = {};
      for (const name of ["content-type", "authorization", "accept"]) {
        const value = req.headers[name];
        if (typeof value === "string") headers[name] = value;
      }
      fetch(new URL(req.url ?? "/", upstream), { method: req.method ?? "GET", headers, ...(body.length > 0 ? { body } : {}) })
        .then(async (answer) => {
          const text = Buffer.from(await answer.arrayBuffer());
          if (options.loseAnswerTo?.(request)) return void res.destroy();
          res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json" });
          res.end(text);
        })
        .catch(() => {
          res.writeHead(502);
          res.end();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}/`),
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
