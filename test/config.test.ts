/**
 * Configuration: the seed's variables with the seed's defaults, and a
 * malformed value stops start-up with an error naming the variable.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ConfigError, loadApiConfig, loadIdentityServiceConfig, loadLogLevel, loadPolicyEngineConfig, loadWorkerConfig } from "../src/config.js";
import { LOG_LEVELS } from "../src/shared/logger.js";

const key = `k1:${Buffer.alloc(32, 7).toString("base64")}`;
/** A client secret of the accepted form (what `openssl rand -base64 32` prints). */
const clientSecret = Buffer.alloc(32, 9).toString("base64");

describe("loadWorkerConfig", () => {
  it("takes the seed's defaults", () => {
    const config = loadWorkerConfig({ PAYLOAD_CODEC_KEYS: key, IDENTITY_SERVICE_CLIENT_SECRET: clientSecret });
    expect(config.temporal).toMatchObject({
      address: { host: "temporal", port: 7233 },
      namespace: "default",
      taskQueue: "somagent.session.workflows",
    });
    expect(config.policyEngineUrl.href).toBe("http://policy-engine:8000/v1/evaluate");
    expect(config.identityServiceUrl.href).toBe("http://identity-service:8000/v1/tokens/issue");
    expect(config.identityClient).toEqual({ id: "somagent-worker", secret: clientSecret });
    expect(config.kafka.brokers).toEqual([]);
    expect(config.kafka.auditTopic).toBe("agent.audit");
    expect(config.ray).toMatchObject({ address: "auto", namespace: "somagent" });
    expect(config.ray.dashboardUrl.href).toBe("http://127.0.0.1:8265/");
    expect(config.telemetry.otlpEndpoint).toBeUndefined();
  });

  it.each([
    ["TEMPORAL_TARGET_HOST", "temporal", /TEMPORAL_TARGET_HOST="temporal" is invalid: expected host:port/],
    ["TEMPORAL_TARGET_HOST", "temporal:99999", /TEMPORAL_TARGET_HOST/],
    ["POLICY_ENGINE_URL", "policy-engine/v1/evaluate", /POLICY_ENGINE_URL=.* expected an absolute http\(s\) URL/],
    ["IDENTITY_SERVICE_URL", "ftp://identity/v1", /IDENTITY_SERVICE_URL/],
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "not a url", /OTEL_EXPORTER_OTLP_ENDPOINT/],
    ["KAFKA_BOOTSTRAP_SERVERS", "kafka:9092,kafka", /KAFKA_BOOTSTRAP_SERVERS=.* comma-separated host:port pairs/],
    ["WORKER_METRICS_PORT", "94x64", /WORKER_METRICS_PORT="94x64" is invalid: expected a port number/],
    ["RAY_ADDRESS", "ray://", /RAY_ADDRESS/],
  ])("rejects %s=%j naming the variable", (variable, value, message) => {
    const load = () => loadWorkerConfig({ PAYLOAD_CODEC_KEYS: key, IDENTITY_SERVICE_CLIENT_SECRET: clientSecret, [variable]: value });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(message);
  });

  it("requires PAYLOAD_CODEC_KEYS and never echoes a key", () => {
    expect(() => loadWorkerConfig({})).toThrow(/PAYLOAD_CODEC_KEYS is required/);
    expect(() => loadWorkerConfig({ PAYLOAD_CODEC_KEYS: "k1:c2hvcnQ=" })).toThrow(/PAYLOAD_CODEC_KEYS="<redacted>"/);
  });

  it("requires IDENTITY_SERVICE_CLIENT_SECRET, refuses a short one without echoing it, and reads the client id", () => {
    expect(() => loadWorkerConfig({ PAYLOAD_CODEC_KEYS: key })).toThrow(/^IDENTITY_SERVICE_CLIENT_SECRET is required: expected 32-512 characters/);
    expect(() => loadWorkerConfig({ PAYLOAD_CODEC_KEYS: key, IDENTITY_SERVICE_CLIENT_SECRET: "short-secret" })).toThrow(
      'IDENTITY_SERVICE_CLIENT_SECRET="<redacted>" is invalid',
    );
    expect(() => loadWorkerConfig({ PAYLOAD_CODEC_KEYS: key, IDENTITY_SERVICE_CLIENT_SECRET: "short-secret" })).not.toThrow(/short-secret/);
    const config = loadWorkerConfig({ PAYLOAD_CODEC_KEYS: key, IDENTITY_SERVICE_CLIENT_SECRET: clientSecret, IDENTITY_SERVICE_CLIENT_ID: "worker-a" });
    expect(config.identityClient.id).toBe("worker-a");
  });
});

