/**
 * Every environment variable the orchestrator reads, parsed and validated once
 * at start-up. A malformed value throws {@link ConfigError} naming the variable
 * and the form it expects; nothing else in the code reads `process.env`.
 */

import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { LOG_LEVELS, type LogLevel } from "./shared/logger.js";
import type { SessionTimeouts, StepTimeouts } from "./workflows/contract.js";

type Env = Readonly<Record<string, string | undefined>>;

/** Thrown at start-up when an environment variable is malformed or missing. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    expected: string,
    received: string | undefined,
  ) {
    super(
      received === undefined
        ? `${variable} is required: expected ${expected}`
        : `${variable}=${JSON.stringify(received)} is invalid: expected ${expected}`,
    );
    this.name = "ConfigError";
  }
}

/**
 * The largest request body or message the API accepts (256 KiB). Every limit
 * downstream is derived from it, so a request the contract and this limit
 * admit is never refused on an internal limit further on.
 */
export const API_MAX_REQUEST_BYTES = 256 * 1024;

/**
 * The most bytes of JSON one byte of a request can become when the worker
 * re-encodes it for a companion: a control character (one byte in UTF-8 or
 * protobuf) is written `\u0001`, six bytes. Everything else grows less (a
 * four-byte character stays four bytes; a protobuf double of 9 bytes with its
 * framing becomes at most 25 characters of JSON with its framing of 11).
 */
export const MAX_JSON_EXPANSION = 6;

/**
 * Body limit of the companions' JSON services: above the largest body the
 * worker can send them, i.e. the whole largest accepted request re-encoded
 * at the worst expansion (1.5 MiB), plus 64 KiB for the fields the worker
 * adds (ids, role, names). Still far below a memory problem.
 */
export const COMPANION_MAX_BODY_BYTES = API_MAX_REQUEST_BYTES * MAX_JSON_EXPANSION + 64 * 1024;

/** A `host:port` pair, as Temporal and Kafka addresses are written. */
export interface HostPort {
  host: string;
  port: number;
}

function raw(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === "" ? undefined : value;
}

function parsePortValue(value: string): number | undefined {
  if (!/^\d{1,5}$/.test(value)) return undefined;
  const port = Number(value);
  return port <= 65535 ? port : undefined;
}

function port(env: Env, name: string, fallback: number): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const parsed = parsePortValue(value);
  if (parsed === undefined) throw new ConfigError(name, "a port number 0-65535", value);
  return parsed;
}

function parseHostPort(name: string, value: string): HostPort {
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  const parsedPort = match?.[2] === undefined ? undefined : parsePortValue(match[2]);
  if (!match?.[1] || parsedPort === undefined || parsedPort === 0) {
    throw new ConfigError(name, "host:port, e.g. temporal:7233", value);
  }
  return { host: match[1], port: parsedPort };
}

function hostPort(env: Env, name: string, fallback: string): HostPort {
  return parseHostPort(name, raw(env, name) ?? fallback);
}

function hostPortList(env: Env, name: string): HostPort[] {
  const value = raw(env, name);
  if (value === undefined) return [];
  return value.split(",").map((item) => {
    try {
      return parseHostPort(name, item.trim());
    } catch {
      throw new ConfigError(name, "comma-separated host:port pairs, e.g. kafka-1:9092,kafka-2:9092", value);
    }
  });
}

function httpUrl(env: Env, name: string, fallback: string): URL {
  const value = raw(env, name) ?? fallback;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(name, "an absolute http(s) URL", value);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(name, "an absolute http(s) URL", value);
  }
  return url;
}

function optionalHttpUrl(env: Env, name: string): URL | undefined {
  return raw(env, name) === undefined ? undefined : httpUrl(env, name, "");
}

function text(env: Env, name: string, fallback: string, pattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/): string {
  const value = raw(env, name) ?? fallback;
  if (!pattern.test(value)) throw new ConfigError(name, `a value matching ${pattern}`, value);
  return value;
}

function positiveInt(env: Env, name: string, fallback: number): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new ConfigError(name, "a positive integer", value);
  return Number(value);
}

function nonNegativeInt(env: Env, name: string, fallback: number): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^\d{1,9}$/.test(value)) throw new ConfigError(name, "a whole number ≥ 0", value);
  return Number(value);
}

/** A file or directory path, made absolute against the working directory. */
function optionalPath(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  return value === undefined ? undefined : resolve(value);
}

