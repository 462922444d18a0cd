/**
 * A real single-node Ray cluster: `ray[serve]` from PyPI in a virtual
 * environment, `ray start --head` on loopback with the dashboard (which
 * serves Serve's REST API) and token authentication on, and the repository's
 * `ray/` package on PYTHONPATH so the Serve application can be imported.
 * The Serve HTTP proxy comes up with the first application deployed.
 */
import { randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { installOnce } from "./cache.js";
import { freePort, runCommand, startDaemon, waitUntil, type Daemon } from "./processes.js";

/** The pinned Ray version (2.59+ has token authentication for the dashboard). */
export const RAY_VERSION = "2.60.0";

/** The repository's Ray package directory (`ray/somagent_slm`). */
const RAY_PACKAGE_DIR = path.resolve(import.meta.dirname, "..", "ray");

/** Creates the virtual environment (first run only) and returns the `ray` CLI. */
export async function installRay(): Promise<string> {
  const dir = await installOnce(`ray-${RAY_VERSION}`, `installing ray[serve]==${RAY_VERSION} from PyPI into a virtual environment`, async (target) => {
    const logFile = path.join(target, "install.log");
    await runCommand("python3", ["-m", "venv", target], { logFile });
    await runCommand(
      path.join(target, "bin", "pip"),
      ["install", "--disable-pip-version-check", "--no-input", `ray[serve]==${RAY_VERSION}`],
      { logFile },
    );
  });
  return path.join(dir, "bin", "ray");
}

/**
 * Ray Serve's throughput settings (the ones `RAY_SERVE_THROUGHPUT_OPTIMIZED=1` turns on in Ray
 * >= 2.56, named one by one): the proxy's router and the replica's user code run on their actors'
 * main event loops instead of threads of their own, the proxy reaches the replica over gRPC, and
 * request-path logs are buffered instead of written line by line and to stderr. Measured here,
 * alternating with a default cluster on one machine (3 rounds of 400 completions, 8 in flight):
 * a completion through the proxy cost 8.9-10.1 ms of Ray's CPU (proxy + replica) by default and
 * 7.1-7.4 ms with these; one at a time, its p50 stayed the same (12.2 vs 12.8 ms on a busy machine).
 * The mode's direct ingress (a port per replica, no proxy) is left out: the worker reaches the
 * application through the proxy's one URL.
 */
const SERVE_THROUGHPUT_SETTINGS = {
  RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD: "0",
  RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP: "0",
  RAY_SERVE_USE_GRPC_BY_DEFAULT: "1",
  RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE: "1000",
  RAY_SERVE_LOG_TO_STDERR: "0",
};

/** How many times a head start that failed transiently is tried. */
const RAY_START_ATTEMPTS = 3;
/** What `ray start` logs when its raylet did not register in time, or a helper port was taken. */
const TRANSIENT_START_FAILURES = ["The current node timed out during startup", "Address already in use"];

/** Where to run Ray; unset ports are chosen free. */
export interface RayOptions {
  binary: string;
  /** Directory for the log and Ray's own temp dir (sessions, logs of every Ray process). */
  stateDir: string;
  gcsPort?: number;
  dashboardPort?: number;
  servePort?: number;
  /** Ray's own temp dir (sessions, logs of every Ray process); default `<stateDir>/ray`. Its unix socket paths must stay under 108 bytes. */
  tempDir?: string;
  /** CPUs Ray may schedule on (default 2: the machines have two cores). */
  numCpus?: number;
  /** Token the dashboard requires (default: a fresh random one); a cluster restarted in place keeps its old one, as its clients do. */
  authToken?: string;
}

/** A running cluster. */
export interface RayCluster {
  dashboardUrl: URL;
  /** Where the Serve HTTP proxy will listen once an application is deployed. */
  serveUrl: URL;
  /** GCS address, `127.0.0.1:port` (what `RAY_ADDRESS` would name for a Python driver). */
  gcsAddress: string;
  /** Bearer token the dashboard's REST API requires. */
  authToken: string;
  /** The current head process (a new one after {@link RayCluster.restart}). */
  readonly daemon: Daemon;
  stop(): Promise<void>;
  /**
   * Starts the head again with the same GCS, dashboard and Serve ports, token and temp dir (stopping it first when it runs)
   * and resolves once the Serve REST API answers. Ray keeps its cluster state in memory, so the
   * cluster comes back empty: Serve applications must be deployed again, as after a real head failure.
   */
  restart(): Promise<void>;
}

/** Starts the head node and resolves once the dashboard's Serve REST API answers with the token. */
export async function startRay(options: RayOptions): Promise<RayCluster> {
  const port = async (given: number | undefined) => given ?? (await freePort());
  const gcsPort = await port(options.gcsPort);
  const dashboardPort = await port(options.dashboardPort);
  const servePort = await port(options.servePort);
  const authToken = options.authToken ?? randomBytes(32).toString("hex");
  const logFile = path.join(options.stateDir, "ray.log");
  const rayTempDir = options.tempDir ?? path.join(options.stateDir, "ray");
  const dashboardUrl = new URL(`http://127.0.0.1:${dashboardPort}`);
  const launchOnce = async (): Promise<Daemon> => {
    // Ray picks many ports of its own; pin every one to a free port so two clusters never collide.
    // Chosen anew at each start: while the head was down another process may have taken one.
    // Clients know only the GCS, dashboard and Serve ports, which stay.
    const ports: Record<string, number> = {
      "ray-client-server-port": await freePort(),
      "dashboard-agent-listen-port": await freePort(),
      "dashboard-agent-grpc-port": await freePort(),
      "metrics-export-port": await freePort(),
      "node-manager-port": await freePort(),
      "object-manager-port": await freePort(),
      "runtime-env-agent-port": await freePort(),
    };
    const started = await startDaemon(
      "ray",
      options.binary,
      [
        "start", "--head", "--block",
        `--port=${gcsPort}`,
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1", `--dashboard-port=${dashboardPort}`,
        ...Object.entries(ports).map(([flag, value]) => `--${flag}=${value}`),
        `--num-cpus=${options.numCpus ?? 2}`,
        "--object-store-memory=200000000",
        `--temp-dir=${rayTempDir}`,
        "--disable-usage-stats",
      ],
      {
        logFile,
        env: {
          ...process.env,
          RAY_AUTH_MODE: "token",
          RAY_AUTH_TOKEN: authToken,
          RAY_USAGE_STATS_ENABLED: "0",
          ...SERVE_THROUGHPUT_SETTINGS,
          PYTHONPATH: RAY_PACKAGE_DIR,
        },
      },
    );
    try {
      // The dashboard's modules load after the head is up; Serve's REST API is the last word.
      await waitUntil(
        "ray",
        async () => (await fetch(new URL("/api/serve/applications/", dashboardUrl), { headers: { authorization: `Bearer ${authToken}` } })).ok,
        { timeoutMs: 120_000, logFile, daemon: started },
      );
    } catch (error) {
      await started.stop();
      throw error;
    }
    return started;
  };
  /**
   * Two failures of `ray start` are transient and retried: its raylet did not register with the GCS
   * within Ray's fixed 30 s (a machine starved of CPU), or a helper port chosen free was taken
   * before Ray bound it (the next start chooses others). Any other failure is not.
   */
  const launch = async (): Promise<Daemon> => {
    for (let attempt = 1; ; attempt++) {
      const logStart = await stat(logFile).then((s) => s.size, () => 0);
      try {
        return await launchOnce();
      } catch (error) {
        const thisStart = (await readFile(logFile).catch(() => Buffer.alloc(0))).subarray(logStart).toString("utf8");
        if (attempt >= RAY_START_ATTEMPTS || !TRANSIENT_START_FAILURES.some((line) => thisStart.includes(line))) throw error;
      }
    }
  };
  // Some of Ray's helper processes ignore SIGTERM; they get SIGKILL after a short grace.
  const stopGraceMs = 5_000;
  let daemon = await launch();
  return {
    dashboardUrl,
    serveUrl: new URL(`http://127.0.0.1:${servePort}`),
    gcsAddress: `127.0.0.1:${gcsPort}`,
    authToken,
    get daemon() {
      return daemon;
    },
    stop: () => daemon.stop(stopGraceMs),
    async restart() {
      await daemon.stop(stopGraceMs);
      daemon = await launch();
    },
  };
}
