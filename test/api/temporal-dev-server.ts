/**
 * A real Temporal dev server for one test file, on free loopback ports, that
 * can be stopped and started again on the same port (to test outages).
 * Used until the shared test infrastructure (`test/support/infra.ts`) lands.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import net from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";

/** A dev server the test controls. */
export interface TemporalDevServer {
  /** `127.0.0.1:port` of the frontend. */
  address: string;
  port: number;
  /** Stops the server (SIGTERM to its process group) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and waits until it accepts connections. */
  start(): Promise<void>;
}

/** A port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** `TEMPORAL_CLI`, or the first `temporal` executable within three levels of the infrastructure cache. */
function temporalBinary(): string {
  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  const cache = join(homedir(), ".cache", "somagent-orchestrator");
  const search = (dir: string, depth: number): string | undefined => {
    if (depth < 0 || !existsSync(dir)) return undefined;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isFile() && entry.name === "temporal") return path;
      if (entry.isDirectory() && (entry.name.includes("temporal") || entry.name === "bin")) {
        const found = search(path, depth - 1);
        if (found) return found;
      }
    }
    return undefined;
  };
  const found = search(cache, 3);
  if (!found) throw new Error(`no temporal CLI found under ${cache}; set TEMPORAL_CLI`);
  return found;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`Temporal did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts a dev server (in-memory) on a free port; throws when it does not come up within 30 s. */
export async function startTemporalDevServer(): Promise<TemporalDevServer> {
  const binary = temporalBinary();
  const port = await freePort();
  const [uiPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  let child: ChildProcess | undefined;

  const start = async () => {
    child = spawn(
      binary,
      ["server", "start-dev", "--ip", "127.0.0.1", "--port", String(port), "--ui-port", String(uiPort), "--http-port", String(httpPort),
        "--metrics-port", String(metricsPort), "--headless", "--log-level", "error"],
      { detached: true, stdio: "ignore" },
    );
    await waitForPort(port, 30_000);
  };
  // If the test process dies before `stop`, take the server down with it: no orphans.
  const killOnExit = () => {
    try {
      if (child?.pid && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  process.once("exit", killOnExit);

  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running?.pid || running.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
    process.kill(-running.pid, "SIGTERM");
    const timer = setTimeout(() => running.pid && process.kill(-running.pid, "SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return { address: `127.0.0.1:${port}`, port, stop, start };
}