function list(env: Env, name: string): string[] {
  return (raw(env, name) ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

/** What a shared secret (client secret, admin token) may be: what `openssl rand -base64 32` or `-hex 32` prints. */
const SECRET_FORM = "32-512 characters of A-Z a-z 0-9 . _ ~ + / = - (e.g. openssl rand -base64 32)";

/** A shared secret; malformed values are reported without being echoed. */
function optionalSecret(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  if (!/^[A-Za-z0-9._~+/=-]{32,512}$/.test(value)) throw new ConfigError(name, SECRET_FORM, "<redacted>");
  return value;
}

function requiredSecret(env: Env, name: string): string {
  const value = optionalSecret(env, name);
  if (value === undefined) throw new ConfigError(name, SECRET_FORM, undefined);
  return value;
}

/**
 * The host names a companion answers to (its `Host` check): the variable's
 * comma-separated names, or by default `localhost` and its listen host.
 */
function allowedHosts(env: Env, name: string, listenHost: string): string[] {
  const given = list(env, name);
  if (given.length === 0) return [...new Set(["localhost", listenHost])];
  for (const host of given) {
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(host)) throw new ConfigError(name, "comma-separated host names, e.g. policy-engine,policy-engine.internal", raw(env, name));
  }
  return given;
}

/** How the worker authenticates to the identity service, and what the service accepts: one client id and secret. */
export interface ClientCredentials {
  /** `IDENTITY_SERVICE_CLIENT_ID` (default `somagent-worker`). */
  id: string;
  /** `IDENTITY_SERVICE_CLIENT_SECRET` (required). */
  secret: string;
}

function identityClientCredentials(env: Env): ClientCredentials {
  return {
    id: text(env, "IDENTITY_SERVICE_CLIENT_ID", "somagent-worker", /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/),
    secret: requiredSecret(env, "IDENTITY_SERVICE_CLIENT_SECRET"),
  };
}

/** An AES-256-GCM key for the Temporal payload codec. */
export interface CodecKey {
  id: string;
  key: Buffer;
}

/**
 * `PAYLOAD_CODEC_KEYS`: `id:base64key[,id:base64key...]`, each key 32 bytes.
 * The first key encrypts; every key decrypts, so keys can rotate.
 */
function codecKeys(env: Env): CodecKey[] {
  const name = "PAYLOAD_CODEC_KEYS";
  const expected = "comma-separated id:base64 pairs, each key 32 bytes (openssl rand -base64 32)";
  const value = raw(env, name);
  if (value === undefined) throw new ConfigError(name, expected, undefined);
  const keys = value.split(",").map((item) => {
    const [id, encoded, ...rest] = item.trim().split(":");
    const key = Buffer.from(encoded ?? "", "base64");
    if (!id || !/^[A-Za-z0-9._-]+$/.test(id) || rest.length > 0 || key.length !== 32) {
      throw new ConfigError(name, expected, "<redacted>");
    }
    return { id, key };
  });
  if (new Set(keys.map((k) => k.id)).size !== keys.length) throw new ConfigError(name, "unique key ids", "<redacted>");
  return keys;
}

/** How to reach Temporal; shared by the API and the worker. */
export interface TemporalConfig {
  address: HostPort;
  namespace: string;
  taskQueue: string;
  codecKeys: CodecKey[];
}

function temporalConfig(env: Env): TemporalConfig {
  return {
    address: hostPort(env, "TEMPORAL_TARGET_HOST", "temporal:7233"),
    namespace: text(env, "TEMPORAL_NAMESPACE", "default"),
    taskQueue: text(env, "TEMPORAL_TASK_QUEUE", "somagent.session.workflows"),
    codecKeys: codecKeys(env),
  };
}

/** Telemetry export; traces go nowhere when the endpoint is unset. */
export interface TelemetryConfig {
  otlpEndpoint: URL | undefined;
  serviceName: string;
}

function telemetryConfig(env: Env, serviceName: string): TelemetryConfig {
  return {
    otlpEndpoint: optionalHttpUrl(env, "OTEL_EXPORTER_OTLP_ENDPOINT"),
    serviceName: text(env, "OTEL_SERVICE_NAME", serviceName),
  };
}

/** What the API's port lets one connection, stream and caller take; every limit has its own error. */
export interface EdgeLimits {
  /** `API_HEADERS_TIMEOUT_MS`: time for a connection's first bytes and each request's header block (default 10 s). */
  headersTimeoutMs: number;
  /** `API_REQUEST_TIMEOUT_MS`: time to receive a whole request, headers and body (default 30 s). */
  requestTimeoutMs: number;
  /** `API_KEEPALIVE_TIMEOUT_MS`: an HTTP/1.1 connection idle between requests is closed after this (default 5 s). */
  keepAliveTimeoutMs: number;
  /** `API_IDLE_TIMEOUT_MS`: an HTTP/2 connection with no open stream is closed after this (default 60 s). */
  idleTimeoutMs: number;
  /** `API_MAX_CONNECTIONS`: open connections; past it, requests answer RESOURCE_EXHAUSTED and the connection closes (default 1000). */
  maxConnections: number;
  /** `API_MAX_HTTP2_STREAMS`: concurrent streams per HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS, default 100). */
  maxHttp2Streams: number;
  /** `API_MAX_STREAMS_PER_CALLER`: open server streams (Watch) per caller (default 32). */
  maxStreamsPerCaller: number;
  /** `API_MAX_STREAM_AGE_MS`: a server stream ends cleanly after this; the client resumes from its last sequence (default 30 min). */
  maxStreamAgeMs: number;
}

/** The limits when no variable says otherwise. */
export const DEFAULT_EDGE_LIMITS: Readonly<EdgeLimits> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 60_000,
  maxConnections: 1_000,
  maxHttp2Streams: 100,
  maxStreamsPerCaller: 32,
  maxStreamAgeMs: 30 * 60_000,
};

