/**
 * The Ray side of `run-slm-completion`: declares the `somagent_slm` Serve
 * application through the Ray dashboard's Serve REST API and sends completions
 * to it through the Serve HTTP proxy. No Python runs in the worker.
 */
import { createHash } from "node:crypto";
import { Agent, type Dispatcher } from "undici";
import type { RayConfig } from "../config.js";
import type { CompletionResult } from "../workflows/contract.js";
import { PermanentCallError, TransientCallError } from "../shared/call-errors.js";
import { isRecord, requestJson } from "./http-json.js";

/** Metric and error label of calls to the Serve HTTP proxy. */
export const RAY_SERVE_TARGET = "ray-serve";
/** Metric and error label of calls to the dashboard's Serve REST API. */
export const RAY_DASHBOARD_TARGET = "ray-dashboard";
/** Version of the Python package `ray/somagent_slm`; part of the fingerprint, so a bump redeploys. */
export const SLM_APP_VERSION = "0.1.0";
/** The application builder the cluster imports (the package must be on the cluster's PYTHONPATH). */
export const SLM_IMPORT_PATH = "somagent_slm.app:build";

/** One completion, as the activity asks for it. */
export interface CompletionRequest {
  prompt: string;
  model: string;
  sessionId: string;
  /** 1-4096; the application's default (256) when unset. */
  maxTokens?: number;
}

/** Where our application lives on the cluster, derived from `RAY_NAMESPACE`. */
export interface SlmApplicationName {
  /** Serve application name: `{namespace}-slm`. */
  name: string;
  /** HTTP route prefix on the Serve proxy: `/{namespace}/slm`. */
  routePrefix: string;
}

/** What the dashboard reports about our application. */
export interface SlmApplicationStatus extends SlmApplicationName {
  /** Serve's application status (`RUNNING`, `DEPLOYING`, `DEPLOY_FAILED`, …) or `NOT_DEPLOYED`. */
  status: string;
  /** Serve's message for the status; empty when it has none. */
  message: string;
  /** Whether the deployed configuration is the one this client would declare. */
  upToDate: boolean;
  /** Fingerprint of the configuration this client declares. */
  fingerprint: string;
}

/** Deploys and calls the SLM Serve application. */
export interface RayServeClient {
  /**
   * Declares the application when it is absent or outdated (keeping every other
   * declaratively deployed application) and waits until it is RUNNING and the
   * Serve proxy routes `GET {prefix}/healthz` to a replica of this configuration.
   * Throws {@link TransientCallError} when the dashboard or the Serve proxy is
   * unreachable or the deadline passes, {@link PermanentCallError} when Ray refuses the token or the
   * configuration, or the deployment fails.
   */
  ensureDeployed(signal?: AbortSignal): Promise<void>;
  /** Reads the application's status; throws like {@link RayServeClient.ensureDeployed}. */
  status(signal?: AbortSignal): Promise<SlmApplicationStatus>;
  /**
   * Runs one completion, deploying the application first if this client has
   * not seen it RUNNING (and again if the route has vanished; after a
   * transient failure the next call checks the deployment first). Throws
   * {@link TransientCallError} when Ray Serve is unreachable, not ready or
   * answers 5xx, {@link PermanentCallError} for a rejected request (4xx, the
   * message names the field) or a malformed answer.
   */
  complete(request: CompletionRequest, signal?: AbortSignal): Promise<CompletionResult>;
  /** Closes the client's connections to the dashboard. */
  close(): Promise<void>;
}

/** Tuning that tests and the launcher may change. */
export interface RayServeClientOptions {
  /** How often to poll the dashboard while waiting for RUNNING (default 500 ms). */
  pollIntervalMs?: number;
}

/** Maps `RAY_NAMESPACE` to the application name and route prefix. */
export function slmApplicationName(namespace: string): SlmApplicationName {
  return { name: `${namespace}-slm`, routePrefix: `/${namespace}/slm` };
}

/** One Serve application in the REST API's schema (`ServeApplicationSchema`). */
type AppConfig = Record<string, unknown> & { name: string; route_prefix?: string; args?: Record<string, unknown> };

interface AppDetails {
  status?: string;
  message?: string;
  source?: string;
  deployed_app_config?: AppConfig | null;
}

interface InstanceDetails {
  controller_info?: Record<string, unknown>;
  proxy_location?: string;
  http_options?: Record<string, unknown>;
  grpc_options?: Record<string, unknown>;
  target_capacity?: number | null;
  applications: Record<string, AppDetails>;
}

/**
 * The application configuration this client declares, with a fingerprint of
 * everything in it in `args.config_fingerprint` so an outdated deployment is
 * recognised without comparing Serve's normalised copy field by field.
 */