describe("loadWorkerConfig: retry budgets", () => {
  const required = { PAYLOAD_CODEC_KEYS: key, IDENTITY_SERVICE_CLIENT_SECRET: clientSecret };

  it("keeps the budgets that were fixed in code, each attempt its calls' limits plus 5 s", () => {
    expect(loadWorkerConfig(required).sessionTimeouts).toEqual({
      policy: { attemptMs: 15_000, budgetMs: 45_000 },
      identity: { attemptMs: 25_000, budgetMs: 45_000 },
      completion: { attemptMs: 65_000, budgetMs: 120_000 },
      audit: { attemptMs: 39_000, budgetMs: 300_000 },
    });
  });

  it("reads a budget per step, so tests can shorten them and operators size them", () => {
    const config = loadWorkerConfig({
      ...required,
      POLICY_ENGINE_TIMEOUT_MS: "1000",
      POLICY_ENGINE_RETRY_BUDGET_MS: "6000",
      IDENTITY_SERVICE_RETRY_BUDGET_MS: "600000",
      RAY_SERVE_RETRY_BUDGET_MS: "900000",
      AUDIT_RETRY_BUDGET_MS: "3600000",
    });
    expect(config.sessionTimeouts.policy).toEqual({ attemptMs: 6_000, budgetMs: 6_000 });
    expect(config.sessionTimeouts.identity.budgetMs).toBe(600_000);
    expect(config.sessionTimeouts.completion.budgetMs).toBe(900_000);
    expect(config.sessionTimeouts.audit.budgetMs).toBe(3_600_000);
  });

  it.each([
    [{ POLICY_ENGINE_RETRY_BUDGET_MS: "14999" }, 'POLICY_ENGINE_RETRY_BUDGET_MS="14999" is invalid: expected at least one attempt\'s limit, POLICY_ENGINE_TIMEOUT_MS + 5000 = 15000 ms'],
    [{ POLICY_ENGINE_TIMEOUT_MS: "60000" }, "POLICY_ENGINE_RETRY_BUDGET_MS=\"45000\" is invalid: expected at least one attempt's limit, POLICY_ENGINE_TIMEOUT_MS + 5000 = 65000 ms"],
    [{ IDENTITY_SERVICE_TIMEOUT_MS: "25000" }, "IDENTITY_SERVICE_RETRY_BUDGET_MS=\"45000\" is invalid: expected at least one attempt's limit, 2 × IDENTITY_SERVICE_TIMEOUT_MS + 5000 = 55000 ms"],
    [{ IDENTITY_SERVICE_RETRY_BUDGET_MS: "600001" }, 'IDENTITY_SERVICE_RETRY_BUDGET_MS="600001" is invalid: expected at most 600000 ms'],
    [{ RAY_SERVE_TIMEOUT_MS: "120000" }, "RAY_SERVE_RETRY_BUDGET_MS=\"120000\" is invalid: expected at least one attempt's limit, RAY_SERVE_TIMEOUT_MS + 5000 = 125000 ms"],
    [{ AUDIT_RETRY_BUDGET_MS: "30000" }, 'AUDIT_RETRY_BUDGET_MS="30000" is invalid: expected at least one attempt\'s limit'],
    [{ AUDIT_RETRY_BUDGET_MS: "5m" }, 'AUDIT_RETRY_BUDGET_MS="5m" is invalid: expected a positive integer'],
  ])("refuses %j: an attempt longer than its budget, naming the variable", (variables, message) => {
    const load = () => loadWorkerConfig({ ...required, ...variables });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(message);
  });
});