function edgeLimits(env: Env): EdgeLimits {
  const d = DEFAULT_EDGE_LIMITS;
  const limits: EdgeLimits = {
    headersTimeoutMs: positiveInt(env, "API_HEADERS_TIMEOUT_MS", d.headersTimeoutMs),
    requestTimeoutMs: positiveInt(env, "API_REQUEST_TIMEOUT_MS", d.requestTimeoutMs),
    keepAliveTimeoutMs: positiveInt(env, "API_KEEPALIVE_TIMEOUT_MS", d.keepAliveTimeoutMs),
    idleTimeoutMs: positiveInt(env, "API_IDLE_TIMEOUT_MS", d.idleTimeoutMs),
    maxConnections: positiveInt(env, "API_MAX_CONNECTIONS", d.maxConnections),
    maxHttp2Streams: positiveInt(env, "API_MAX_HTTP2_STREAMS", d.maxHttp2Streams),
    maxStreamsPerCaller: positiveInt(env, "API_MAX_STREAMS_PER_CALLER", d.maxStreamsPerCaller),
    maxStreamAgeMs: positiveInt(env, "API_MAX_STREAM_AGE_MS", d.maxStreamAgeMs),
  };
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new ConfigError("API_HEADERS_TIMEOUT_MS", `at most API_REQUEST_TIMEOUT_MS (${limits.requestTimeoutMs})`, String(limits.headersTimeoutMs));
  }
  return limits;
}

/**
 * Caller authentication of the API (`API_AUTH_*`): every SessionService call
 * carries `Authorization: Bearer <JWT>` verified against this issuer's JWKS.
 * The caller's user is the token's `sub`, its tenant the `tenant_id` claim
 * (what the identity service issues).
 */
export interface ApiAuthConfig {
  /** `API_AUTH_JWKS_URL`: the issuer's JSON Web Key Set. */
  jwksUrl: URL;
  /** `API_AUTH_ISSUER`: the `iss` every token must carry. */
  issuer: string;
  /** `API_AUTH_AUDIENCE`: an `aud` every token must carry (this API's name). */
  audience: string;
  /** `API_AUTH_CLOCK_SKEW_SECONDS`: tolerance for `exp`, `nbf` and `iat` (default 30). */
  clockSkewSeconds: number;
  /** `API_AUTH_JWKS_TIMEOUT_MS`: one fetch of the JWKS (default 5000). */
  jwksTimeoutMs: number;
  /** `API_AUTH_JWKS_COOLDOWN_MS`: after a fetch, a token naming an unknown `kid` fetches the JWKS again only past this (default 30000). */
  jwksCooldownMs: number;
}

const API_AUTH_VARIABLES = ["API_AUTH_JWKS_URL", "API_AUTH_ISSUER", "API_AUTH_AUDIENCE"] as const;

