/**
 * The project's own processes on top of the infrastructure: the policy
 * engine and identity service (companions), the worker and the API, each
 * started from its entry point the way `npm run ...` starts it, with the
 * environment that points it at the local Temporal, Kafka and Ray.
 */
import path from "node:path";
import { LOCAL_API_AUDIENCE, LOCAL_ISSUER } from "./caller-token.js";
import { freePort, startDaemon, waitUntil, type Daemon } from "./processes.js";
import { identityKeyDir } from "./state-dir.js";

const REPO_ROOT = path.resolve(import.meta.dirname, "..");

/** Where the infrastructure is. */
export interface InfrastructureEndpoints {
  temporalAddress: string;
  kafkaBootstrap: string;
  rayDashboardUrl: string;
  rayServeUrl: string;
  rayAuthToken: string;
}

/** Ports of the services; unset ones are chosen free. */
export interface ServicePorts {
  api?: number;
  policyEngine?: number;
  identityService?: number;
  workerMetrics?: number;
  workerSdkMetrics?: number;
}

/** Options of {@link startServices}. */
export interface ServicesOptions {
  /** Logs go to `<stateDir>/<service>.log`; the identity service keeps its signing key under it. */
  stateDir: string;
  ports?: ServicePorts;
  /** `PAYLOAD_CODEC_KEYS` shared by the API and the worker. */
  codecKeys: string;
  taskQueue?: string;
  /** Extra environment for every service (e.g. `CORS_ALLOWED_ORIGINS`). */
  env?: NodeJS.ProcessEnv;
  /**
   * `jwt`: the API requires bearer tokens verified against the local identity
   * service's JWKS (`npm run token` signs them); unset: the API is open.
   */
  apiAuth?: "jwt";
}

/** One running service. */
export interface RunningService {
  name: string;
  /** Base URL (for the worker: its metrics and health server). */
  url: URL;
  /** Path that answers 200 when the service is healthy. */
  healthPath: string;
  daemon: Daemon;
}

/** The running services, in start order. */
export interface Services {
  api: RunningService;
  worker: RunningService;
  policyEngine: RunningService;
  identityService: RunningService;
  /** Environment the services were given (without the inherited process environment and the API's own `API_AUTH_*`). */
  env: Record<string, string>;
  /** Stops every service (API first, companions last). */
  stop(): Promise<void>;
}

/** True when `GET url` (with `headers`) answers 2xx within two seconds. */
export async function answersOk(url: URL, headers: Record<string, string> = {}): Promise<boolean> {
  try {
    return (await fetch(url, { headers, signal: AbortSignal.timeout(2_000) })).ok;
  } catch {
    return false;
  }
}

async function startService(
  name: string,
  script: string,
  url: URL,
  healthPath: string,
  env: NodeJS.ProcessEnv,
  stateDir: string,
): Promise<RunningService> {
  const logFile = path.join(stateDir, `${name}.log`);
  // The same Node that runs us, with tsx as a loader: no dependency on PATH.
  const daemon = await startDaemon(name, process.execPath, ["--import", "tsx", script], {
    cwd: REPO_ROOT,
    logFile,
    env: { ...process.env, ...env },
  });
  try {
    await waitUntil(name, () => answersOk(new URL(healthPath, url)), { timeoutMs: 90_000, logFile, daemon });
  } catch (error) {
    await daemon.stop();
    throw error;
  }
  return { name, url, healthPath, daemon };
}

/**
 * Starts the companions, then the worker and the API, each once healthy.
 * When one fails to come up, the ones already started are stopped.
 */
export async function startServices(endpoints: InfrastructureEndpoints, options: ServicesOptions): Promise<Services> {
  const ports = options.ports ?? {};
  const port = async (given: number | undefined) => given ?? (await freePort());
  const [apiPort, policyPort, identityPort, metricsPort, sdkMetricsPort] = [
    await port(ports.api),
    await port(ports.policyEngine),
    await port(ports.identityService),
    await port(ports.workerMetrics),
    await port(ports.workerSdkMetrics),
  ];
  const local = (p: number) => new URL(`http://127.0.0.1:${p}/`);
  const env: Record<string, string> = {
    ...(options.env as Record<string, string>),
    HOST: "127.0.0.1",
    PORT: String(apiPort),
    TEMPORAL_TARGET_HOST: endpoints.temporalAddress,
    PAYLOAD_CODEC_KEYS: options.codecKeys,
    ...(options.taskQueue ? { TEMPORAL_TASK_QUEUE: options.taskQueue } : {}),
    POLICY_ENGINE_HOST: "127.0.0.1",
    POLICY_ENGINE_PORT: String(policyPort),
    POLICY_ENGINE_URL: new URL("v1/evaluate", local(policyPort)).href,
    IDENTITY_SERVICE_HOST: "127.0.0.1",
    IDENTITY_SERVICE_PORT: String(identityPort),
    IDENTITY_SERVICE_URL: new URL("v1/tokens/issue", local(identityPort)).href,
    IDENTITY_SERVICE_KEY_DIR: identityKeyDir(options.stateDir),
    IDENTITY_SERVICE_ISSUER: LOCAL_ISSUER,
    KAFKA_BOOTSTRAP_SERVERS: endpoints.kafkaBootstrap,
    RAY_ADDRESS: endpoints.rayDashboardUrl,
    RAY_SERVE_URL: endpoints.rayServeUrl,
    RAY_AUTH_TOKEN: endpoints.rayAuthToken,
    WORKER_METRICS_HOST: "127.0.0.1",
    WORKER_METRICS_PORT: String(metricsPort),
    WORKER_SDK_METRICS_PORT: String(sdkMetricsPort),
  };
  const started: RunningService[] = [];
  const stop = async () => {
    for (const service of [...started].reverse()) await service.daemon.stop(15_000);
  };
  const launch = async (name: string, script: string, url: URL, healthPath: string, own: Record<string, string> = {}) => {
    const service = await startService(name, script, url, healthPath, { ...env, ...own }, options.stateDir);
    started.push(service);
    return service;
  };
  try {
    const [policyEngine, identityService] = await Promise.all([
      launch("policy-engine", "src/companions/policy-engine/main.ts", local(policyPort), "/health"),
      launch("identity-service", "src/companions/identity-service/main.ts", local(identityPort), "/health"),
    ]);
    const worker = await launch("worker", "src/worker/main.ts", local(metricsPort), "/health");
    const apiAuth: Record<string, string> =
      options.apiAuth === "jwt"
        ? {
            API_AUTH_JWKS_URL: new URL(".well-known/jwks.json", local(identityPort)).href,
            API_AUTH_ISSUER: LOCAL_ISSUER,
            API_AUTH_AUDIENCE: LOCAL_API_AUDIENCE,
          }
        : {};
    const api = await launch("api", "src/api/main.ts", local(apiPort), "/health", apiAuth);
    return { api, worker, policyEngine, identityService, env, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
