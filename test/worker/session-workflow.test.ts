/**
 * The session worker against the run's real Temporal dev server, with its
 * outside services reached over real HTTP at a closed loopback port
 * (connection refused): the path of a dependency that stays down.
 */
import { randomUUID } from "node:crypto";
import { Client, Connection, WorkflowFailedError } from "@temporalio/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActivityDeps } from "../../src/activities/index.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { requestJson } from "../../src/clients/http-json.js";
import { loadWorkerConfig } from "../../src/config.js";
import { createEncryptionCodec } from "../../src/temporal/payload-codec.js";
import { SESSION_WORKFLOW_TYPE, type SessionInput } from "../../src/workflows/contract.js";
import { createSessionWorker, type SessionWorker } from "../../src/worker/session-worker.js";
import { freePort } from "../../local/processes.js";
import { infra } from "../support/infra.js";
import { cliHistory, fixtureCodecKey, recordHistory } from "./histories.js";

const temporal = infra().temporal;
let worker: SessionWorker;
let client: Client;
let connection: Connection;
const logLines: string[] = [];
const taskQueue = `sessions-${randomUUID()}`;
let closedUrl: string;

/** A real HTTP call to `closedUrl`; nothing listens there. */
async function callClosedPort<T>(target: string, body: unknown, signal?: AbortSignal): Promise<T> {
  return (await requestJson({ target, url: closedUrl, body, timeoutMs: 2_000, signal })).body as T;
}

beforeAll(async () => {
  closedUrl = `http://127.0.0.1:${await freePort()}/v1/evaluate`;
  const config = loadWorkerConfig({
    TEMPORAL_TARGET_HOST: temporal.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    PAYLOAD_CODEC_KEYS: `${fixtureCodecKey.id}:${fixtureCodecKey.key}`,
    WORKER_METRICS_HOST: "127.0.0.1",
    WORKER_METRICS_PORT: "0",
  });
  const deps: Omit<ActivityDeps, "audit"> = {
    policy: { evaluate: (request, signal) => callClosedPort("policy-engine", request, signal) },
    identity: { issue: (request, signal) => callClosedPort("identity-service", request, signal) },
    completions: { complete: (request, signal) => callClosedPort("ray-serve", request, signal) },
  };
  worker = await createSessionWorker(config, {
    ...deps,
    logger: createLogger("worker-test", (line) => logLines.push(line)),
    registry: createMetricsRegistry({ processMetrics: false }),
  });
  connection = await Connection.connect({ address: temporal.address });
  client = new Client({
    connection,
    taskQueue,
    dataConverter: { payloadCodecs: [createEncryptionCodec(config.temporal.codecKeys)] },
  } as ConstructorParameters<typeof Client>[0]);
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await connection?.close();
});

describe("session worker", () => {
  it("answers /health while polling", async () => {
    const response = await fetch(new URL("/health", worker.metricsUrl));
    expect(response.status).toBe(200);
  });

  it("fails a session whose policy engine stays unreachable, with one failed audit naming the reason", async () => {
    const sessionId = randomUUID();
    const input: SessionInput = {
      sessionId,
      tenant: "acme",
      user: "user-1",
      prompt: "a distinctive prompt 7c1f0e",
      model: "somagent-demo",
      metadata: {},
    };
    const handle = await client.workflow.start(SESSION_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: `session-${sessionId}`,
      args: [input],
    });
    const error = await handle.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause?.message).toMatch(/^policy engine unreachable after its retry budget: policy-engine: /);
    const audits = logLines
      .map((line) => JSON.parse(line) as { message: string; audit?: { session_id: string; status: string; reason: string } })
      .filter((line) => line.message === "audit event" && line.audit?.session_id === sessionId);
    expect(audits).toHaveLength(1);
    await recordHistory(handle, "failed-policy-unreachable");
    const shown = cliHistory(handle.workflowId);
    expect(shown).toContain(Buffer.from("binary/encrypted").toString("base64"));
    expect(shown).not.toContain("a distinctive prompt 7c1f0e");
    expect(audits[0]?.audit).toMatchObject({ status: "AUDIT_STATUS_FAILED", reason: expect.stringMatching(/^policy engine unreachable/) });
  }, 120_000);
});