/**
 * `undefined` when `API_AUTH_JWKS_URL` is unset (the API is open). Setting
 * the issuer or audience without the JWKS URL, or the URL without both, is an
 * error: a half-configured API must not start open.
 */
function apiAuthConfig(env: Env): ApiAuthConfig | undefined {
  const given = API_AUTH_VARIABLES.filter((name) => raw(env, name) !== undefined);
  if (given.length === 0) return undefined;
  const missing = API_AUTH_VARIABLES.find((name) => raw(env, name) === undefined);
  if (missing !== undefined) {
    throw new ConfigError(missing, `a value when ${given.join(" and ")} ${given.length === 1 ? "is" : "are"} set (API_AUTH_JWKS_URL, API_AUTH_ISSUER and API_AUTH_AUDIENCE go together)`, undefined);
  }
  const claimText = /^[\x21-\x7e]{1,256}$/;
  return {
    jwksUrl: httpUrl(env, "API_AUTH_JWKS_URL", ""),
    issuer: text(env, "API_AUTH_ISSUER", "", claimText),
    audience: text(env, "API_AUTH_AUDIENCE", "", claimText),
    clockSkewSeconds: nonNegativeInt(env, "API_AUTH_CLOCK_SKEW_SECONDS", 30),
    jwksTimeoutMs: positiveInt(env, "API_AUTH_JWKS_TIMEOUT_MS", 5_000),
    jwksCooldownMs: nonNegativeInt(env, "API_AUTH_JWKS_COOLDOWN_MS", 30_000),
  };
}

/** Configuration of the API process. */
export interface ApiConfig {
  /** Caller authentication; `undefined` when `API_AUTH_JWKS_URL` is unset (the API is open). */
  auth: ApiAuthConfig | undefined;
  host: string;
  port: number;
  corsAllowedOrigins: string[];
  /** `CODEC_ALLOWED_ORIGINS`: browser origins of the Temporal Web UI allowed to call `/codec/*` (default the local dev server's UI). */
  codecAllowedOrigins: string[];
  /** Time in-flight calls get to finish on SIGTERM. */
  shutdownGraceMs: number;
  limits: EdgeLimits;
  temporal: TemporalConfig;
  telemetry: TelemetryConfig;
  /** The built session console served at `/` (see {@link consoleConfig}). */
  console: ConsoleConfig;
}

/** Where the API finds the built session console. */
export interface ConsoleConfig {
  dir: string;
  /** True when `API_CONSOLE_DIR` named the directory: the API then refuses to start without a console in it. */
  required: boolean;
}

/** Where `npm install` and `npm run build` write the console (console/build.ts), under the package root. */
const DEFAULT_CONSOLE_DIR = join("dist", "console");

/**
 * `API_CONSOLE_DIR`, absolute; by default `dist/console` of the package
 * root (the nearest directory above this module with a `package.json`: the
 * checkout, or the image's `/app`), served only once it has been built.
 */
function consoleConfig(env: Env): ConsoleConfig {
  const given = optionalPath(env, "API_CONSOLE_DIR");
  return given === undefined ? { dir: join(packageRoot(import.meta.dirname), DEFAULT_CONSOLE_DIR), required: false } : { dir: given, required: true };
}

function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) return resolve(".");
  }
}

/** Reads the API's configuration; throws {@link ConfigError}. */
export function loadApiConfig(env: Env = process.env): ApiConfig {
  return {
    host: text(env, "HOST", "0.0.0.0", /^[0-9A-Za-z.:-]+$/),
    port: port(env, "PORT", 8090),
    corsAllowedOrigins: list(env, "CORS_ALLOWED_ORIGINS"),
    codecAllowedOrigins: raw(env, "CODEC_ALLOWED_ORIGINS") === undefined ? ["http://127.0.0.1:8233", "http://localhost:8233"] : list(env, "CODEC_ALLOWED_ORIGINS"),
    shutdownGraceMs: positiveInt(env, "SHUTDOWN_GRACE_MS", 10_000),
    limits: edgeLimits(env),
    auth: apiAuthConfig(env),
    temporal: temporalConfig(env),
    telemetry: telemetryConfig(env, "somagent-orchestrator-api"),
    console: consoleConfig(env),
  };
}

