/**
 * A Temporal dev server of the test file's own, on a free loopback port, that
 * can be stopped and started again on the same port (to test outages). Tests
 * that need no outage use the run's shared server (`infra().temporal`).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../../local/processes.js";
import { startTemporal, type TemporalServer } from "../../local/temporal.js";
import { infra } from "../support/infra.js";

export { freePort };

/** A dev server the test controls. */
export interface TemporalDevServer {
  /** `127.0.0.1:port` of the frontend. */
  address: string;
  port: number;
  /** Stops the server, waits until none of its processes is left, and removes its log. */
  stop(): Promise<void>;
  /** Starts it again on the same port and waits until it is SERVING. */
  start(): Promise<void>;
}

/** Starts an in-memory dev server on a free port with the run's Temporal CLI, with `dynamicConfig` on top of the local stack's. */
export async function startTemporalDevServer(dynamicConfig?: Record<string, string>): Promise<TemporalDevServer> {
  const stateDir = await mkdtemp(path.join(tmpdir(), "somagent-temporal-"));
  const port = await freePort();
  const launch = () => startTemporal({ binary: infra().temporal.binary, stateDir, port, ui: false, dynamicConfig });
  let server: TemporalServer | undefined = await launch();
  return {
    address: `127.0.0.1:${port}`,
    port,
    async stop() {
      await server?.stop();
      server = undefined;
      await rm(stateDir, { recursive: true, force: true });
    },
    async start() {
      server ??= await launch();
    },
  };
}