export function slmApplicationConfig(config: RayConfig): AppConfig {
  const { name, routePrefix } = slmApplicationName(config.namespace);
  const provider = config.slmProvider;
  const args: Record<string, unknown> = { request_timeout_s: provider.timeoutMs / 1000 };
  if (provider.url) args.provider_url = provider.url.href;
  if (provider.model) args.provider_model = provider.model;
  // The key goes into the replica's environment, not into args, which GET shows to everyone.
  const runtimeEnv = provider.apiKey ? { env_vars: { SLM_PROVIDER_API_KEY: provider.apiKey } } : undefined;
  const app: AppConfig = { name, route_prefix: routePrefix, import_path: SLM_IMPORT_PATH, args };
  if (runtimeEnv) app.runtime_env = runtimeEnv;
  const fingerprint = createHash("sha256").update(JSON.stringify([SLM_APP_VERSION, app])).digest("hex").slice(0, 16);
  return { ...app, args: { ...args, config_fingerprint: fingerprint } };
}

/**
 * Node's `fetch` marks every request `Sec-Fetch-Mode: cors`, and the Ray
 * dashboard treats any `Sec-Fetch-*` header as a browser: it refuses PUT (405)
 * and redacts `runtime_env.env_vars` in GET answers. This pool drops them.
 */
function createDashboardDispatcher(): Dispatcher {
  return new Agent().compose((dispatch) => (options, handler) => {
    const headers = options.headers;
    if (headers && !Array.isArray(headers) && typeof headers === "object" && !(Symbol.iterator in headers)) {
      const kept = Object.fromEntries(
        Object.entries(headers as Record<string, string | string[] | undefined>).filter(([key]) => !key.toLowerCase().startsWith("sec-fetch-")),
      );
      return dispatch({ ...options, headers: kept }, handler);
    }
    return dispatch(options, handler);
  });
}