/** Where the Ray dashboard (Serve REST API) and the Serve HTTP proxy are. */
export interface RayConfig {
  /** `RAY_ADDRESS` as given: `auto`, `ray://host:port`, `host:port` or a dashboard URL. */
  address: string;
  namespace: string;
  dashboardUrl: URL;
  serveUrl: URL;
  /** Bearer token for the dashboard when Ray's token authentication is on. */
  authToken: string | undefined;
  /** Limits of calls to the dashboard, the Serve route, and of waiting for a deployment. */
  timeouts: RayTimeouts;
  /** The model provider the Serve application calls; `url` unset means its deterministic responder. */
  slmProvider: SlmProviderConfig;
}

/** Time limits for Ray calls, in milliseconds. */
export interface RayTimeouts {
  /** `RAY_DASHBOARD_TIMEOUT_MS`: one call to the dashboard's REST API (default 10 s). */
  dashboardMs: number;
  /** `RAY_SERVE_TIMEOUT_MS`: one completion through the Serve proxy (default 60 s). */
  completionMs: number;
  /** `RAY_DEPLOY_TIMEOUT_MS`: waiting for the application to become RUNNING (default 120 s). */
  deployMs: number;
}

/** `SLM_PROVIDER_*`: the OpenAI-compatible upstream the Serve application forwards to. */
export interface SlmProviderConfig {
  /** `SLM_PROVIDER_URL`: upstream root (`/v1/chat/completions` is appended) or its `/v1`. */
  url: URL | undefined;
  /** `SLM_PROVIDER_API_KEY`: sent upstream as a bearer token; reaches the replica as an env var. */
  apiKey: string | undefined;
  /** `SLM_PROVIDER_MODEL`: replaces the session's model name upstream. */
  model: string | undefined;
  /** `SLM_PROVIDER_TIMEOUT_MS`: the replica's limit for one upstream call (default 30 s). */
  timeoutMs: number;
}

/**
 * Maps the seed's `RAY_ADDRESS` onto Ray's HTTP endpoints: `auto` is the local
 * dashboard (127.0.0.1:8265); `ray://host:port` and `host:port` mean the
 * dashboard on that host's port 8265; an http(s) URL is the dashboard itself.
 * `RAY_DASHBOARD_URL` and `RAY_SERVE_URL` override the derived values.
 */
