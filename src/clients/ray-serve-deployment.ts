/**
 * Deployment of the `somagent_slm` Serve application: declared through the
 * Ray dashboard's Serve REST API (a declarative PUT that keeps every other
 * application), recognised by a fingerprint of its configuration, and
 * awaited by polling until the Serve proxy routes to it. No Python runs in
 * the worker. The worker keeps it deployed, out of the request path: at start
 * and again after a reported failure, on its own signal, with backoff.
 * Completions are sent by `ray-serve-completions.ts` once it serves.
 */
import { createHash } from "node:crypto";
import { Counter, Gauge } from "prom-client";
import { Agent, type Dispatcher } from "undici";
import type { RayConfig } from "../config.js";
import { PermanentCallError, TransientCallError } from "../shared/call-errors.js";
import { isRecord, readAnswer } from "../shared/json-answer.js";
import type { Logger } from "../shared/logger.js";
import type { Registry } from "../shared/metrics.js";
import { createRequestJson } from "./http-json.js";

/** Metric and error label of calls to the Serve HTTP proxy. */
export const RAY_SERVE_TARGET = "ray-serve";
/** Metric and error label of calls to the dashboard's Serve REST API. */
export const RAY_DASHBOARD_TARGET = "ray-dashboard";
/** Version of the Python package `ray/somagent_slm`; part of the fingerprint, so a bump redeploys. */
export const SLM_APP_VERSION = "0.1.0";
/** The application builder the cluster imports (the package must be on the cluster's PYTHONPATH). */
export const SLM_IMPORT_PATH = "somagent_slm.app:build";

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

/** Deploys the SLM Serve application and reports on it. */
export interface RayServeDeployment {
  /**
   * Declares the application when it is absent or outdated (keeping every other
   * declaratively deployed application) and waits until it is RUNNING and the
   * Serve proxy routes `GET {prefix}/healthz` to a replica of this configuration.
   * Concurrent calls share one deployment, which no caller's `signal` cancels:
   * an aborted caller only stops waiting for it (with the signal's reason).
   * Throws {@link TransientCallError} when the dashboard or the Serve proxy is
   * unreachable or the deadline passes, {@link PermanentCallError} when Ray refuses the token or the
   * configuration, or the deployment fails.
   */
  ensureDeployed(signal?: AbortSignal): Promise<void>;
  /**
   * Keeps the application deployed from now on: ensures it at once and, after
   * each failure, again with backoff (1 s doubling to 10 s) until it serves;
   * logs and counts every outcome. Idempotent; stopped by `close`.
   */
  keepDeployed(): void;
  /**
   * Resolves when the kept application serves (starting to keep it if nobody
   * has). While a deployment is under way, waits for it, or until `signal`
   * aborts (with its reason, leaving the deployment running); while the keeper
   * backs off after a failure, rejects at once with that failure.
   */
  whenServing(signal?: AbortSignal): Promise<void>;
  /** Tells the keeper the application stopped answering (unreachable, route gone): it is ensured again. */
  reportFailure(): void;
  /** Reads the application's status; throws like {@link RayServeDeployment.ensureDeployed}. */
  status(signal?: AbortSignal): Promise<SlmApplicationStatus>;
  /** Stops the keeper and a deployment in progress, and closes the connections to the dashboard; safe to call twice. */
  close(): Promise<void>;
}

/** How the deployment is reached, measured and logged. */
export interface RayServeDeploymentOptions {
  /** Where the outbound-call and deployment metrics are registered. */
  registry: Registry;
  /** Where the keeper logs each deployment and failure. */
  logger: Logger;
  /** How often to poll the dashboard while waiting for RUNNING (default 500 ms). */
  pollIntervalMs?: number;
}

/** The keeper's backoff after a failed deployment: 1 s, doubling, at most 10 s (Temporal's own retry cadence). */
const KEEPER_BACKOFF = { initialMs: 1_000, maxMs: 10_000 };

interface DeploymentMetrics {
  /** `somagent_ray_serve_deployments_total{application,outcome}`: the keeper's ensures, `serving` or `failed`. */
  ensures: Counter<"application" | "outcome">;
  /** `somagent_ray_serve_application_serving{application}`: 1 while the keeper has seen it serve since its last failure. */
  serving: Gauge<"application">;
}

const metricsByRegistry = new WeakMap<Registry, DeploymentMetrics>();