/** Drops the `target: ` prefix that call errors carry, to nest one message in another. */
function detail(error: TransientCallError | PermanentCallError): string {
  const prefix = `${error.target}: `;
  return error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

function parseCompletion(body: unknown): CompletionResult {
  const fail = (field: string): never => {
    throw new PermanentCallError(RAY_SERVE_TARGET, `answered a completion without a valid ${field}`);
  };
  if (!isRecord(body)) return fail("JSON object");
  const count = (field: string): number => {
    const value = body[field];
    return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 2 ** 31 - 1 ? value : fail(field);
  };
  const str = (field: string): string => (typeof body[field] === "string" ? (body[field] as string) : fail(field));
  return {
    text: str("text"),
    model: str("model"),
    provider: str("provider"),
    promptTokens: count("prompt_tokens"),
    completionTokens: count("completion_tokens"),
  };
}

/**
 * Builds the client. Dashboard calls carry `Authorization: Bearer <token>`
 * when `config.authToken` is set; calls to the Serve proxy carry no token (in
 * Ray 2.60 the proxy does not check it, and the replica would see it).
 */
export function createRayServeClient(config: RayConfig, options: RayServeClientOptions = {}): RayServeClient {
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  const desired = slmApplicationConfig(config);
  const fingerprint = String(desired.args?.config_fingerprint);
  const { name, routePrefix } = slmApplicationName(config.namespace);
  const applicationsUrl = new URL("api/serve/applications/", withSlash(config.dashboardUrl));
  const completionUrl = new URL(routePrefix.slice(1), withSlash(config.serveUrl));
  const healthUrl = new URL("healthz", withSlash(completionUrl));
  const dispatcher = createDashboardDispatcher();
  const authHeaders: Record<string, string> = config.authToken ? { authorization: `Bearer ${config.authToken}` } : {};
  let deployed: Promise<void> | undefined;

  async function dashboard(method: "GET" | "PUT", body: unknown, signal?: AbortSignal): Promise<unknown> {
    try {
      const response = await requestJson({
        target: RAY_DASHBOARD_TARGET,
        url: applicationsUrl,
        method,
        body,
        headers: authHeaders,
        timeoutMs: config.timeouts.dashboardMs,
        signal,
        dispatcher,
      });
      return response.body;
    } catch (error) {
      if (error instanceof TransientCallError) {
        throw new TransientCallError(RAY_DASHBOARD_TARGET, `Ray dashboard is unreachable or failing at ${config.dashboardUrl.origin} (${detail(error)})`, error.status, { cause: error });
      }
      if (error instanceof PermanentCallError && (error.status === 401 || error.status === 403)) {
        throw new PermanentCallError(RAY_DASHBOARD_TARGET, `Ray dashboard refused the request (${error.status}): set RAY_AUTH_TOKEN to the cluster's token`, error.status, { cause: error });
      }
      throw error;
    }
  }

  async function details(signal?: AbortSignal): Promise<InstanceDetails> {
    const body = await dashboard("GET", undefined, signal);
    if (!isRecord(body) || !isRecord(body.applications)) {
      throw new PermanentCallError(RAY_DASHBOARD_TARGET, "answered GET /api/serve/applications/ without an applications object");
    }
    return body as unknown as InstanceDetails;
  }

  function isOurs(app: AppDetails | undefined): boolean {
    return app?.deployed_app_config?.args?.config_fingerprint === fingerprint;
  }

  /** The whole declarative set with ours replaced, since PUT removes every application it does not list. */
  function declaration(current: InstanceDetails): Record<string, unknown> {
    const others: AppConfig[] = [];
    for (const [appName, app] of Object.entries(current.applications)) {
      if (appName === name || !app.deployed_app_config) continue; // imperative apps survive a PUT untouched
      if (JSON.stringify(app.deployed_app_config).includes('"<redacted>"')) {
        throw new PermanentCallError(RAY_DASHBOARD_TARGET, `application ${appName} was reported with redacted values; declaring would overwrite them`);
      }
      others.push(app.deployed_app_config);
    }
    const serveRunning = isRecord(current.controller_info) && Object.keys(current.controller_info).length > 0;
    const serve: Record<string, unknown> = serveRunning
      ? { proxy_location: current.proxy_location, http_options: current.http_options, grpc_options: current.grpc_options }
      : { http_options: { host: config.serveUrl.hostname, port: Number(config.serveUrl.port || (config.serveUrl.protocol === "https:" ? 443 : 80)) } };
    if (typeof current.target_capacity === "number") serve.target_capacity = current.target_capacity;
    return { ...serve, applications: [...others, desired] };
  }

  /**
   * The fingerprint the replica behind the proxy reports, or undefined while
   * the proxy has no route to it yet (404) or answers 5xx. The dashboard says
   * RUNNING before every proxy has learnt the route, so this is the last word.
   */
  async function servedFingerprint(signal?: AbortSignal): Promise<string | undefined> {
    try {
      const response = await requestJson({ target: RAY_SERVE_TARGET, url: healthUrl, timeoutMs: config.timeouts.dashboardMs, signal });
      const body = response.body;
      return isRecord(body) && typeof body.config_fingerprint === "string" ? body.config_fingerprint : undefined;
    } catch (error) {
      if (error instanceof PermanentCallError && error.status === 404) return undefined;
      if (error instanceof TransientCallError && error.status !== undefined) return undefined;
      if (error instanceof TransientCallError) {
        throw new TransientCallError(RAY_SERVE_TARGET, `Ray Serve is unreachable at ${healthUrl.href} (${detail(error)})`, undefined, { cause: error });
      }
      throw error;
    }
  }

  async function waitRunning(signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + config.timeouts.deployMs;
    for (;;) {
      const app = (await details(signal)).applications[name];
      if (isOurs(app)) {
        if (app?.status === "RUNNING" && (await servedFingerprint(signal)) === fingerprint) return;
        if (app?.status === "DEPLOY_FAILED") {
          throw new PermanentCallError(RAY_DASHBOARD_TARGET, `Ray Serve application ${name} failed to deploy: ${app.message ?? ""}`.trim());
        }
      }
      if (Date.now() + pollIntervalMs > deadline) {
        throw new TransientCallError(RAY_DASHBOARD_TARGET, `Ray Serve application ${name} not RUNNING within ${config.timeouts.deployMs} ms (status ${app?.status ?? "NOT_DEPLOYED"})`);
      }
      await sleep(pollIntervalMs, signal);
    }
  }

  async function ensureDeployed(signal?: AbortSignal): Promise<void> {
    const current = await details(signal);
    const app = current.applications[name];
    if (!isOurs(app) || app?.status === "DEPLOY_FAILED") await dashboard("PUT", declaration(current), signal);
    await waitRunning(signal);
  }

  function ensureDeployedOnce(signal?: AbortSignal): Promise<void> {
    deployed ??= ensureDeployed(signal).catch((error: unknown) => {
      deployed = undefined;
      throw error;
    });
    return deployed;
  }

  async function post(request: CompletionRequest, signal?: AbortSignal): Promise<CompletionResult> {
    const body: Record<string, unknown> = { prompt: request.prompt, model: request.model, session_id: request.sessionId };
    if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
    try {
      const response = await requestJson({ target: RAY_SERVE_TARGET, url: completionUrl, body, timeoutMs: config.timeouts.completionMs, signal });
      return parseCompletion(response.body);
    } catch (error) {
      if (error instanceof TransientCallError) {
        throw new TransientCallError(RAY_SERVE_TARGET, `Ray Serve is unreachable or not ready at ${completionUrl.href} (${detail(error)})`, error.status, { cause: error });
      }
      throw error;
    }
  }

  return {
    ensureDeployed,
    async status(signal) {
      const app = (await details(signal)).applications[name];
      return {
        name,
        routePrefix,
        status: app?.status ?? "NOT_DEPLOYED",
        message: app?.message ?? "",
        upToDate: isOurs(app),
        fingerprint,
      };
    },
    async complete(request, signal) {
      await ensureDeployedOnce(signal);
      try {
        return await post(request, signal);
      } catch (error) {
        // Unreachable or failing: Ray may have restarted empty, and its Serve proxy only returns with
        // a deployment, so the next call asks the dashboard first instead of trusting the old one.
        if (error instanceof TransientCallError) deployed = undefined;
        // 404 from the proxy: the route is gone (Ray restarted, someone's PUT removed it); redeploy once.
        if (!(error instanceof PermanentCallError && error.status === 404)) throw error;
        deployed = undefined;
        await ensureDeployedOnce(signal);
        return post(request, signal);
      }
    },
    async close() {
      await dispatcher.close();
    },
  };
}

function withSlash(url: URL): URL {
  return url.pathname.endsWith("/") ? url : new URL(`${url.href}/`);
}
