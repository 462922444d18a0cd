/**
 * A Ray cluster of the test file's own (for tests that need an empty cluster
 * or take it down), started by the project's launcher on free loopback ports
 * with the run's Ray installation, in its own temp dir.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../../local/processes.js";
import { installRay, startRay } from "../../local/ray.js";

export { freePort };

/** A running test cluster. */
export interface RayTestCluster {
  dashboardUrl: URL;
  serveUrl: URL;
  /** GCS address, `127.0.0.1:port`. */
  gcsAddress: string;
  authToken: string;
  /** Live process ids of the cluster (head daemons and the workers the raylet started). */
  pids(): Promise<number[]>;
  stop(): Promise<void>;
}

/** Where to start the cluster. */
export interface RayTestClusterOptions {
  /**
   * A stopped cluster to replace: the new one listens on its GCS, dashboard
   * and Serve ports and requires its token, as a Ray restarted in place does.
   * It starts empty (Ray keeps no Serve applications across a restart).
   */
  replacing?: RayTestCluster;
}

/** Starts the cluster; resolves when the dashboard's Serve REST API answers. */
export async function startRayCluster(options: RayTestClusterOptions = {}): Promise<RayTestCluster> {
  // Short prefix: Ray's unix socket paths under the temp dir must stay under 108 bytes.
  const stateDir = await mkdtemp(path.join(tmpdir(), "rt-"));
  const previous = options.replacing;
  const cluster = await startRay({
    binary: await installRay(),
    stateDir,
    ...(previous && {
      gcsPort: Number(previous.gcsAddress.split(":").at(-1)),
      dashboardPort: Number(previous.dashboardUrl.port),
      servePort: Number(previous.serveUrl.port),
      authToken: previous.authToken,
    }),
  }).catch(async (error: unknown) => {
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  });
  return {
    dashboardUrl: cluster.dashboardUrl,
    serveUrl: cluster.serveUrl,
    gcsAddress: cluster.gcsAddress,
    authToken: cluster.authToken,
    pids: () => cluster.daemon.pids(),
    async stop() {
      await cluster.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
