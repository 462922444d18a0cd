/**
 * What the bench runs against: its own stack (the real local infrastructure
 * and services on free ports, as `npm start` and the tests start them), the
 * services on top of infrastructure someone else started (the quick test
 * reuses the test run's), or an existing deployment named by `BENCH_*`.
 *
 * Besides the usual API (whose task queue the worker polls), the Start pairs
 * and the open-Watch pair use an *idle* API: the same API code on a task
 * queue no worker polls. Sessions started there stay open, so Start is
 * measured without the worker's CPU competing, and Watch streams on them
 * really hold a history long-poll each.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { endpointsOf, installInfrastructure, startInfrastructure } from "../local/infrastructure.js";
import { KAFKA_VERSION } from "../local/kafka.js";
import { freePort, startDaemon, waitUntil } from "../local/processes.js";
import { RAY_VERSION } from "../local/ray.js";
import { answersOk, processEnvironment, startServices, type InfrastructureEndpoints } from "../local/services.js";
import { TEMPORAL_CLI_VERSION } from "../local/temporal.js";

/** Everything a pair may need; a missing input makes the pairs that need it skipped, with the variable named. */
export interface BenchStack {
  /** How the stack came to be, for the report. */
  origin: string;
  /** The API in front of the worker's task queue. */
  api: URL;
  /** An API whose task queue no worker polls (see the module comment). */
  idleApi: { url: URL; taskQueue: string } | undefined;
  temporalAddress: string;
  namespace: string;
  kafkaBootstrap: string | undefined;
  policyEngine: URL | undefined;
  identityService: URL | undefined;
  /** The client the identity service accepts on `/v1/tokens/issue` (the worker's). */
  identityClient: { id: string; secret: string } | undefined;
  versions: { temporalCli: string; kafka: string; ray: string };
  stop(): Promise<void>;
}

/**
 * The one API limit the bench raises: 10,000 Watch streams come from one
 * (anonymous) caller. They are spread over connections of
 * {@link STREAMS_PER_CONNECTION}, within the default `API_MAX_HTTP2_STREAMS`
 * (100) and `API_MAX_CONNECTIONS` (1000).
 */
export const BENCH_API_LIMITS = { API_MAX_STREAMS_PER_CALLER: "20000" } as const;

/** Watch streams per HTTP/2 connection: the API's default `API_MAX_HTTP2_STREAMS`. */
export const STREAMS_PER_CONNECTION = 100;

const IDENTITY_CLIENT_ID = "somagent-worker";
const REPO_ROOT = path.resolve(import.meta.dirname, "..");
const LOCAL_VERSIONS = { temporalCli: TEMPORAL_CLI_VERSION, kafka: KAFKA_VERSION, ray: RAY_VERSION };

/**
 * Starts the companions, worker and API on `endpoints` (with {@link BENCH_API_LIMITS}),
 * plus an idle API on a fresh task queue. `stop` stops them, not the infrastructure.
 */
export async function startBenchServices(endpoints: InfrastructureEndpoints, stateDir: string, origin: string): Promise<BenchStack> {
  const codecKeys = `bench:${randomBytes(32).toString("base64")}`;
  const services = await startServices(endpoints, { stateDir, codecKeys, env: { ...BENCH_API_LIMITS } });
  try {
    const idleTaskQueue = `bench.idle.${randomBytes(4).toString("hex")}`;
    const port = await freePort();
    const logFile = path.join(stateDir, "idle-api.log");
    const env = { ...services.env, PORT: String(port), TEMPORAL_TASK_QUEUE: idleTaskQueue, PAYLOAD_CODEC_KEYS: codecKeys };
    const daemon = await startDaemon("idle-api", process.execPath, ["--import", "tsx", "src/api/main.ts"], {
      cwd: REPO_ROOT,
      logFile,
      env: processEnvironment(process.env, env),
    });
    const url = new URL(`http://127.0.0.1:${port}/`);
    try {
      await waitUntil("idle-api", () => answersOk(new URL("/health", url)), { timeoutMs: 90_000, logFile, daemon });
    } catch (error) {
      await daemon.stop();
      throw error;
    }
    return {
      origin,
      api: services.api.url,
      idleApi: { url, taskQueue: idleTaskQueue },
      temporalAddress: endpoints.temporalAddress,
      namespace: "default",
      kafkaBootstrap: endpoints.kafkaBootstrap,
      policyEngine: services.policyEngine.url,
      identityService: services.identityService.url,
      identityClient: { id: IDENTITY_CLIENT_ID, secret: services.secrets.identityClientSecret },
      versions: LOCAL_VERSIONS,
      async stop() {
        await daemon.stop(15_000);
        await services.stop();
      },
    };
  } catch (error) {
    await services.stop();
    throw error;
  }
}

