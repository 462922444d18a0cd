/**
 * The real Temporal dev server (`temporal server start-dev`) of the Temporal
 * CLI, built from its Go module through the Go module proxy on first use.
 * v1.5.1 is the newest tag whose go.mod has no `replace` directive, which
 * `go install module@version` refuses (it bundles Temporal server 1.29).
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { installOnce } from "./cache.js";
import { SEARCH_ATTRIBUTE } from "../src/workflows/contract.js";
import { freePort, runCommand, startDaemon, waitUntil, type Daemon } from "./processes.js";

/** The pinned Temporal CLI version. */
export const TEMPORAL_CLI_VERSION = "v1.5.1";

/** Builds the CLI into the cache (first run only) and returns the `temporal` binary. */
export async function installTemporal(): Promise<string> {
  const dir = await installOnce(`temporal-cli-${TEMPORAL_CLI_VERSION}`, `building Temporal CLI ${TEMPORAL_CLI_VERSION} from its Go module`, (target) =>
    runCommand("go", ["install", `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`], {
      logFile: path.join(target, "install.log"),
      env: { ...process.env, GOBIN: path.join(target, "bin"), CGO_ENABLED: "0" },
    }),
  );
  return path.join(dir, "bin", "temporal");
}

/** Where to run the dev server; unset ports are chosen free. */
export interface TemporalOptions {
  binary: string;
  /** Directory for the log (and the database file when `persistent`). */
  stateDir: string;
  port?: number;
  /** Web UI port; the UI is off when `ui` is false. */
  uiPort?: number;
  ui?: boolean;
  /** The UI decodes payloads through this remote codec (the API's `/codec`), so it shows sessions' inputs and results. */
  uiCodecEndpoint?: string;
  /** Keep workflows across restarts in `<stateDir>/temporal.db`. */
  persistent?: boolean;
  /** Dynamic config values on top of (or in place of) the local stack's own, e.g. a test's limit. */
  dynamicConfig?: Record<string, string>;
}

/** A running dev server. */
export interface TemporalServer {
  /** `127.0.0.1:port` of the frontend, for `TEMPORAL_TARGET_HOST`. */
  address: string;
  port: number;
  /** The Web UI, when it is on. */
  uiUrl: URL | undefined;
  binary: string;
  /** The current process (a new one after {@link TemporalServer.restart}). */
  readonly daemon: Daemon;
  /** Runs the CLI against this server (`temporal <args> --address ...`) and returns its stdout. */
  cli(args: string[]): Promise<string>;
  stop(): Promise<void>;
  /**
   * Starts the server again with the same ports and database (stopping it first when it runs) and
   * resolves once it is SERVING: a persistent server comes back with its workflows.
   */
  restart(): Promise<void>;
}

/**
 * Dynamic config that makes the dev server dispatch tasks as fast as a cluster would.
 * Its history transfer queue is polled at most 20 times a second by default, so every
 * workflow and activity task waited ~40 ms between scheduled and started (a four-step
 * session took ~450 ms; measured in NOTES.md: 71 ms with 1000). Eager activity execution
 * hands an activity to the worker that completes the workflow task that schedules it.
 */
const DEV_SERVER_FOR_LATENCY = {
  "history.transferProcessorMaxPollRPS": "1000",
  "system.enableActivityEagerExecution": "true",
};

/**
 * Each Watch of a running session holds one history long-poll (GetWorkflowExecutionHistory with
 * waitNewEvent) at the frontend, and `frontend.namespaceCount` bounds the concurrent long-running
 * requests per frontend, per namespace and per API method: 1,200 by default, past which the frontend
 * answers RESOURCE_EXHAUSTED (the bench's 10,000 open Watches held only 1,200). 20,000 leaves room for
 * the bench's streams and the workers' own task polls. The rate limits a burst of opening streams meets,
 * `frontend.namespaceRPS` (2,400/s, burst ratio 2) and `frontend.rps` (2,400/s), stay above what
 * one API opens on this machine, so they keep their defaults.
 * Each long-poll is answered empty after `history.longPollExpirationInterval` (20 s) and
 * re-issued: with 10,000 open Watches that was 500 idle re-polls a second in the API. Set to
 * 60 s, the dev server answers after ~29 s instead (measured: its frontend's call to the history
 * service is capped near 30 s), about a third fewer re-polls.
 */
