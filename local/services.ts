/**
 * The project's own processes on top of the infrastructure: the policy
 * engine and identity service (companions), the worker and the API, each
 * started from its entry point the way `npm run ...` starts it, with the
 * environment that points it at the local Temporal, Kafka and Ray. Each
 * process gets only the secrets it uses ({@link SECRET_VARIABLES}).
 */
import { randomBytes } from "node:crypto";
import { chmod, writeFile } from "node:fs/promises";
import path from "node:path";
import { LOCAL_API_AUDIENCE, LOCAL_ISSUER } from "./caller-token.js";
import { freePort, startDaemon, supervise, unsupervised, waitUntil, type Component, type Daemon, type Supervised } from "./processes.js";
import { progress } from "./progress.js";
import { identityKeyDir } from "./state-dir.js";

/**
 * The environment variables that hold secrets. A process is given only those
 * it uses, and none of them leaks to the others through the launcher's own
 * environment.
 */
export const SECRET_VARIABLES = [
  "PAYLOAD_CODEC_KEYS",
  "RAY_AUTH_TOKEN",
  "SLM_PROVIDER_API_KEY",
  "IDENTITY_SERVICE_CLIENT_SECRET",
  "POLICY_ENGINE_ADMIN_TOKEN",
] as const;

/** Files in the state directory holding the secrets made at each start, for the operator's tools (0600). */
export const SECRET_FILES = {
  identityClientSecret: "identity-client-secret",
  policyEngineAdminToken: "policy-engine-admin-token",
} as const;

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
  /**
   * Restart a service whose process exits, with backoff (`npm start`); unset:
   * an exit is left alone, for callers that stop and restart services themselves.
   */
  restartOnExit?: boolean;
  /** Where each exit and restart of a service is told (default: the progress lines on stderr). */
  report?: (line: string) => void;
}

/** One running service, restarted with backoff when its process exits if asked (see `supervise`). */
export interface RunningService {
  name: string;
  /** Base URL (for the worker: its metrics and health server). */
  url: URL;
  /** Path that answers 200 when the service is healthy. */
  healthPath: string;
  /** The service's process: a new one after each restart. */
  readonly daemon: Daemon;
  /** False from an exit until the restarted process answers its health check. */
  up(): boolean;
  /** How many times the service was restarted. */
  restarts(): number;
}