function rayConfig(env: Env): RayConfig {
  const address = raw(env, "RAY_ADDRESS") ?? "auto";
  let host: string;
  if (address === "auto") host = "127.0.0.1";
  else if (/^https?:\/\//.test(address)) host = httpUrl(env, "RAY_ADDRESS", address).hostname;
  else {
    const match = /^(?:ray:\/\/)?([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$/.exec(address);
    if (!match?.[1]) throw new ConfigError("RAY_ADDRESS", "auto, ray://host:port, host:port or http(s)://dashboard", address);
    host = match[1];
  }
  const derivedDashboard = /^https?:\/\//.test(address) ? address : `http://${host}:8265`;
  return {
    address,
    namespace: text(env, "RAY_NAMESPACE", "somagent"),
    dashboardUrl: httpUrl(env, "RAY_DASHBOARD_URL", derivedDashboard),
    serveUrl: httpUrl(env, "RAY_SERVE_URL", `http://${host}:8000`),
    authToken: raw(env, "RAY_AUTH_TOKEN"),
    timeouts: {
      dashboardMs: positiveInt(env, "RAY_DASHBOARD_TIMEOUT_MS", 10_000),
      completionMs: positiveInt(env, "RAY_SERVE_TIMEOUT_MS", 60_000),
      deployMs: positiveInt(env, "RAY_DEPLOY_TIMEOUT_MS", 120_000),
    },
    slmProvider: {
      url: optionalHttpUrl(env, "SLM_PROVIDER_URL"),
      apiKey: raw(env, "SLM_PROVIDER_API_KEY"),
      model: raw(env, "SLM_PROVIDER_MODEL") === undefined
        ? undefined
        : text(env, "SLM_PROVIDER_MODEL", "", /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/),
      timeoutMs: positiveInt(env, "SLM_PROVIDER_TIMEOUT_MS", 30_000),
    },
  };
}

/** Kafka audit publishing; `brokers` is empty when `KAFKA_BOOTSTRAP_SERVERS` is unset. */
export interface KafkaConfig {
  brokers: HostPort[];
  clientId: string;
  auditTopic: string;
  auditTopicPartitions: number;
  auditTopicReplicationFactor: number;
}

/** Reads the Kafka settings alone (the local launcher creates the audit topic from them); throws {@link ConfigError}. */
export function loadKafkaConfig(env: Env = process.env): KafkaConfig {
  return {
    brokers: hostPortList(env, "KAFKA_BOOTSTRAP_SERVERS"),
    clientId: text(env, "KAFKA_CLIENT_ID", "somagent-orchestrator"),
    auditTopic: text(env, "KAFKA_AUDIT_TOPIC", "agent.audit"),
    auditTopicPartitions: positiveInt(env, "KAFKA_AUDIT_TOPIC_PARTITIONS", 3),
    auditTopicReplicationFactor: positiveInt(env, "KAFKA_AUDIT_TOPIC_REPLICATION_FACTOR", 1),
  };
}

/** What an attempt adds to its calls' own limits: time for the activity around them and the result's way back. */
const ATTEMPT_MARGIN_MS = 5_000;

/**
 * The audit producer's kafkajs limits (src/clients/audit-producer.ts): one request, and its own
 * retries, kept short so Temporal's retry policy is the one that matters.
 */
export const KAFKA_PRODUCER_TIMEOUTS = {
  connectionTimeout: 3_000,
  requestTimeout: 10_000,
  retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 2_000 },
} as const;

/** kafkajs's bound of one audit publish: each try's request, with at most `maxRetryTime` between tries. */
const AUDIT_PUBLISH_LIMIT_MS =
  (KAFKA_PRODUCER_TIMEOUTS.retry.retries + 1) * KAFKA_PRODUCER_TIMEOUTS.requestTimeout +
  KAFKA_PRODUCER_TIMEOUTS.retry.retries * KAFKA_PRODUCER_TIMEOUTS.retry.maxRetryTime;

/**
 * How long the identity service answers a spent MFA code again to the session
 * that spent it (src/companions/identity-service/server.ts): a retry of the
 * token step later than that would be refused, so its budget may not exceed it.
 */
const IDENTITY_SESSION_RETRY_WINDOW_MS = 10 * 60_000;

/**
 * A step's budget (`name`, default `fallback`): at least its attempt, so the
 * first attempt is never cut short by the budget, and at most `maxMs`.
 */
function retryBudget(env: Env, name: string, fallback: number, attempt: { ms: number; from: string }, maxMs = Number.MAX_SAFE_INTEGER): StepTimeouts {
  const budgetMs = positiveInt(env, name, fallback);
  if (budgetMs < attempt.ms) {
    throw new ConfigError(name, `at least one attempt's limit, ${attempt.from} = ${attempt.ms} ms`, String(budgetMs));
  }
  if (budgetMs > maxMs) throw new ConfigError(name, `at most ${maxMs} ms`, String(budgetMs));
  return { attemptMs: attempt.ms, budgetMs };
}

/**
 * The retry budgets (`*_RETRY_BUDGET_MS`) and each attempt's limit, derived from
 * the calls the step makes so that call ≤ attempt ≤ budget always holds.
 */
function sessionTimeouts(env: Env, calls: { policyMs: number; identityMs: number; completionMs: number }): SessionTimeouts {
  return {
    policy: retryBudget(env, "POLICY_ENGINE_RETRY_BUDGET_MS", 45_000, {
      ms: calls.policyMs + ATTEMPT_MARGIN_MS,
      from: "POLICY_ENGINE_TIMEOUT_MS + 5000",
    }),
    // Two calls in one attempt: the token request, then (when the key is not cached) the JWKS fetch.
    identity: retryBudget(
      env,
      "IDENTITY_SERVICE_RETRY_BUDGET_MS",
      45_000,
      { ms: 2 * calls.identityMs + ATTEMPT_MARGIN_MS, from: "2 × IDENTITY_SERVICE_TIMEOUT_MS + 5000" },
      IDENTITY_SESSION_RETRY_WINDOW_MS,
    ),
    // The wait for the worker's deployment counts inside the completion's own limit (ray-serve-completions.ts).
    completion: retryBudget(env, "RAY_SERVE_RETRY_BUDGET_MS", 120_000, {
      ms: calls.completionMs + ATTEMPT_MARGIN_MS,
      from: "RAY_SERVE_TIMEOUT_MS + 5000",
    }),
    audit: retryBudget(env, "AUDIT_RETRY_BUDGET_MS", 300_000, {
      ms: AUDIT_PUBLISH_LIMIT_MS + ATTEMPT_MARGIN_MS,
      from: `the Kafka producer's limit of one publish (${AUDIT_PUBLISH_LIMIT_MS}) + 5000`,
    }),
  };
}

/** Configuration of the worker process. */
export interface WorkerConfig {
  temporal: TemporalConfig;
  policyEngineUrl: URL;
  /** `POLICY_ENGINE_TIMEOUT_MS`: one call to the policy engine (default 10 s). */
  policyEngineTimeoutMs: number;
  identityServiceUrl: URL;
  /** Sent to the identity service as HTTP Basic on every token request. */
  identityClient: ClientCredentials;
  /** `IDENTITY_SERVICE_TIMEOUT_MS`: one call to the identity service or its JWKS (default 10 s). */
  identityServiceTimeoutMs: number;
  kafka: KafkaConfig;
  ray: RayConfig;
  /** Each step's attempt limit and retry budget (`*_RETRY_BUDGET_MS`); sessions read them when they start. */
  sessionTimeouts: SessionTimeouts;
  metricsHost: string;
  /** `WORKER_METRICS_PORT`: our `/metrics` (prom-client) and `/health` (default 9464). */
  metricsPort: number;
  /** `WORKER_SDK_METRICS_PORT`: the Temporal SDK's own Prometheus exporter (default 9465). */
  sdkMetricsPort: number;
  /** `WORKFLOW_BUNDLE_PATH`: a prebuilt workflow bundle (production); unset, the workflow source is bundled at start. */
  workflowBundlePath: string | undefined;
  telemetry: TelemetryConfig;
}

/** Reads the worker's configuration; throws {@link ConfigError}. */
export function loadWorkerConfig(env: Env = process.env): WorkerConfig {
  const policyEngineTimeoutMs = positiveInt(env, "POLICY_ENGINE_TIMEOUT_MS", 10_000);
  const identityServiceTimeoutMs = positiveInt(env, "IDENTITY_SERVICE_TIMEOUT_MS", 10_000);
  const ray = rayConfig(env);
  return {
    temporal: temporalConfig(env),
    policyEngineUrl: httpUrl(env, "POLICY_ENGINE_URL", "http://policy-engine:8000/v1/evaluate"),
    policyEngineTimeoutMs,
    identityServiceUrl: httpUrl(env, "IDENTITY_SERVICE_URL", "http://identity-service:8000/v1/tokens/issue"),
    identityClient: identityClientCredentials(env),
    identityServiceTimeoutMs,
    kafka: loadKafkaConfig(env),
    ray,
    sessionTimeouts: sessionTimeouts(env, {
      policyMs: policyEngineTimeoutMs,
      identityMs: identityServiceTimeoutMs,
      completionMs: ray.timeouts.completionMs,
    }),
    metricsHost: text(env, "WORKER_METRICS_HOST", "0.0.0.0", /^[0-9A-Za-z.:-]+$/),
    metricsPort: port(env, "WORKER_METRICS_PORT", 9464),
    sdkMetricsPort: port(env, "WORKER_SDK_METRICS_PORT", 9465),
    workflowBundlePath: optionalPath(env, "WORKFLOW_BUNDLE_PATH"),
    telemetry: telemetryConfig(env, "somagent-orchestrator-worker"),
  };
}

/** Configuration of the policy engine companion. */
export interface PolicyEngineConfig {
  /** `POLICY_ENGINE_HOST` (default 127.0.0.1). */
  host: string;
  /** `POLICY_ENGINE_PORT` (default 8101). */
  port: number;
  /**
   * `POLICY_ENGINE_RULES_FILE`: rules to load, and where accepted PUTs are
   * written back; unset means the shipped `default-policies.json`, with edits
   * kept in memory only.
   */
  rulesFile: string | undefined;
  /**
   * `POLICY_ENGINE_ADMIN_TOKEN`: the bearer token the admin API
   * (`/v1/policies/{tenant}`) requires; unset, the admin API is off (403).
   */
  adminToken: string | undefined;
  /** `POLICY_ENGINE_MAX_TENANTS`: tenant rule sets the engine holds, `default` included (default 1000). */
  maxTenants: number;
  /** `POLICY_ENGINE_ALLOWED_HOSTS`: names its `Host` check accepts (default `localhost` and the listen host). */
  allowedHosts: string[];
  telemetry: TelemetryConfig;
}

/** Reads the policy engine's configuration; throws {@link ConfigError}. */
export function loadPolicyEngineConfig(env: Env = process.env): PolicyEngineConfig {
  const host = text(env, "POLICY_ENGINE_HOST", "127.0.0.1", /^[0-9A-Za-z.:-]+$/);
  return {
    host,
    port: port(env, "POLICY_ENGINE_PORT", 8101),
    rulesFile: optionalPath(env, "POLICY_ENGINE_RULES_FILE"),
    adminToken: optionalSecret(env, "POLICY_ENGINE_ADMIN_TOKEN"),
    maxTenants: positiveInt(env, "POLICY_ENGINE_MAX_TENANTS", 1000),
    allowedHosts: allowedHosts(env, "POLICY_ENGINE_ALLOWED_HOSTS", host),
    telemetry: telemetryConfig(env, "somagent-policy-engine"),
  };
}

/** Configuration of the identity service companion. */
export interface IdentityServiceConfig {
  /** `IDENTITY_SERVICE_HOST` (default 127.0.0.1). */
  host: string;
  /** `IDENTITY_SERVICE_PORT` (default 8102). */
  port: number;
  /** `IDENTITY_SERVICE_USERS_FILE`: users and capabilities; unset means the shipped `default-users.json`. */
  usersFile: string | undefined;
  /** `IDENTITY_SERVICE_KEY_DIR`: where the Ed25519 signing key persists (default ~/.cache/somagent-orchestrator/identity-keys). */
  keyDir: string;
  /** `IDENTITY_TOKEN_TTL_SECONDS`: lifetime of issued tokens (default 900). */
  tokenTtlSeconds: number;
  /** `IDENTITY_SERVICE_ISSUER`: the tokens' `iss` claim (default `somagent-identity-service`). */
  issuer: string;
  /** The one client (the worker) allowed to ask for and verify tokens. */
  client: ClientCredentials;
  /** `IDENTITY_SERVICE_MAX_FAILED_ATTEMPTS`: refused token requests in a row after which a user is locked out (default 5). */
  maxFailedAttempts: number;
  /** `IDENTITY_SERVICE_LOCKOUT_SECONDS`: the first lockout's length; each further one doubles it, up to a day (default 300). */
  lockoutSeconds: number;
  /** `IDENTITY_SERVICE_ALLOWED_HOSTS`: names its `Host` check accepts (default `localhost` and the listen host). */
  allowedHosts: string[];
  telemetry: TelemetryConfig;
}

/** Reads the identity service's configuration; throws {@link ConfigError}. */
export function loadIdentityServiceConfig(env: Env = process.env): IdentityServiceConfig {
  const host = text(env, "IDENTITY_SERVICE_HOST", "127.0.0.1", /^[0-9A-Za-z.:-]+$/);
  return {
    host,
    port: port(env, "IDENTITY_SERVICE_PORT", 8102),
    usersFile: optionalPath(env, "IDENTITY_SERVICE_USERS_FILE"),
    keyDir: optionalPath(env, "IDENTITY_SERVICE_KEY_DIR") ?? join(homedir(), ".cache", "somagent-orchestrator", "identity-keys"),
    tokenTtlSeconds: positiveInt(env, "IDENTITY_TOKEN_TTL_SECONDS", 900),
    issuer: text(env, "IDENTITY_SERVICE_ISSUER", "somagent-identity-service", /^[A-Za-z0-9][A-Za-z0-9._:\/-]{0,255}$/),
    client: identityClientCredentials(env),
    maxFailedAttempts: positiveInt(env, "IDENTITY_SERVICE_MAX_FAILED_ATTEMPTS", 5),
    lockoutSeconds: positiveInt(env, "IDENTITY_SERVICE_LOCKOUT_SECONDS", 300),
    allowedHosts: allowedHosts(env, "IDENTITY_SERVICE_ALLOWED_HOSTS", host),
    telemetry: telemetryConfig(env, "somagent-identity-service"),
  };
}

/**
 * `LOG_LEVEL` of every process (API, worker, companions): the least severe
 * level written, `info` by default. Read on its own so a process can log its
 * configuration errors in the one format before the rest is read.
 */
export function loadLogLevel(env: Env = process.env): LogLevel {
  const value = raw(env, "LOG_LEVEL")?.toLowerCase() ?? "info";
  if (!LOG_LEVELS.includes(value as LogLevel)) throw new ConfigError("LOG_LEVEL", LOG_LEVELS.join(", "), value);
  return value as LogLevel;
}
