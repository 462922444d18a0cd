/**
 * Vitest global setup: installs (first run only) and starts the real local
 * infrastructure once for the whole run, on free loopback ports in a fresh
 * state directory, so a stack already running on the default ports is never
 * touched. Tests read the addresses with `inject("infra")`. Teardown stops
 * every process it started and fails the run if any is left.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { installInfrastructure, startInfrastructure } from "../../local/infrastructure.js";
import { step } from "../../local/progress.js";
import type { InfraInfo } from "./infra.js";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const tools = await installInfrastructure();
  const stateDir = await mkdtemp(path.join(tmpdir(), "somagent-test-"));
  const infra = await step("starting the test infrastructure", () =>
    startInfrastructure(tools, { stateDir, temporal: { ui: false } }),
  );
  const info: InfraInfo = {
    stateDir,
    temporal: { address: infra.temporal.address, binary: tools.temporal },
    kafka: { bootstrap: infra.kafka.bootstrap, version: infra.kafka.version },
    ray: { dashboardUrl: infra.ray.dashboardUrl.href, serveUrl: infra.ray.serveUrl.href, authToken: infra.ray.authToken },
  };
  project.provide("infra", info);

  return async () => {
    await step("stopping the test infrastructure", () => infra.stop());
    const left = await infra.pids();
    if (left.length > 0) throw new Error(`processes of the test infrastructure survived teardown: ${left.join(", ")}`);
    await rm(stateDir, { recursive: true, force: true });
  };
}