/** Installs (first run only) and starts the whole local stack in a fresh state directory. */
export async function startOwnStack(): Promise<BenchStack> {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), "somagent-bench-"));
  const tools = await installInfrastructure();
  const infra = await startInfrastructure(tools, { stateDir, temporal: { ui: false } });
  try {
    const stack = await startBenchServices(
      endpointsOf(infra),
      stateDir,
      "its own stack, started on free loopback ports (Temporal dev server in memory, tuned as in local/temporal.ts)",
    );
    return {
      ...stack,
      async stop() {
        await stack.stop();
        await infra.stop();
        await rm(stateDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await infra.stop();
    throw error;
  }
}

/** Thrown when a `BENCH_*` variable is malformed; names the variable. */
export class BenchConfigError extends Error {}

function optionalUrl(env: NodeJS.ProcessEnv, name: string): URL | undefined {
  const value = env[name];
  if (value === undefined || value === "") return undefined;
  try {
    return new URL(value);
  } catch {
    throw new BenchConfigError(`${name}: expected an http(s) URL, got ${JSON.stringify(value)}`);
  }
}

/**
 * The deployment named by `BENCH_TARGET` (the API) and `BENCH_TEMPORAL`;
 * `undefined` when `BENCH_TARGET` is unset. The other `BENCH_*` inputs are
 * optional (bench/README.md); nothing is started or stopped.
 */
export function targetStack(env: NodeJS.ProcessEnv = process.env): BenchStack | undefined {
  const api = optionalUrl(env, "BENCH_TARGET");
  if (!api) return undefined;
  const temporalAddress = env.BENCH_TEMPORAL;
  if (!temporalAddress || !/^[^\s:]+:\d+$/.test(temporalAddress)) {
    throw new BenchConfigError(`BENCH_TEMPORAL: expected host:port of the Temporal frontend the target uses, got ${JSON.stringify(temporalAddress)}`);
  }
  const idleUrl = optionalUrl(env, "BENCH_IDLE_TARGET");
  const idleTaskQueue = env.BENCH_IDLE_TASK_QUEUE;
  if (idleUrl && !idleTaskQueue) throw new BenchConfigError("BENCH_IDLE_TASK_QUEUE: required with BENCH_IDLE_TARGET (the idle API's TEMPORAL_TASK_QUEUE)");
  const secret = env.BENCH_IDENTITY_CLIENT_SECRET;
  return {
    origin: `the target ${api.origin} (Temporal ${temporalAddress})`,
    api,
    idleApi: idleUrl && idleTaskQueue ? { url: idleUrl, taskQueue: idleTaskQueue } : undefined,
    temporalAddress,
    namespace: env.BENCH_TEMPORAL_NAMESPACE || "default",
    kafkaBootstrap: env.BENCH_KAFKA || undefined,
    policyEngine: optionalUrl(env, "BENCH_POLICY_ENGINE"),
    identityService: optionalUrl(env, "BENCH_IDENTITY_SERVICE"),
    identityClient: secret ? { id: env.BENCH_IDENTITY_CLIENT_ID || IDENTITY_CLIENT_ID, secret } : undefined,
    versions: LOCAL_VERSIONS,
    async stop() {},
  };
}
