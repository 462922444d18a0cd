/**
 * The run's infrastructure is the real thing: Temporal answers its own CLI
 * about a workflow started through the TypeScript SDK (and keeps it across a
 * restart when persistent), and Ray's dashboard reports its version and
 * routes a Serve HTTP request to a replica. Kafka's proof: kafka.test.ts.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Client, Connection } from "@temporalio/client";
import { afterAll, describe, expect, it } from "vitest";
import { createRayServeCompletions } from "../../src/clients/ray-serve-completions.js";
import { createRayServeDeployment } from "../../src/clients/ray-serve-deployment.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { loadWorkerConfig } from "../../src/config.js";
import { RAY_VERSION } from "../../local/ray.js";
import { freePort, startDaemon, waitUntil } from "../../local/processes.js";
import { startTemporal } from "../../local/temporal.js";
import { SEARCH_ATTRIBUTE } from "../../src/workflows/contract.js";
import { infra } from "../support/infra.js";

const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

/** Starts a workflow that no worker polls, so it stays running. */
async function startIdleWorkflow(address: string): Promise<string> {
  const connection = await Connection.connect({ address });
  try {
    const workflowId = `infra-proof-${randomUUID()}`;
    await new Client({ connection }).workflow.start("no-worker-polls-this", { taskQueue: "infra-proof", workflowId });
    return workflowId;
  } finally {
    await connection.close();
  }
}

describe("local Temporal", () => {
  it("lists, with its own CLI, a workflow started through @temporalio/client", async () => {
    const { address, binary } = infra().temporal;
    const workflowId = await startIdleWorkflow(address);
    const { stdout } = await promisify(execFile)(binary, [
      "workflow", "list", "--address", address, "--query", `WorkflowId = '${workflowId}'`, "--output", "json",
    ]);
    expect(stdout).toContain(workflowId);
  });

  it("keeps workflows across a restart when persistent", async () => {
    const stateDir = await mkdtemp(path.join(tmpdir(), "somagent-persist-"));
    closers.push(() => rm(stateDir, { recursive: true, force: true }));
    const options = { binary: infra().temporal.binary, stateDir, ui: false, persistent: true };
    const first = await startTemporal(options);
    const workflowId = await startIdleWorkflow(first.address);
    await first.stop();
    const second = await startTemporal({ ...options, port: first.port });
    closers.push(() => second.stop());
    const described = await second.cli(["workflow", "describe", "--workflow-id", workflowId, "--output", "json"]);
    expect(described).toContain(workflowId);
  });

  it("registers the sessions' search attributes on a database made before they existed", async () => {
    const stateDir = await mkdtemp(path.join(tmpdir(), "somagent-older-db-"));
    closers.push(() => rm(stateDir, { recursive: true, force: true }));
    const { binary } = infra().temporal;
    // The database an older npm start left behind: the dev server's own defaults, none of our attributes.
    const port = await freePort();
    const older = await startDaemon("temporal", binary, [
      "server", "start-dev", "--ip", "127.0.0.1", "--port", String(port), "--headless",
      "--http-port", String(await freePort()), "--metrics-port", String(await freePort()),
      "--db-filename", path.join(stateDir, "temporal.db"),
    ], { logFile: path.join(stateDir, "older.log") });
    closers.push(() => older.stop());
    const listAttributes = (address: string) =>
      promisify(execFile)(binary, ["operator", "search-attribute", "list", "--address", address]).then(({ stdout }) => stdout);
    await waitUntil("older dev server", async () => (await listAttributes(`127.0.0.1:${port}`)).includes("WorkflowType"), {
      timeoutMs: 60_000,
      logFile: path.join(stateDir, "older.log"),
      daemon: older,
    });
    expect(await listAttributes(`127.0.0.1:${port}`)).not.toContain(SEARCH_ATTRIBUTE.tenant.name);
    await older.stop();

    const current = await startTemporal({ binary, stateDir, ui: false, persistent: true });
    closers.push(() => current.stop());
    const listed = await listAttributes(current.address);
    for (const { name } of Object.values(SEARCH_ATTRIBUTE)) expect(listed).toContain(name);
  });
});

describe("local Ray", () => {
  it("answers the dashboard's version endpoint with the pinned version", async () => {
    const { dashboardUrl, authToken } = infra().ray;
    const response = await fetch(new URL("/api/version", dashboardUrl), { headers: { authorization: `Bearer ${authToken}` } });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ ray_version: RAY_VERSION });
  });

  it("routes a Serve HTTP request to a replica of the deployed application", async () => {
    const { dashboardUrl, serveUrl, authToken } = infra().ray;
    const { ray } = loadWorkerConfig({
      PAYLOAD_CODEC_KEYS: `unused:${Buffer.alloc(32).toString("base64")}`,
      IDENTITY_SERVICE_CLIENT_SECRET: "unused".padEnd(32, "-"),
      RAY_DASHBOARD_URL: dashboardUrl,
      RAY_SERVE_URL: serveUrl,
      RAY_AUTH_TOKEN: authToken,
    });
    const registry = createMetricsRegistry({ processMetrics: false });
    const deployment = createRayServeDeployment(ray, { registry, logger: createLogger("infrastructure-test", () => {}) });
    closers.push(() => deployment.close());
    await deployment.ensureDeployed();
    const completion = await createRayServeCompletions(ray, { deployment, registry }).complete({ prompt: "kick off a demo", model: "somagent-demo", sessionId: "infra-proof" });
    expect(completion).toMatchObject({ model: "somagent-demo", provider: "builtin-deterministic" });
    expect(completion.text).toMatch(/\S/);
  });
});