describe("loadIdentityServiceConfig", () => {
  it("requires the client secret, and defaults the lockout and the host names", () => {
    expect(() => loadIdentityServiceConfig({})).toThrow(/^IDENTITY_SERVICE_CLIENT_SECRET is required/);
    const config = loadIdentityServiceConfig({ IDENTITY_SERVICE_CLIENT_SECRET: clientSecret });
    expect(config).toMatchObject({
      client: { id: "somagent-worker", secret: clientSecret },
      maxFailedAttempts: 5,
      lockoutSeconds: 300,
      allowedHosts: ["localhost", "127.0.0.1"],
    });
  });

  it.each([
    ["IDENTITY_SERVICE_MAX_FAILED_ATTEMPTS", "0", /IDENTITY_SERVICE_MAX_FAILED_ATTEMPTS="0" is invalid: expected a positive integer/],
    ["IDENTITY_SERVICE_LOCKOUT_SECONDS", "5m", /IDENTITY_SERVICE_LOCKOUT_SECONDS="5m" is invalid/],
    ["IDENTITY_SERVICE_ALLOWED_HOSTS", "ok,not a host", /IDENTITY_SERVICE_ALLOWED_HOSTS=.* expected comma-separated host names/],
  ])("rejects %s=%j naming the variable", (variable, value, message) => {
    expect(() => loadIdentityServiceConfig({ IDENTITY_SERVICE_CLIENT_SECRET: clientSecret, [variable]: value })).toThrow(message);
  });

  it("takes the configured host names instead of the defaults", () => {
    const config = loadIdentityServiceConfig({ IDENTITY_SERVICE_CLIENT_SECRET: clientSecret, IDENTITY_SERVICE_ALLOWED_HOSTS: "identity-service, identity.internal" });
    expect(config.allowedHosts).toEqual(["identity-service", "identity.internal"]);
  });
});

describe("loadPolicyEngineConfig", () => {
  it("leaves the admin API off without a token, holds at most 1000 tenants, and answers to localhost and its host", () => {
    expect(loadPolicyEngineConfig({ POLICY_ENGINE_HOST: "0.0.0.0" })).toMatchObject({
      adminToken: undefined,
      maxTenants: 1000,
      allowedHosts: ["localhost", "0.0.0.0"],
    });
  });

  it("reads the admin token and refuses a weak one without echoing it", () => {
    expect(loadPolicyEngineConfig({ POLICY_ENGINE_ADMIN_TOKEN: clientSecret }).adminToken).toBe(clientSecret);
    expect(() => loadPolicyEngineConfig({ POLICY_ENGINE_ADMIN_TOKEN: "admin" })).toThrow('POLICY_ENGINE_ADMIN_TOKEN="<redacted>" is invalid');
    expect(() => loadPolicyEngineConfig({ POLICY_ENGINE_MAX_TENANTS: "-1" })).toThrow(/POLICY_ENGINE_MAX_TENANTS="-1" is invalid/);
  });
});

