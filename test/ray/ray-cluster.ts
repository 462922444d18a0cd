/**
 * A real single-node Ray 2.60 cluster for one test file: `ray start --head`
 * on free loopback ports, token authentication on with a fresh token, the
 * `ray/` package on PYTHONPATH, and its own temp dir. `stop()` ends every
 * process it started (never `ray stop`, which ends every Ray on the machine).
 * Used until the shared infrastructure launcher (`src/dev/ray.ts`) exists.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import path from "node:path";

/** A running test cluster. */
export interface RayTestCluster {
  dashboardUrl: URL;
  serveUrl: URL;
  authToken: string;
  /** Process ids of the cluster (head daemons and the workers the raylet started). */
  pids(): Promise<number[]>;
  stop(): Promise<void>;
}

/** The Ray CLI from the infrastructure cache; throws when it is missing. */
export function rayBinary(): string {
  const cache = path.join(homedir(), ".cache", "somagent-orchestrator");
  for (const dir of ["ray-2.60.0", "ray-2.60.0.tmp", "ray/2.60.0"]) {
    const candidate = path.join(cache, dir, "bin", "ray");
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`Ray 2.60.0 CLI not found under ${cache}`);
}

/** A port free right now on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

interface ProcessRow {
  pid: number;
  ppid: number;
  pgid: number;
  /** Start time in clock ticks since boot: with the pid, names one process even after pid reuse. */
  start: string;
}

/** Live processes (zombies excluded: they have ended and only wait to be reaped). */
async function processTable(): Promise<ProcessRow[]> {
  const rows: ProcessRow[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue;
      rows.push({ pid: Number(entry), ppid: Number(fields[1]), pgid: Number(fields[2]), start: fields[19]! });
    } catch {
      // the process ended while we looked
    }
  }
  return rows;
}

/** Starts the cluster; resolves when the dashboard answers. */
export async function startRayCluster(): Promise<RayTestCluster> {
  const ray = rayBinary();
  const tempDir = await mkdtemp(path.join(tmpdir(), "ray-test-"));
  const authToken = randomBytes(32).toString("hex");
  const ports = {
    gcs: await freePort(),
    dashboard: await freePort(),
    serve: await freePort(),
    client: await freePort(),
    agentListen: await freePort(),
    agentGrpc: await freePort(),
    metrics: await freePort(),
    nodeManager: await freePort(),
    objectManager: await freePort(),
    runtimeEnv: await freePort(),
  };
  const repoRay = path.resolve(import.meta.dirname, "..", "..", "ray");
  const child = spawn(
    ray,
    [
      "start", "--head",
      `--port=${ports.gcs}`,
      "--dashboard-host=127.0.0.1", `--dashboard-port=${ports.dashboard}`,
      `--ray-client-server-port=${ports.client}`,
      `--dashboard-agent-listen-port=${ports.agentListen}`,
      `--dashboard-agent-grpc-port=${ports.agentGrpc}`,
      `--metrics-export-port=${ports.metrics}`,
      `--node-manager-port=${ports.nodeManager}`,
      `--object-manager-port=${ports.objectManager}`,
      `--runtime-env-agent-port=${ports.runtimeEnv}`,
      "--node-ip-address=127.0.0.1",
      "--num-cpus=2",
      "--object-store-memory=200000000",
      `--temp-dir=${tempDir}`,
      "--disable-usage-stats",
    ],
    {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        RAY_AUTH_MODE: "token",
        RAY_AUTH_TOKEN: authToken,
        RAY_USAGE_STATS_ENABLED: "0",
        PYTHONPATH: repoRay,
      },
    },
  );
  const pgid = child.pid!;
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));

  // Every process ever seen (pid -> start time): actors leave the tree once the raylet dies.
  const seen = new Map<number, string>();

  async function pids(): Promise<number[]> {
    const table = await processTable();
    const isSeen = (row: ProcessRow): boolean => seen.get(row.pid) === row.start;
    for (const row of table) if (row.pgid === pgid) seen.set(row.pid, row.start);
    // Workers and actors run in their own process groups under the raylet.
    let grew = true;
    while (grew) {
      grew = false;
      for (const row of table) {
        if (!isSeen(row) && row.ppid !== 1 && table.some((parent) => parent.pid === row.ppid && isSeen(parent))) {
          seen.set(row.pid, row.start);
          grew = true;
        }
      }
    }
    return table.filter(isSeen).map((row) => row.pid);
  }

  async function stop(): Promise<void> {
    const signal = (pidList: number[], name: NodeJS.Signals): void => {
      for (const pid of pidList) {
        try {
          process.kill(pid, name);
        } catch {
          // already gone
        }
      }
    };
    const waitGone = async (ms: number): Promise<void> => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline && (await pids()).length > 0) await new Promise((r) => setTimeout(r, 200));
    };
    signal(await pids(), "SIGTERM");
    await waitGone(10_000);
    signal(await pids(), "SIGKILL");
    await waitGone(5_000);
    await rm(tempDir, { recursive: true, force: true });
  }

  if (code !== 0) {
    await stop();
    throw new Error(`ray start exited with ${code}:\n${output}`);
  }
  const dashboardUrl = new URL(`http://127.0.0.1:${ports.dashboard}`);
  // The dashboard's modules load after `ray start` returns; wait for the Serve REST API.
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const response = await fetch(new URL("/api/serve/applications/", dashboardUrl), { headers: { authorization: `Bearer ${authToken}` } });
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error("Ray dashboard did not answer within 60 s");
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { dashboardUrl, serveUrl: new URL(`http://127.0.0.1:${ports.serve}`), authToken, pids, stop };
}
