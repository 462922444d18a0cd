/**
 * The service as its callers see it: a real Temporal dev server, the API and
 * (when asked) the worker as child processes started the way `npm run api` /
 * `npm run worker` start them, on free loopback ports.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { freePort, startTemporalDevServer, type TemporalDevServer } from "../api/temporal-dev-server.js";
import { repoRoot } from "./tools.js";

/** A running stack. */
export interface InteropStack {
  /** `127.0.0.1:port`, for gRPC clients. */
  address: string;
  /** `http://127.0.0.1:port`, for HTTP clients. */
  baseUrl: string;
  /** Output of the started processes, for failure messages. */
  logs: string[];
  close(): Promise<void>;
}

/** Options of {@link startInteropStack}. */
export interface InteropStackOptions {
  /** Origins the API allows cross-origin calls from. */
  corsAllowedOrigins?: string[];
  /** Start the worker too, so sessions run to their end. */
  worker?: boolean;
}

function startProcess(name: string, script: string, env: NodeJS.ProcessEnv, logs: string[]): ChildProcess {
  const child = spawn(join(repoRoot, "node_modules", ".bin", "tsx"), [script], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const keep = (chunk: Buffer) => logs.push(`[${name}] ${chunk.toString().trimEnd()}`);
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  process.kill(-child.pid, "SIGTERM");
  const timer = setTimeout(() => child.pid && process.kill(-child.pid, "SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

async function waitForHealth(baseUrl: string, processes: ChildProcess[], logs: string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const exited = processes.find((p) => p.exitCode !== null);
    if (exited) throw new Error(`a service process exited with ${exited.exitCode}:\n${logs.join("\n")}`);
    const ok = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`API not healthy within 60 s:\n${logs.join("\n")}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Starts Temporal, the API (and the worker) and waits until the API's `/health` is 200. */
export async function startInteropStack(options: InteropStackOptions = {}): Promise<InteropStack> {
  const logs: string[] = [];
  const temporal: TemporalDevServer = await startTemporalDevServer();
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    HOST: "127.0.0.1",
    PORT: String(port),
    TEMPORAL_TARGET_HOST: temporal.address,
    TEMPORAL_NAMESPACE: "default",
    TEMPORAL_TASK_QUEUE: `interop-${randomBytes(4).toString("hex")}`,
    PAYLOAD_CODEC_KEYS: `interop:${randomBytes(32).toString("base64")}`,
    CORS_ALLOWED_ORIGINS: (options.corsAllowedOrigins ?? []).join(","),
  };
  const processes = [startProcess("api", "src/api/main.ts", env, logs)];
  if (options.worker) processes.push(startProcess("worker", "src/worker/main.ts", env, logs));
  const baseUrl = `http://127.0.0.1:${port}`;
  const close = async () => {
    await Promise.all(processes.map(stopProcess));
    await temporal.stop();
  };
  try {
    await waitForHealth(baseUrl, processes, logs);
  } catch (error) {
    await close();
    throw error;
  }
  return { address: `127.0.0.1:${port}`, baseUrl, logs, close };
}