const DEV_SERVER_FOR_OPEN_WATCHES = { "frontend.namespaceCount": "20000", "history.longPollExpirationInterval": '"60s"' };

/**
 * SQLite in WAL mode with `synchronous=normal`: a commit no longer waits for an fsync of the
 * database, only of the log at checkpoints. Workflows still survive a server crash or restart;
 * what is traded is the last commits before an OS crash or power loss, which a local stack can afford.
 */
const SQLITE_FOR_LATENCY = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"];

/**
 * The sessions' custom search attributes (List queries them; Start sets them),
 * registered once the server is up the way a cluster operator registers them.
 * Not `start-dev --search-attribute`: that registers them in a new database
 * only, and a state directory from before they existed would fail every Start.
 * Registering an attribute that exists with the same type is a no-op; the CLI
 * names the types `Keyword`, `Bool`.
 */
const CREATE_SEARCH_ATTRIBUTES = [
  "operator", "search-attribute", "create",
  ...Object.values(SEARCH_ATTRIBUTE).flatMap(({ name, type }) => ["--name", name, "--type", `${type.charAt(0)}${type.slice(1).toLowerCase()}`]),
];

const execFileAsync = promisify(execFile);

/** Starts the dev server on loopback and resolves once its frontend reports SERVING. */
export async function startTemporal(options: TemporalOptions): Promise<TemporalServer> {
  const port = options.port ?? (await freePort());
  const ui = options.ui ?? true;
  const uiPort = options.uiPort ?? (await freePort());
  const args = [
    "server", "start-dev",
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--http-port", String(await freePort()),
    "--metrics-port", String(await freePort()),
    "--log-level", "warn",
    ...(ui ? ["--ui-ip", "127.0.0.1", "--ui-port", String(uiPort)] : ["--headless"]),
    ...(ui && options.uiCodecEndpoint ? ["--ui-codec-endpoint", options.uiCodecEndpoint] : []),
    ...(options.persistent ? ["--db-filename", path.join(options.stateDir, "temporal.db"), ...SQLITE_FOR_LATENCY] : []),
    ...Object.entries({ ...DEV_SERVER_FOR_LATENCY, ...DEV_SERVER_FOR_OPEN_WATCHES, ...options.dynamicConfig }).flatMap(
      ([key, value]) => ["--dynamic-config-value", `${key}=${value}`],
    ),
  ];
  const logFile = path.join(options.stateDir, "temporal.log");
  const address = `127.0.0.1:${port}`;
  const cli = async (cliArgs: string[]): Promise<string> =>
    (await execFileAsync(options.binary, [...cliArgs, "--address", address], { timeout: 30_000 })).stdout;
  const launch = async (): Promise<Daemon> => {
    const started = await startDaemon("temporal", options.binary, args, { logFile });
    try {
      await waitUntil("temporal", async () => (await cli(["operator", "cluster", "health"])).includes("SERVING"), {
        timeoutMs: 60_000,
        logFile,
        daemon: started,
      });
      await cli(CREATE_SEARCH_ATTRIBUTES);
    } catch (error) {
      await started.stop();
      throw error;
    }
    return started;
  };
  let daemon = await launch();
  return {
    address,
    port,
    uiUrl: ui ? new URL(`http://127.0.0.1:${uiPort}`) : undefined,
    binary: options.binary,
    get daemon() {
      return daemon;
    },
    cli,
    stop: () => daemon.stop(),
    async restart() {
      await daemon.stop();
      daemon = await launch();
    },
  };
}
