/**
 * A real trace receiver for the tracing test: Jaeger all-in-one (the v2
 * binary, an OpenTelemetry Collector distribution), built from its Go module
 * through the Go module proxy on first use and started on free loopback ports
 * with in-memory storage. `go install module@version` refuses the module (its
 * go.mod has `replace` directives), so it is built from a scratch module that
 * requires it as a tool.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { installOnce } from "./cache.js";
import { freePort, runCommand, startDaemon, waitUntil, type Daemon } from "./processes.js";

/** The pinned Jaeger version. */
export const JAEGER_VERSION = "v1.76.0";

const JAEGER_PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger";

/** Builds Jaeger into the cache (first run only, ~4 min on 2 cores) and returns the `jaeger` binary. */
export async function installJaeger(): Promise<string> {
  const dir = await installOnce(`jaeger-${JAEGER_VERSION}`, `building Jaeger ${JAEGER_VERSION} from its Go module`, async (target) => {
    const build = path.join(target, "build");
    const options = { cwd: build, logFile: path.join(target, "install.log"), env: { ...process.env, CGO_ENABLED: "0" } };
    await mkdir(build);
    await runCommand("go", ["mod", "init", "somagent-jaeger-build"], options);
    await runCommand("go", ["get", "-tool", `${JAEGER_PACKAGE}@${JAEGER_VERSION}`], options);
    await runCommand("go", ["build", "-o", path.join(target, "bin", "jaeger"), JAEGER_PACKAGE], options);
  });
  return path.join(dir, "bin", "jaeger");
}

/** A running Jaeger. */
export interface Jaeger {
  /** Base URL of the OTLP/HTTP receiver, for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  otlpEndpoint: URL;
  /** Base URL of the query service (`/api/traces/{id}`, `/api/services`) and UI. */
  queryUrl: URL;
  daemon: Daemon;
  stop(): Promise<void>;
}

/**
 * Starts Jaeger with only what a test needs, every port free and on loopback:
 * an OTLP/HTTP receiver, memory storage, the query HTTP (and its gRPC) server;
 * no collector metrics, health check, sampling or other receivers. Resolves
 * once the query API answers.
 */
export async function startJaeger(options: { binary: string; stateDir: string }): Promise<Jaeger> {
  const [otlpPort, queryPort, queryGrpcPort] = [await freePort(), await freePort(), await freePort()];
  // JSON is YAML: the collector's file provider reads it.
  const config = {
    service: {
      extensions: ["jaeger_storage", "jaeger_query"],
      pipelines: { traces: { receivers: ["otlp"], processors: ["batch"], exporters: ["jaeger_storage_exporter"] } },
      telemetry: { metrics: { level: "none" }, logs: { level: "warn" } },
    },
    extensions: {
      jaeger_storage: { backends: { memstore: { memory: { max_traces: 10_000 } } } },
      jaeger_query: {
        storage: { traces: "memstore" },
        http: { endpoint: `127.0.0.1:${queryPort}` },
        grpc: { endpoint: `127.0.0.1:${queryGrpcPort}` },
      },
    },
    receivers: { otlp: { protocols: { http: { endpoint: `127.0.0.1:${otlpPort}` } } } },
    processors: { batch: {} },
    exporters: { jaeger_storage_exporter: { trace_storage: "memstore" } },
  };
  const configFile = path.join(options.stateDir, "jaeger.yaml");
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const logFile = path.join(options.stateDir, "jaeger.log");
  const daemon = await startDaemon("jaeger", options.binary, ["--config", `file:${configFile}`], { logFile });
  const queryUrl = new URL(`http://127.0.0.1:${queryPort}/`);
  try {
    await waitUntil(
      "jaeger",
      async () => (await fetch(new URL("api/services", queryUrl), { signal: AbortSignal.timeout(2_000) })).ok,
      { timeoutMs: 60_000, logFile, daemon },
    );
  } catch (error) {
    await daemon.stop();
    throw error;
  }
  return { otlpEndpoint: new URL(`http://127.0.0.1:${otlpPort}/`), queryUrl, daemon, stop: () => daemon.stop() };
}
