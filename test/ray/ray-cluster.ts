/**
 * A Ray cluster of the test file's own (for tests that need an empty cluster
 * or take it down), started by the project's launcher on free loopback ports
 * with the run's Ray installation, in its own temp dir.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../../src/dev/processes.js";
import { installRay, startRay } from "../../src/dev/ray.js";

export { freePort };

/** A running test cluster. */
export interface RayTestCluster {
  dashboardUrl: URL;
  serveUrl: URL;
  authToken: string;
  /** Live process ids of the cluster (head daemons and the workers the raylet started). */
  pids(): Promise<number[]>;
  stop(): Promise<void>;
}

/** Starts the cluster; resolves when the dashboard's Serve REST API answers. */
export async function startRayCluster(): Promise<RayTestCluster> {
  // Short prefix: Ray's unix socket paths under the temp dir must stay under 108 bytes.
  const stateDir = await mkdtemp(path.join(tmpdir(), "rt-"));
  const cluster = await startRay({ binary: await installRay(), stateDir });
  return {
    dashboardUrl: cluster.dashboardUrl,
    serveUrl: cluster.serveUrl,
    authToken: cluster.authToken,
    pids: () => cluster.daemon.pids(),
    async stop() {
      await cluster.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
