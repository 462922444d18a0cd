/**
 * `npm start`: the whole local stack in the foreground — Temporal (with its
 * Web UI, workflows kept across restarts), Kafka, Ray, the policy engine and
 * identity service, the worker and the API on 8090 — installed on first use,
 * on the port map of DESIGN.md, then one summary. Each of them is kept
 * running: a process that exits is restarted with backoff, the exit and the
 * restart are printed, and a status line says which component is down.
 * Ctrl-C stops everything, restarting nothing.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { endpointsOf, installInfrastructure, startInfrastructure, type Infrastructure, type InfrastructureOptions, type InstalledTools } from "./infrastructure.js";
import { startKafka } from "./kafka.js";
import { portOpen, supervise, waitUntil, type Component, type Supervised } from "./processes.js";
import { startRay } from "./ray.js";
import { startTemporal } from "./temporal.js";
import { formatDuration, progress, step } from "./progress.js";
import { SECRET_FILES, answersOk, startServices, type Services } from "./services.js";
import { LOCAL_STATE_DIR } from "./state-dir.js";

/** The local port map (DESIGN.md). */
const PORTS = {
  api: 8090,
  temporal: 7233,
  temporalUi: 8233,
  kafka: 9092,
  kafkaController: 9093,
  rayGcs: 6379,
  rayDashboard: 8265,
  rayServe: 8000,
  policyEngine: 8101,
  identityService: 8102,
  workerMetrics: 9464,
  workerSdkMetrics: 9465,
} as const;

/** Logs, Temporal's database, Kafka's data and the local keys: kept across runs. */
const stateDir = LOCAL_STATE_DIR;

/** `API_AUTH=jwt`: the API requires caller tokens from the local identity service; unset, it is open. */
function apiAuthMode(): "jwt" | undefined {
  const value = process.env.API_AUTH?.trim() ?? "";
  if (value === "") return undefined;
  if (value === "jwt") return "jwt";
  throw new Error(`API_AUTH=${JSON.stringify(value)} is invalid: expected jwt, or unset for an open API`);
}

/** The payload codec key of the local stack, made once so old histories stay readable. */
async function localCodecKeys(): Promise<string> {
  const file = path.join(stateDir, "payload-codec-keys");
  if (existsSync(file)) return (await readFile(file, "utf8")).trim();
  const keys = `local:${randomBytes(32).toString("base64")}`;
  await writeFile(file, keys, { mode: 0o600 });
  return keys;
}

async function assertPortsFree(): Promise<void> {
  const busy: string[] = [];
  for (const [name, port] of Object.entries(PORTS)) if (await portOpen(port)) busy.push(`${port} (${name})`);
  if (busy.length > 0) {
    throw new Error(`ports in use: ${busy.join(", ")}. Is another stack running? Stop it first (Ctrl-C in its terminal).`);
  }
}

/**
 * Keeps Temporal, Kafka and Ray running: each is restarted in place (same
 * ports and state; Ray with the same token, so the worker's stays valid).
 */
function superviseInfrastructure(infra: Infrastructure, tools: InstalledTools, options: InfrastructureOptions): Supervised<Component>[] {
  const { stateDir } = options;
  return [
    supervise("temporal", infra.temporal, () => startTemporal({ binary: tools.temporal, stateDir, ...options.temporal }), progress),
    supervise("kafka", infra.kafka, () => startKafka({ installDir: tools.kafka, stateDir, ...options.kafka }), progress),
    supervise("ray", infra.ray, () => startRay({ binary: tools.ray, stateDir, ...options.ray, authToken: infra.ray.authToken }), progress),
  ];
}

/** How often the status line checks that every component is up. */
const STATUS_INTERVAL_MS = 5_000;

/**
 * Prints a status line whenever the set of down components changes: which
 * are down (restarting), or that all are up again.
 */