describe("loadApiConfig", () => {
  it("leaves caller authentication off when API_AUTH_JWKS_URL is unset, and parses it with the issuer and audience", () => {
    expect(loadApiConfig({ PAYLOAD_CODEC_KEYS: key }).auth).toBeUndefined();
    const auth = { API_AUTH_JWKS_URL: "http://127.0.0.1:8102/.well-known/jwks.json", API_AUTH_ISSUER: "iss", API_AUTH_AUDIENCE: "aud" };
    expect(loadApiConfig({ PAYLOAD_CODEC_KEYS: key, ...auth }).auth).toMatchObject({ issuer: "iss", audience: "aud", clockSkewSeconds: 30, jwksTimeoutMs: 5_000 });
    expect(() => loadApiConfig({ PAYLOAD_CODEC_KEYS: key, API_AUTH_JWKS_URL: auth.API_AUTH_JWKS_URL, API_AUTH_ISSUER: "iss" })).toThrow(/^API_AUTH_AUDIENCE is required/);
    expect(() => loadApiConfig({ PAYLOAD_CODEC_KEYS: key, API_AUTH_AUDIENCE: "aud" })).toThrow(/^API_AUTH_JWKS_URL is required/);
    expect(() => loadApiConfig({ PAYLOAD_CODEC_KEYS: key, ...auth, API_AUTH_JWKS_URL: "jwks" })).toThrow(/^API_AUTH_JWKS_URL="jwks" is invalid/);
    expect(() => loadApiConfig({ PAYLOAD_CODEC_KEYS: key, ...auth, API_AUTH_CLOCK_SKEW_SECONDS: "-1" })).toThrow(/^API_AUTH_CLOCK_SKEW_SECONDS="-1" is invalid/);
  });

  it("listens on 8090 by default", () => {
    expect(loadApiConfig({ PAYLOAD_CODEC_KEYS: key }).port).toBe(8090);
  });

  it("serves the console built in the package root's dist/console unless API_CONSOLE_DIR names another, which is then required", () => {
    expect(loadApiConfig({ PAYLOAD_CODEC_KEYS: key }).console).toEqual({ dir: path.resolve(import.meta.dirname, "..", "dist", "console"), required: false });
    expect(loadApiConfig({ PAYLOAD_CODEC_KEYS: key, API_CONSOLE_DIR: "/srv/console" }).console).toEqual({ dir: "/srv/console", required: true });
  });

  it("rejects an unparseable PORT", () => {
    expect(() => loadApiConfig({ PAYLOAD_CODEC_KEYS: key, PORT: "eighty" })).toThrow(/PORT="eighty" is invalid: expected a port number/);
  });

  it("reads the edge limits and refuses a header timeout longer than the request timeout, naming both", () => {
    expect(loadApiConfig({ PAYLOAD_CODEC_KEYS: key, API_MAX_CONNECTIONS: "7" }).limits).toMatchObject({ maxConnections: 7, headersTimeoutMs: 10_000 });
    expect(() => loadApiConfig({ PAYLOAD_CODEC_KEYS: key, API_MAX_STREAM_AGE_MS: "0" })).toThrow(/API_MAX_STREAM_AGE_MS="0" is invalid: expected a positive integer/);
    expect(() => loadApiConfig({ PAYLOAD_CODEC_KEYS: key, API_HEADERS_TIMEOUT_MS: "40000" })).toThrow(
      /API_HEADERS_TIMEOUT_MS="40000" is invalid: expected at most API_REQUEST_TIMEOUT_MS \(30000\)/,
    );
  });
});

describe("start-up with bad configuration", () => {
  const run = promisify(execFile);
  const start = (script: string, env: Record<string, string>) =>
    run(process.execPath, ["--import", "tsx", script], {
      cwd: path.resolve(import.meta.dirname, ".."),
      env: { ...process.env, PAYLOAD_CODEC_KEYS: key, ...env },
      timeout: 30_000,
    }).then(
      () => ({ code: 0, stderr: "" }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    );

  it("the API exits 1 with a line naming the variable", async () => {
    const { code, stderr } = await start("src/api/main.ts", { PORT: "80800" });
    expect(code).toBe(1);
    expect(stderr).toContain('PORT=\\"80800\\" is invalid');
  });

  it("the worker exits 1 with a line naming the variable", async () => {
    const { code, stderr } = await start("src/worker/main.ts", { TEMPORAL_TARGET_HOST: "localhost" });
    expect(code).toBe(1);
    expect(stderr).toContain("TEMPORAL_TARGET_HOST");
  });

  it("each process exits 1 with one JSON line naming LOG_LEVEL when it is not a level", async () => {
    for (const script of ["src/api/main.ts", "src/worker/main.ts", "src/companions/policy-engine/main.ts", "src/companions/identity-service/main.ts"]) {
      const { code, stderr } = await start(script, { LOG_LEVEL: "verbose" });
      expect(code, script).toBe(1);
      expect(JSON.parse(stderr.trim()), script).toMatchObject({ level: "error", message: "invalid configuration", error: expect.stringContaining('LOG_LEVEL="verbose" is invalid') });
    }
  });
});

describe("loadLogLevel", () => {
  it("defaults to info and takes each level, in any case", () => {
    expect(loadLogLevel({})).toBe("info");
    for (const level of LOG_LEVELS) expect(loadLogLevel({ LOG_LEVEL: level.toUpperCase() })).toBe(level);
  });
});