/** The deployment metrics of `registry`, registered once however many deployments measure on it. */
function deploymentMetrics(registry: Registry): DeploymentMetrics {
  let metrics = metricsByRegistry.get(registry);
  if (!metrics) {
    metrics = {
      ensures: new Counter({
        name: "somagent_ray_serve_deployments_total",
        help: "Ensures of the SLM Serve application by the worker's keeper, by outcome (serving, failed).",
        labelNames: ["application", "outcome"] as const,
        registers: [registry],
      }),
      serving: new Gauge({
        name: "somagent_ray_serve_application_serving",
        help: "1 while the SLM Serve application serves as far as the worker knows, 0 while it is being (re)deployed.",
        labelNames: ["application"] as const,
        registers: [registry],
      }),
    };
    metricsByRegistry.set(registry, metrics);
  }
  return metrics;
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

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    // The signal outlives many sleeps (it is the deployment's own), so each sleep removes its listener.
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Builds the deployment. Dashboard calls carry `Authorization: Bearer <token>`
 * when `config.authToken` is set; the health check through the Serve proxy
 * carries none (in Ray 2.60 the proxy does not check it, and the replica would see it).
 */
export function createRayServeDeployment(config: RayConfig, options: RayServeDeploymentOptions): RayServeDeployment {
  const requestJson = createRequestJson(options.registry);
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  const desired = slmApplicationConfig(config);
  const fingerprint = String(desired.args?.config_fingerprint);
  const { name, routePrefix } = slmApplicationName(config.namespace);
  const applicationsUrl = new URL("api/serve/applications/", withSlash(config.dashboardUrl));
  const healthUrl = new URL("healthz", withSlash(slmCompletionUrl(config)));
  const dispatcher = createDashboardDispatcher();
  const authHeaders: Record<string, string> = config.authToken ? { authorization: `Bearer ${config.authToken}` } : {};
  /** Aborts a deployment in progress on close. */
  const closing = new AbortController();
  /** The deployment in progress, which every concurrent caller joins. */
  let inProgress: Promise<void> | undefined;
  const { logger } = options;
  const metrics = deploymentMetrics(options.registry);
  /**
   * The keeper: `idle` before it starts, `ensuring` while a deployment runs,
   * `backing-off` between a failure and the next try (`lastFailure` says why),
   * `serving` once the application answered, until a failure is reported.
   */
  let keeper: "idle" | "ensuring" | "backing-off" | "serving" = "idle";
  let lastFailure: unknown;
  let keeping: Promise<void> | undefined;

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
        throw new TransientCallError(RAY_DASHBOARD_TARGET, `Ray dashboard is unreachable or failing at ${config.dashboardUrl.origin} (${error.detail})`, error.status, { cause: error });
      }
      if (error instanceof PermanentCallError && (error.status === 401 || error.status === 403)) {
        throw new PermanentCallError(RAY_DASHBOARD_TARGET, `Ray dashboard refused the request (${error.status}): set RAY_AUTH_TOKEN to the cluster's token`, error.status, { cause: error });
      }
      throw error;
    }
  }

  async function details(signal?: AbortSignal): Promise<InstanceDetails> {
    const answer = readAnswer(RAY_DASHBOARD_TARGET, "GET /api/serve/applications/", await dashboard("GET", undefined, signal));
    answer.object("applications");
    // Serve's own schema, read as is: the fields this module uses are checked where they are used.
    return answer.record as unknown as InstanceDetails;
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
        throw new TransientCallError(RAY_SERVE_TARGET, `Ray Serve is unreachable at ${healthUrl.href} (${error.detail})`, undefined, { cause: error });
      }
      throw error;
    }
  }

  async function waitRunning(signal: AbortSignal): Promise<void> {
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

  async function deploy(signal: AbortSignal): Promise<void> {
    const current = await details(signal);
    const app = current.applications[name];
    if (!isOurs(app) || app?.status === "DEPLOY_FAILED") await dashboard("PUT", declaration(current), signal);
    await waitRunning(signal);
  }

  function ensureDeployed(signal?: AbortSignal): Promise<void> {
    // Bound to no caller's signal: one cancelled activity must not fail the others waiting on the same deployment.
    inProgress ??= deploy(closing.signal).finally(() => {
      inProgress = undefined;
    });
    return untilAborted(inProgress, signal);
  }

  /** Ensures until the application serves, backing off after each failure; ends early on close. */
  async function keepServing(): Promise<void> {
    metrics.serving.set({ application: name }, 0);
    for (let delayMs = KEEPER_BACKOFF.initialMs; !closing.signal.aborted; delayMs = Math.min(2 * delayMs, KEEPER_BACKOFF.maxMs)) {
      keeper = "ensuring";
      try {
        await ensureDeployed();
        keeper = "serving";
        metrics.ensures.inc({ application: name, outcome: "serving" });
        metrics.serving.set({ application: name }, 1);
        logger.info("Ray Serve application serving", { application: name });
        return;
      } catch (error) {
        if (closing.signal.aborted) return;
        keeper = "backing-off";
        lastFailure = error;
        metrics.ensures.inc({ application: name, outcome: "failed" });
        logger.warn("Ray Serve application not deployed; trying again", {
          application: name,
          error: (error as Error).message,
          retryInMs: delayMs,
        });
        await sleep(delayMs, closing.signal).catch(() => {});
      }
    }
  }

  function keepDeployed(): void {
    if (keeper !== "idle" || closing.signal.aborted) return;
    keeper = "ensuring";
    keeping = keepServing().finally(() => {
      keeping = undefined;
    });
  }

  return {
    ensureDeployed,
    keepDeployed,
    async whenServing(signal) {
      keepDeployed();
      if (keeper === "serving") return;
      if (keeper === "backing-off") throw lastFailure;
      // `ensuring`: the deployment the keeper is waiting for, joined as far as this caller's signal allows.
      await ensureDeployed(signal);
    },
    reportFailure() {
      if (keeper !== "serving") return;
      logger.warn("Ray Serve application stopped answering; ensuring it again", { application: name });
      keeper = "idle";
      keepDeployed();
    },
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
    async close() {
      if (closing.signal.aborted) return;
      closing.abort(new Error("the Ray Serve deployment client is closed"));
      await keeping;
      await inProgress?.catch(() => {});
      await dispatcher.close();
    },
  };
}

/** The completion endpoint on the Serve proxy: `{serveUrl}/{namespace}/slm`. */
export function slmCompletionUrl(config: RayConfig): URL {
  return new URL(slmApplicationName(config.namespace).routePrefix.slice(1), withSlash(config.serveUrl));
}

/** Settles as `promise` does, or rejects with `signal`'s reason as soon as it aborts (leaving `promise` running). */
function untilAborted<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function withSlash(url: URL): URL {
  return url.pathname.endsWith("/") ? url : new URL(`${url.href}/`);
}