function watchStatus(components: { name: string; up(): boolean }[]): () => void {
  let shown = "";
  const timer = setInterval(() => {
    const down = components.filter((component) => !component.up()).map((component) => component.name);
    const line = down.length > 0 ? `status: DOWN ${down.join(", ")} (restarting; see above)` : "status: every component is up";
    if (line !== shown && (down.length > 0 || shown !== "")) progress(line);
    shown = line;
  }, STATUS_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

async function printSummary(infra: Infrastructure, services: Services, apiAuth: "jwt" | undefined): Promise<void> {
  const rows: [string, string, boolean][] = [
    ["API (gRPC, gRPC-Web, Connect, REST)", services.api.url.href, await answersOk(new URL("/health", services.api.url))],
    ["session console (browser)", services.api.url.href, await answersOk(services.api.url)],
    ["Temporal frontend", infra.temporal.address, (await infra.temporal.daemon.pids()).length > 0],
    ["Temporal Web UI", infra.temporal.uiUrl?.href ?? "-", infra.temporal.uiUrl ? await answersOk(infra.temporal.uiUrl) : false],
    ["Kafka bootstrap", `${infra.kafka.bootstrap} (Kafka ${infra.kafka.version})`, (await infra.kafka.daemon.pids()).length > 0],
    ["Ray dashboard", infra.ray.dashboardUrl.href, await answersOk(new URL("/api/version", infra.ray.dashboardUrl), { authorization: `Bearer ${infra.ray.authToken}` })],
    ["Ray Serve proxy", infra.ray.serveUrl.href, await answersOk(new URL("/-/healthz", infra.ray.serveUrl))],
    ["policy engine", services.policyEngine.url.href, await answersOk(new URL("/health", services.policyEngine.url))],
    ["identity service", services.identityService.url.href, await answersOk(new URL("/health", services.identityService.url))],
    ["worker /metrics", new URL("/metrics", services.worker.url).href, await answersOk(new URL("/health", services.worker.url))],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = rows.map(([name, url, healthy]) => `  ${name.padEnd(width)}  ${healthy ? "healthy  " : "UNHEALTHY"}  ${url}`);
  process.stdout.write(
    [
      "",
      "SomaAgent local stack",
      ...lines,
      "",
      `  logs and state: ${stateDir}`,
      `  Ray dashboard token (token authentication is on): ${infra.ray.authToken}`,
      `  policy engine admin token (GET/PUT /v1/policies, Authorization: Bearer): ${stateDir}/${SECRET_FILES.policyEngineAdminToken}`,
      ...(apiAuth === "jwt"
        ? [
            "  API caller authentication is ON (API_AUTH=jwt): every SessionService call needs a bearer token.",
            "  try: TOKEN=$(npm run -s token -- --tenant tenant-demo --user user-demo)",
            "       curl -X POST http://localhost:8090/v1/sessions/start -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\",
          ]
        : [
            "  API caller authentication is OFF: anyone reaching the port may act as any tenant and user (API_AUTH=jwt turns it on).",
            "  try: curl -X POST http://localhost:8090/v1/sessions/start -H 'Content-Type: application/json' \\",
          ]),
      `         -d '{"tenant":"tenant-demo","user":"user-demo","prompt":"kick off a demo","metadata":{"session_id":"sess-local"}}'`,
      "  Ctrl-C stops everything.",
      "",
    ].join("\n"),
  );
}

async function main(): Promise<void> {
  const began = Date.now();
  const apiAuth = apiAuthMode();
  await mkdir(stateDir, { recursive: true });
  await assertPortsFree();
  const tools = await installInfrastructure();
  const infraOptions: InfrastructureOptions = {
    stateDir,
    temporal: { port: PORTS.temporal, uiPort: PORTS.temporalUi, ui: true, uiCodecEndpoint: `http://127.0.0.1:${PORTS.api}/codec`, persistent: true },
    kafka: { port: PORTS.kafka, controllerPort: PORTS.kafkaController },
    // Ray's unix sockets live under its temp dir, whose path must stay short.
    ray: { gcsPort: PORTS.rayGcs, dashboardPort: PORTS.rayDashboard, servePort: PORTS.rayServe, tempDir: path.join(tmpdir(), "somagent-ray") },
  };
  const infra = await startInfrastructure(tools, infraOptions);
  const infraSupervisors = superviseInfrastructure(infra, tools, infraOptions);
  let services: Services | undefined;
  let stopStatus = () => {};
  let stopping = false;
  const stopAll = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    stopStatus();
    progress(`\n${reason}: stopping the stack`);
    await step("stopping services", async () => services?.stop());
    // The supervisors stop what they run (the restarted instances included) and restart nothing more.
    await step("stopping infrastructure", () => Promise.all(infraSupervisors.map((component) => component.stop())));
    process.exit(reason === "failed" ? 1 : 0);
  };
  process.on("SIGINT", () => void stopAll("SIGINT"));
  process.on("SIGTERM", () => void stopAll("SIGTERM"));
  const codecKeys = await localCodecKeys();
  try {
    services = await step("starting policy engine, identity service, worker and API", () =>
      startServices(
        endpointsOf(infra),
        {
          stateDir,
          codecKeys,
          restartOnExit: true,
          ...(apiAuth && { apiAuth }),
          ports: {
            api: PORTS.api,
            policyEngine: PORTS.policyEngine,
            identityService: PORTS.identityService,
            workerMetrics: PORTS.workerMetrics,
            workerSdkMetrics: PORTS.workerSdkMetrics,
          },
        },
      ),
    );
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    await stopAll("failed");
    return;
  }
  // The worker deploys the Serve application at start; the proxy answers once it has.
  await step("waiting for the Ray Serve application", () =>
    waitUntil("ray serve proxy", () => answersOk(new URL("/-/healthz", infra.ray.serveUrl)), {
      timeoutMs: 180_000,
      logFile: path.join(stateDir, "worker.log"),
    }),
  ).catch((error: unknown) => progress((error as Error).message));
  await printSummary(infra, services, apiAuth);
  progress(`stack up in ${formatDuration(Date.now() - began)}`);
  stopStatus = watchStatus([...infraSupervisors, services.policyEngine, services.identityService, services.worker, services.api]);
}

main().catch((error: unknown) => {
  process.stderr.write(`npm start failed: ${(error as Error).message}\n`);
  process.exit(1);
});