/** The running services, in start order. */
export interface Services {
  api: RunningService;
  worker: RunningService;
  policyEngine: RunningService;
  identityService: RunningService;
  /** Environment the services were given, without the inherited process environment, secrets and the API's own `API_AUTH_*`. */
  env: Record<string, string>;
  /** The secrets made for this start: the worker's identity client secret, the policy engine's admin token. */
  secrets: { identityClientSecret: string; policyEngineAdminToken: string };
  /** Stops every service (API first, companions last), without restarting any. */
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

/** Starts one service's process and waits until it answers its health check. */
export async function startService(
  name: string,
  script: string,
  url: URL,
  healthPath: string,
  env: NodeJS.ProcessEnv,
  stateDir: string,
): Promise<Component> {
  const logFile = path.join(stateDir, `${name}.log`);
  // The same Node that runs us, with tsx as a loader: no dependency on PATH.
  const daemon = await startDaemon(name, process.execPath, ["--import", "tsx", script], {
    cwd: REPO_ROOT,
    logFile,
    env: processEnvironment(process.env, env),
  });
  try {
    await waitUntil(name, () => answersOk(new URL(healthPath, url)), { timeoutMs: 90_000, logFile, daemon });
  } catch (error) {
    await daemon.stop();
    throw error;
  }
  return { daemon, stop: () => daemon.stop(15_000) };
}

/** A child's environment: the launcher's own without any of {@link SECRET_VARIABLES}, then `env` (which brings the child's own secrets). */
export function processEnvironment(inherited: NodeJS.ProcessEnv, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const kept = { ...inherited };
  for (const variable of SECRET_VARIABLES) delete kept[variable];
  return { ...kept, ...env };
}

/** The secrets of the local stack, each to go to the processes that use it. */
export interface LocalSecrets {
  codecKeys: string;
  rayAuthToken: string;
  identityClientSecret: string;
  policyEngineAdminToken: string;
  /** The launcher's `SLM_PROVIDER_API_KEY`, when it has one: the worker hands it to the Serve application. */
  slmProviderApiKey?: string | undefined;
}

/** Which secret variables each process gets: only those it uses. */
export function secretEnvironments(secrets: LocalSecrets): Record<"policyEngine" | "identityService" | "worker" | "api", Record<string, string>> {
  return {
    policyEngine: { POLICY_ENGINE_ADMIN_TOKEN: secrets.policyEngineAdminToken },
    identityService: { IDENTITY_SERVICE_CLIENT_SECRET: secrets.identityClientSecret },
    worker: {
      PAYLOAD_CODEC_KEYS: secrets.codecKeys,
      RAY_AUTH_TOKEN: secrets.rayAuthToken,
      IDENTITY_SERVICE_CLIENT_SECRET: secrets.identityClientSecret,
      ...(secrets.slmProviderApiKey ? { SLM_PROVIDER_API_KEY: secrets.slmProviderApiKey } : {}),
    },
    api: { PAYLOAD_CODEC_KEYS: secrets.codecKeys },
  };
}

/** A fresh secret, written to `<stateDir>/<file>` (0600) for the operator's tools; made anew at each start. */
async function freshSecret(stateDir: string, file: string): Promise<string> {
  const secret = randomBytes(32).toString("base64url");
  const target = path.join(stateDir, file);
  await writeFile(target, `${secret}\n`, { mode: 0o600 });
  // The mode of a file that already existed is not changed by writeFile.
  await chmod(target, 0o600);
  return secret;
}

/**
 * Starts the companions, then the worker and the API, each once healthy, and
 * keeps them running: a service whose process exits is restarted with
 * backoff, each exit and restart told to `options.report`.
 * The identity client secret and the policy engine's admin token are made
 * anew (and written to the state directory, {@link SECRET_FILES}). When one
 * service fails to come up, the ones already started are stopped.
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
  const secrets = {
    identityClientSecret: await freshSecret(options.stateDir, SECRET_FILES.identityClientSecret),
    policyEngineAdminToken: await freshSecret(options.stateDir, SECRET_FILES.policyEngineAdminToken),
  };
  // Everything but secrets; each process adds its own below.
  const env: Record<string, string> = {
    ...(options.env as Record<string, string>),
    HOST: "127.0.0.1",
    PORT: String(apiPort),
    TEMPORAL_TARGET_HOST: endpoints.temporalAddress,
    ...(options.taskQueue ? { TEMPORAL_TASK_QUEUE: options.taskQueue } : {}),
    POLICY_ENGINE_HOST: "127.0.0.1",
    POLICY_ENGINE_PORT: String(policyPort),
    POLICY_ENGINE_URL: new URL("v1/evaluate", local(policyPort)).href,
    IDENTITY_SERVICE_HOST: "127.0.0.1",
    IDENTITY_SERVICE_PORT: String(identityPort),
    IDENTITY_SERVICE_URL: new URL("v1/tokens/issue", local(identityPort)).href,
    IDENTITY_SERVICE_KEY_DIR: identityKeyDir(options.stateDir),
    IDENTITY_SERVICE_ISSUER: LOCAL_ISSUER,
    IDENTITY_SERVICE_CLIENT_ID: "somagent-worker",
    KAFKA_BOOTSTRAP_SERVERS: endpoints.kafkaBootstrap,
    RAY_ADDRESS: endpoints.rayDashboardUrl,
    RAY_SERVE_URL: endpoints.rayServeUrl,
    WORKER_METRICS_HOST: "127.0.0.1",
    WORKER_METRICS_PORT: String(metricsPort),
    WORKER_SDK_METRICS_PORT: String(sdkMetricsPort),
  };
  const started: Supervised<Component>[] = [];
  const stop = async () => {
    for (const service of [...started].reverse()) await service.stop();
  };
  const report = options.report ?? progress;
  // Each process's own secrets: nothing else of SECRET_VARIABLES reaches it.
  const own = secretEnvironments({
    ...secrets,
    codecKeys: options.codecKeys,
    rayAuthToken: endpoints.rayAuthToken,
    slmProviderApiKey: process.env.SLM_PROVIDER_API_KEY,
  });
  const launch = async (name: string, script: string, url: URL, healthPath: string, secretEnv: Record<string, string>): Promise<RunningService> => {
    const start = () => startService(name, script, url, healthPath, { ...env, ...secretEnv }, options.stateDir);
    const supervised = options.restartOnExit ? supervise(name, await start(), start, report) : unsupervised(name, await start());
    started.push(supervised);
    return {
      name,
      url,
      healthPath,
      get daemon() {
        return supervised.current().daemon;
      },
      up: supervised.up,
      restarts: supervised.restarts,
    };
  };
  try {
    const [policyEngine, identityService] = await Promise.all([
      launch("policy-engine", "src/companions/policy-engine/main.ts", local(policyPort), "/health", own.policyEngine),
      launch("identity-service", "src/companions/identity-service/main.ts", local(identityPort), "/health", own.identityService),
    ]);
    const worker = await launch("worker", "src/worker/main.ts", local(metricsPort), "/health", own.worker);
    const apiAuth: Record<string, string> =
      options.apiAuth === "jwt"
        ? {
            API_AUTH_JWKS_URL: new URL(".well-known/jwks.json", local(identityPort)).href,
            API_AUTH_ISSUER: LOCAL_ISSUER,
            API_AUTH_AUDIENCE: LOCAL_API_AUDIENCE,
          }
        : {};
    const api = await launch("api", "src/api/main.ts", local(apiPort), "/health", { ...own.api, ...apiAuth });
    return { api, worker, policyEngine, identityService, env, secrets, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
